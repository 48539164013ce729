/**
 * The `order_summary` read model: one row per order — status, line count,
 * total, payment state — kept from the events of its three streams
 * (`order-header`, `order-lines`, `order-payment`).
 *
 * Idempotent by stream version: `order_summary_applied` holds the last
 * version applied per stream, and an event is applied in the same
 * transaction that moves that version forward, only when it is newer. A
 * redelivered event (the consumer group is at-least-once) changes nothing.
 * An order's three streams may sit in different partitions and be applied
 * concurrently: every change is a single-row update relative to the row
 * as it is (`line_count + 1`), never a read-modify-write in the process.
 */
import type pg from 'pg';
import type { ReceivedEvent } from '../../src/client/index.js';

/** The aggregate types the read model follows. */
export const ORDER_SUMMARY_TYPES = ['order-header', 'order-lines', 'order-payment'] as const;

export const SCHEMA = `
CREATE TABLE IF NOT EXISTS order_summary (
  order_id          text PRIMARY KEY,
  -- none (lines or payment seen before the header) | placed | shipped | cancelled
  status            text NOT NULL DEFAULT 'none',
  customer_id       text,
  line_count        integer NOT NULL DEFAULT 0,
  total_cents       bigint NOT NULL DEFAULT 0,
  -- none | authorized | partially-captured | captured
  payment_state     text NOT NULL DEFAULT 'none',
  authorized_cents  bigint NOT NULL DEFAULT 0,
  captured_cents    bigint NOT NULL DEFAULT 0,
  currency          text,
  updated_at        timestamptz NOT NULL DEFAULT now()
);
-- A removed line's event names only the line: its total is looked up here.
CREATE TABLE IF NOT EXISTS order_summary_lines (
  order_id     text NOT NULL,
  line_id      text NOT NULL,
  total_cents  bigint NOT NULL,
  PRIMARY KEY (order_id, line_id)
);
CREATE TABLE IF NOT EXISTS order_summary_applied (
  stream_id  text PRIMARY KEY,
  version    bigint NOT NULL
);`;

export interface OrderSummary {
  readonly orderId: string;
  readonly status: string;
  readonly customerId: string | undefined;
  readonly lineCount: number;
  readonly totalCents: number;
  readonly paymentState: string;
  readonly authorizedCents: number;
  readonly capturedCents: number;
  readonly currency: string | undefined;
}

/** Creates the tables when missing. */
export async function migrate(pool: pg.Pool): Promise<void> {
  await pool.query(SCHEMA);
}

type Data = Record<string, unknown>;
const num = (d: Data, k: string): number => Number(d[k] ?? 0);
const str = (d: Data, k: string): string | null => (typeof d[k] === 'string' ? d[k] : null);

// Each statement touches the order's row relative to what it holds, so concurrent streams of one order compose.
const ENSURE_ROW = `INSERT INTO order_summary (order_id) VALUES ($1) ON CONFLICT (order_id) DO NOTHING`;

