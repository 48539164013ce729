/**
 * A baseline from outside this project: an in-process TypeScript event store
 * library on the same PostgreSQL, Emmett's (`@event-driven-io/emmett-postgresql`,
 * a dev dependency used only here). What a service gets by calling the library
 * from its own process instead of sending commands to shardwrite.
 *
 * How Emmett appends (0.42, read from its source): each appendToStream takes a
 * pooled connection and runs BEGIN; SELECT emt_append_to_stream(...); COMMIT:
 * one transaction and three round trips per call, no batching across callers.
 * The statement's text carries the values as quoted literals, so nothing is
 * prepared. An expected version N > 0 updates emt_streams where its position
 * is N; N = 0 inserts the stream row, and a duplicate key there is Emmett's
 * ExpectedVersionConflictError. (Emmett's own STREAM_DOES_NOT_EXIST turns into
 * "no check" in this version, so a new stream is expected as 0n here.)
 *
 * `npm run bench -- library [--seconds N] [--pool P]` runs the e2e benchmark's
 * case (f) alone, on a fresh database.
 */
import pg from 'pg';
import { getPostgreSQLEventStore } from '@event-driven-io/emmett-postgresql';
import { benchDatabase, closedLoop, durationFromArgs, numberArg, printTable, type LoadResult } from './support.js';

/** pg's default pool size, which is what Emmett's own pool gets. */
const EMMETT_DEFAULT_POOL = 10;
/** The type parsers Emmett's SQL layer (dumbo) installs on the process-wide `pg.types`. */
const EMMETT_TYPE_OIDS = [20 /* int8 */, 114 /* json */, 3802 /* jsonb */] as const;

export interface LibraryEvent {
  readonly type: string;
  readonly data: Record<string, unknown>;
}

export interface LibraryStore {
  /** Appends one event to `streamId`, which must be at `expectedVersion` (0: must not exist yet). */
  append(streamId: string, expectedVersion: number, event: LibraryEvent): Promise<void>;
  close(): Promise<void>;
}

/**
 * An in-process library event store on database `url`, ready to append: its
 * schema is created here (Emmett would otherwise migrate on the first append).
 * `poolSize` connections (default 10, as Emmett's own pool).
 */
export async function emmettStore(url: string, options: { poolSize?: number } = {}): Promise<LibraryStore> {
  // Emmett's SQL layer sets int8 → BigInt and its own JSON parsing on the
  // process-wide pg.types the first time it builds a pool. This process also
  // runs shardwrite's own store (case (d)): give those parsers to Emmett's
  // connections only, and put the process-wide ones back.
  const before = new Map(EMMETT_TYPE_OIDS.map((oid) => [oid, pg.types.getTypeParser(oid, 'text')]));
  const emmettParsers = new Map<number, (value: string) => unknown>();
  const types: pg.CustomTypesConfig = {
    getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
      (format ?? 'text') === 'text' && emmettParsers.has(oid) ? emmettParsers.get(oid)! : pg.types.getTypeParser(oid, format)) as pg.CustomTypesConfig['getTypeParser'],
  };
  const pool = new pg.Pool({ connectionString: url, max: options.poolSize ?? EMMETT_DEFAULT_POOL, types });
  pool.on('error', () => {});
  let store: ReturnType<typeof getPostgreSQLEventStore>;
  try {
    store = getPostgreSQLEventStore(url, { connectionOptions: { connectionString: url, pool } });
  } finally {
    for (const oid of EMMETT_TYPE_OIDS) {
      const parser = pg.types.getTypeParser(oid, 'text');
      if (parser !== before.get(oid)) emmettParsers.set(oid, parser);
      pg.types.setTypeParser(oid, 'text', before.get(oid));
    }
  }
  try {
    await store.schema.migrate();
  } catch (err) {
    await pool.end();
    throw err;
  }
  return {
    async append(streamId, expectedVersion, event) {
      await store.appendToStream(streamId, [{ type: event.type, data: event.data }], { expectedStreamVersion: BigInt(expectedVersion) });
    },
    async close() {
      await store.close(); // A pool handed to Emmett is not Emmett's to end.
      await pool.end();
    },
  };
}

const address = (i: number) => ({ name: `Customer ${i}`, line1: `${i} Main St`, city: 'Berlin', postalCode: '10115', country: 'DE' });

/**
 * Case (f): `callers` closed loops each appending an OrderPlaced (the data of
 * case (d)) to a new stream per call, so every call creates a stream.
 */
export function libraryAppends(label: string, store: LibraryStore, callers: number, durationMs: number, prefix = 'f'): Promise<LoadResult> {
  return closedLoop(label, callers, durationMs, (w, i) =>
    store.append(`order-${prefix}-${w}-${i}`, 0, {
      type: 'OrderPlaced',
      data: { customerId: 'c', customerEmail: 'a@b.c', shippingAddress: address(i) },
    }),
  );
}

/** `npm run bench -- library [--seconds N] [--pool P]`: case (f) alone. */
export async function run(server: string, args: string[]): Promise<void> {
  const durationMs = durationFromArgs(args, 5000);
  const poolSize = numberArg(args, '--pool', undefined);
  const callers = 64;
  console.log(`library: Emmett's PostgreSQL event store in process, ${callers} callers, ${poolSize ?? EMMETT_DEFAULT_POOL} connections, ${durationMs / 1000}s\n`);
  const db = await benchDatabase(server);
  try {
    const store = await emmettStore(db.url, { poolSize });
    try {
      printTable([await libraryAppends(`(f) in-process library (Emmett), ${callers} callers`, store, callers, durationMs)]);
    } finally {
      await store.close();
    }
  } finally {
    await db.drop();
  }
}
