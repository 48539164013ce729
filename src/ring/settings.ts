/**
 * The ring settings shared by the router's and the shard's config modules, so
 * both read, default and validate them identically.
 */
import { choice, int, text, url, type EnvReader } from '../config.js';
import { parseRingBootstrap, RingDocumentError, type RingDocument } from './document.js';

export interface RingSettings {
  /**
   * RING_DATABASE_URL — the PostgreSQL database holding the ring (required by
   * the router; a shard without it owns every aggregate at epoch 0, the
   * single-shard mode).
   */
  readonly databaseUrl: string | undefined;
  /**
   * RING_BOOTSTRAP — `shard-0=host:port,shard-1=host:port`: written as epoch 1
   * when the ring database has no ring yet (the first writer wins); unset =
   * wait for someone else to write it.
   */
  readonly bootstrap: RingDocument | undefined;
  /** RING_POLL_MS — re-read the ring this often besides notifications; default {@link DEFAULT_RING_POLL_MS}; 0 = only on notifications and refusals. */
  readonly pollMs: number;
  /** RING_NOTIFY — `on` (LISTEN/NOTIFY, default) or `off` (poll only, e.g. behind PgBouncer in transaction mode). */
  readonly notify: boolean;
}

/**
 * How often the ring is re-read besides notifications, in ms.
 * @default 2000
 */
export const DEFAULT_RING_POLL_MS = 2000;

/** The settings `readRingSettings` reads. */
export const RING_SETTINGS = {
  RING_DATABASE_URL: url('postgres:', 'postgresql:'),
  RING_BOOTSTRAP: text(),
  RING_POLL_MS: int(DEFAULT_RING_POLL_MS, 0, 3_600_000),
  RING_NOTIFY: choice('on', ['on', 'off']),
} as const;

/** Reads the ring settings into `r`, which collects the problems. */
export function readRingSettings(r: EnvReader<typeof RING_SETTINGS>, databaseRequired: boolean): RingSettings {
  const databaseUrl = r.url('RING_DATABASE_URL', databaseRequired);
  const text = r.optionalString('RING_BOOTSTRAP');
  let bootstrap: RingDocument | undefined;
  if (text !== undefined) {
    try {
      bootstrap = parseRingBootstrap(text);
    } catch (err) {
      if (!(err instanceof RingDocumentError)) throw err;
      r.problem(`RING_BOOTSTRAP: ${err.message}`);
    }
    if (databaseUrl === undefined) r.problem('RING_BOOTSTRAP needs RING_DATABASE_URL');
  }
  return {
    databaseUrl,
    bootstrap,
    pollMs: r.int('RING_POLL_MS'),
    notify: r.onOff('RING_NOTIFY'),
  };
}
