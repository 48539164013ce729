import pg from 'pg';

/** A pool to use (not owned), or how to build one (owned: the user ends it). */
export type PoolOptions =
  | pg.Pool
  | { readonly pool: pg.Pool }
  | {
      readonly connectionString: string;
      /** Connections in the owned pool. */
      readonly poolSize?: number;
      /** `statement_timeout` of the owned pool's sessions. Default 5000. */
      readonly statementTimeoutMs?: number;
    };

/** Resolves `options` into a pool, and whether the caller owns (and must end) it. */
export function resolvePool(
  options: PoolOptions,
  defaults: { poolSize: number; applicationName: string; /** Settings of the owned pool's sessions (`-c name=value …`). */ sessionOptions?: string },
): { pool: pg.Pool; owned: boolean } {
  if (options instanceof pg.Pool) return { pool: options, owned: false };
  if ('pool' in options) return { pool: options.pool, owned: false };
  const pool = new pg.Pool({
    connectionString: options.connectionString,
    max: options.poolSize ?? defaults.poolSize,
    statement_timeout: options.statementTimeoutMs ?? 5000,
    connectionTimeoutMillis: options.statementTimeoutMs ?? 5000,
    keepAlive: true,
    application_name: defaults.applicationName,
    ...(defaults.sessionOptions === undefined ? {} : { options: defaults.sessionOptions }),
  });
  // An idle client's failure is reported here; the pool drops that client.
  pool.on('error', () => {});
  return { pool, owned: true };
}