async function applyChange(c: pg.PoolClient, orderId: string, e: ReceivedEvent): Promise<void> {
  const d = (e.data ?? {}) as Data;
  switch (e.type) {
    case 'OrderPlaced':
      await c.query(`UPDATE order_summary SET status = 'placed', customer_id = $2, updated_at = now() WHERE order_id = $1`, [orderId, str(d, 'customerId')]);
      return;
    case 'OrderShipped':
      await c.query(`UPDATE order_summary SET status = 'shipped', updated_at = now() WHERE order_id = $1`, [orderId]);
      return;
    case 'OrderCancelled':
      await c.query(`UPDATE order_summary SET status = 'cancelled', updated_at = now() WHERE order_id = $1`, [orderId]);
      return;
    case 'OrderLineAdded': {
      const added = await c.query(`INSERT INTO order_summary_lines (order_id, line_id, total_cents) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`, [orderId, str(d, 'lineId'), num(d, 'lineTotalCents')]);
      if (added.rowCount === 1) {
        await c.query(`UPDATE order_summary SET line_count = line_count + 1, total_cents = total_cents + $2, updated_at = now() WHERE order_id = $1`, [orderId, num(d, 'lineTotalCents')]);
      }
      return;
    }
    case 'OrderLineRemoved': {
      const removed = await c.query<{ total_cents: string }>(`DELETE FROM order_summary_lines WHERE order_id = $1 AND line_id = $2 RETURNING total_cents`, [orderId, str(d, 'lineId')]);
      const row = removed.rows[0];
      if (row) {
        await c.query(`UPDATE order_summary SET line_count = line_count - 1, total_cents = total_cents - $2, updated_at = now() WHERE order_id = $1`, [orderId, row.total_cents]);
      }
      return;
    }
    case 'PaymentAuthorized':
      await c.query(
        `UPDATE order_summary SET payment_state = CASE WHEN captured_cents > 0 THEN payment_state ELSE 'authorized' END,
           authorized_cents = $2, currency = $3, updated_at = now() WHERE order_id = $1`,
        [orderId, num(d, 'amountCents'), str(d, 'currency')],
      );
      return;
    case 'PaymentCaptured':
      await c.query(
        `UPDATE order_summary SET captured_cents = captured_cents + $2,
           payment_state = CASE WHEN captured_cents + $2 >= authorized_cents THEN 'captured' ELSE 'partially-captured' END,
           currency = coalesce(currency, $3), updated_at = now() WHERE order_id = $1`,
        [orderId, num(d, 'amountCents'), str(d, 'currency')],
      );
      return;
    default:
      // ShippingAddressUpdated and any later event type: nothing in the summary changes, the version still moves.
      return;
  }
}

/**
 * Applies one event in one transaction. Resolves `'applied'`, or
 * `'skipped'` when its stream already had this version or a later one.
 */
export async function applyEvent(pool: pg.Pool, e: ReceivedEvent): Promise<'applied' | 'skipped'> {
  const c = await pool.connect();
  try {
    await c.query('BEGIN');
    // Moves the stream's version forward, or returns nothing when the event is old: it also locks the stream's row, so one stream never applies twice at once.
    const moved = await c.query(
      `INSERT INTO order_summary_applied (stream_id, version) VALUES ($1, $2)
       ON CONFLICT (stream_id) DO UPDATE SET version = EXCLUDED.version WHERE order_summary_applied.version < EXCLUDED.version
       RETURNING version`,
      [e.streamId, e.version],
    );
    if (moved.rowCount === 0) {
      await c.query('ROLLBACK');
      return 'skipped';
    }
    await c.query(ENSURE_ROW, [e.aggregateId]);
    await applyChange(c, e.aggregateId, e);
    await c.query('COMMIT');
    return 'applied';
  } catch (err) {
    await c.query('ROLLBACK').catch(() => {});
    throw err;
  } finally {
    c.release();
  }
}

/** The summary of one order, or undefined when no event of it was applied. */
export async function readSummary(pool: pg.Pool, orderId: string): Promise<OrderSummary | undefined> {
  const { rows } = await pool.query<Record<string, string | null>>(`SELECT * FROM order_summary WHERE order_id = $1`, [orderId]);
  const r = rows[0];
  if (!r) return undefined;
  return {
    orderId: r.order_id!,
    status: r.status!,
    customerId: r.customer_id ?? undefined,
    lineCount: Number(r.line_count),
    totalCents: Number(r.total_cents),
    paymentState: r.payment_state!,
    authorizedCents: Number(r.authorized_cents),
    capturedCents: Number(r.captured_cents),
    currency: r.currency ?? undefined,
  };
}

/** `o1: placed, 2 lines, total 49.98 EUR, payment authorized` */
export function describeSummary(s: OrderSummary): string {
  const money = (cents: number) => `${(cents / 100).toFixed(2)}${s.currency ? ` ${s.currency}` : ''}`;
  return (
    `${s.orderId}: ${s.status}, ${s.lineCount} line${s.lineCount === 1 ? '' : 's'}, total ${money(s.totalCents)}, payment ${s.paymentState}` +
    (s.capturedCents > 0 ? ` (${money(s.capturedCents)} of ${money(s.authorizedCents)} captured)` : '')
  );
}
