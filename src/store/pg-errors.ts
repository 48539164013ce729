/**
 * The one place that reads node-postgres / PostgreSQL errors. Everything else
 * in `src/store` asks `classifyPgError` what kind of failure it saw, and
 * nothing above `src/store` ever sees a pg error: unavailability becomes
 * `StoreUnavailableError`, the rest is decided by the caller (the writer turns
 * a unique violation into `ConcurrencyError`, for instance).
 */
import { StoreUnavailableError } from '../errors.js';

/**
 * - `unavailable`: the database could not be reached, went away, timed out or
 *   is out of resources. Says nothing about the data; retrying later may work.
 * - `unique-violation`: SQLSTATE 23505, a unique key refused a row.
 * - `data`: the data itself was refused (class 22 data exceptions, other
 *   class 23 integrity violations, class 54 limits such as an oversized index row).
 * - `transient-conflict`: a serialization failure or deadlock (40001, 40P01);
 *   the same work run alone is expected to succeed.
 * - `unknown`: anything else (a bug, a missing table, …).
 */
export type PgErrorKind = 'unavailable' | 'unique-violation' | 'data' | 'transient-conflict' | 'unknown';

/** Socket-level error codes Node.js reports for an unreachable or broken server. */
const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ECONNABORTED', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'EHOSTDOWN', 'ENETUNREACH', 'ENETDOWN', 'ENOTFOUND', 'EAI_AGAIN']);

/** SQLSTATEs, outside the whole-class rules below, that mean "the server is not usable right now". */
const UNAVAILABLE_STATES = new Set([
  '57P01', // admin_shutdown (server stopping, pg_terminate_backend)
  '57P02', // crash_shutdown
  '57P03', // cannot_connect_now (starting up, recovering)
  '57P05', // idle_session_timeout
  '57014', // query_canceled: statement_timeout or a cancel request
  '55P03', // lock_not_available: lock_timeout
  '25006', // read_only_sql_transaction: we are talking to a standby after a failover
  '25P03', // idle_in_transaction_session_timeout
]);

/**
 * node-postgres raises some connection failures as plain `Error`s without a
 * code; these are their messages (pg 8.x).
 */
const UNAVAILABLE_MESSAGE =
  /connection terminated|query read timeout|timeout expired|timeout exceeded when trying to connect|not queryable|connection error|connection timeout|cannot use a pool after calling end/i;

/** The SQLSTATE (or Node.js error code) carried by `err`, if any. */
export function errorCode(err: unknown): string | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  const code = (err as { code?: unknown }).code;
  return typeof code === 'string' ? code : undefined;
}

/** Classifies an error thrown by node-postgres; see {@link PgErrorKind}. */
export function classifyPgError(err: unknown): PgErrorKind {
  const code = errorCode(err);
  if (code !== undefined) {
    if (NETWORK_CODES.has(code) || UNAVAILABLE_STATES.has(code)) return 'unavailable';
    const sqlClass = code.length === 5 ? code.slice(0, 2) : '';
    // 08 connection exception, 53 insufficient resources, 58 system error (I/O).
    if (sqlClass === '08' || sqlClass === '53' || sqlClass === '58') return 'unavailable';
    if (code === '23505') return 'unique-violation';
    if (sqlClass === '22' || sqlClass === '23' || sqlClass === '54') return 'data';
    if (code === '40001' || code === '40P01') return 'transient-conflict';
    if (sqlClass !== '') return 'unknown';
  }
  if (err instanceof Error && UNAVAILABLE_MESSAGE.test(err.message)) return 'unavailable';
  return 'unknown';
}

/**
 * Translates a pg error for callers above the store: an `unavailable` error
 * becomes `StoreUnavailableError` (with the original as `cause`); any other
 * error is returned unchanged, for the caller to map or to surface as INTERNAL.
 */
export function translatePgError(err: unknown, what = 'the event store is unavailable'): unknown {
  if (err instanceof StoreUnavailableError) return err;
  return classifyPgError(err) === 'unavailable' ? new StoreUnavailableError(what, { cause: err }) : err;
}
