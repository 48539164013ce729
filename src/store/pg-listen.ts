/**
 * A dedicated PostgreSQL connection that LISTENs on one channel: the ring's
 * epochs and the consumer groups' announcements both use it.
 */
import pg from 'pg';

export interface Listening {
  close(): Promise<void>;
}

export interface ListenOptions {
  readonly connectionString: string;
  readonly connectionTimeoutMillis: number;
  readonly channel: string;
  readonly applicationName: string;
  /** Each notification's payload on `channel`. */
  readonly onPayload: (payload: string) => void;
  /** Called once when the connection fails or ends while listening (not after `close`). */
  readonly onLost: (err: Error) => void;
}

/**
 * Connects and LISTENs; resolves once listening.
 * @throws the connection's error when it cannot connect or listen (nothing is left open).
 */
export async function listen(options: ListenOptions): Promise<Listening> {
  const client = new pg.Client({
    connectionString: options.connectionString,
    connectionTimeoutMillis: options.connectionTimeoutMillis,
    keepAlive: true,
    application_name: options.applicationName,
  });
  let closed = false;
  const lost = (err: Error) => {
    if (closed) return;
    closed = true;
    client.end().catch(() => {});
    options.onLost(err);
  };
  client.on('error', lost);
  client.on('end', () => lost(new Error(`${options.applicationName} connection ended`)));
  client.on('notification', (msg) => {
    if (msg.channel === options.channel) options.onPayload(msg.payload ?? '');
  });
  try {
    await client.connect();
    await client.query(`LISTEN ${options.channel}`);
  } catch (err) {
    closed = true;
    await client.end().catch(() => {});
    throw err;
  }
  return {
    close: async () => {
      if (closed) return;
      closed = true;
      await client.end().catch(() => {});
    },
  };
}
