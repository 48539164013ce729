/** Checks of what a subscription delivered against what a load had acknowledged. */
import type { SubscribedEvent__Output } from '../../src/generated/shardwrite/v1/SubscribedEvent.js';
import type { Ledger } from '../support/ledger.js';

/**
 * Every stream's events arrived in version order, contiguous from 1 (or from
 * the first delivered version when `fromStart` is false), each once; every
 * acknowledged command's events arrived. Returns the violations found.
 */
export function checkDelivery(events: readonly SubscribedEvent__Output[], ledger: Ledger | undefined, fromStart = true): string[] {
  const violations: string[] = [];
  const last = new Map<string, number>();
  const ids = new Set<string>();
  for (const e of events) {
    if (ids.has(e.eventId)) violations.push(`event ${e.eventId} (${e.streamId} v${e.version}) delivered twice`);
    ids.add(e.eventId);
    const v = Number(e.version);
    const prev = last.get(e.streamId);
    const expected = prev === undefined ? (fromStart ? 1 : v) : prev + 1;
    if (v !== expected) violations.push(`${e.streamId}: v${v} after ${prev === undefined ? 'nothing' : `v${prev}`}`);
    last.set(e.streamId, Math.max(prev ?? 0, v));
  }
  for (const ack of ledger?.acks ?? []) {
    const seen = last.get(ack.streamId) ?? 0;
    if (seen < ack.version) violations.push(`acknowledged ${ack.commandId} (${ack.streamId} v${ack.version}) never delivered (last v${seen})`);
  }
  return violations;
}

/** The highest acknowledged version per stream. */
export function acknowledgedVersions(ledger: Ledger): Map<string, number> {
  const out = new Map<string, number>();
  for (const a of ledger.acks) out.set(a.streamId, Math.max(out.get(a.streamId) ?? 0, a.version));
  return out;
}
