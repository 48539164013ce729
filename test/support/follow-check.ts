/**
 * Checks what a follower (a subscription, a consumer group, a bus) received
 * against a load run's acknowledgements: every acknowledged event arrived,
 * each stream's versions in order and contiguous from 1, nothing twice.
 */
import type { Ack } from './ledger.js';

export interface Followed {
  readonly eventId: string;
  readonly streamId: string;
  readonly version: number;
}

/** The highest acknowledged version of every stream. */
export function ackedVersions(acks: readonly Ack[]): Map<string, number> {
  const out = new Map<string, number>();
  for (const a of acks) out.set(a.streamId, Math.max(out.get(a.streamId) ?? 0, a.version));
  return out;
}

/** Whether every acknowledged stream has arrived up to its acknowledged version. */
export function reachedAcks(received: readonly Followed[], acked: ReadonlyMap<string, number>): boolean {
  const top = new Map<string, number>();
  for (const e of received) top.set(e.streamId, Math.max(top.get(e.streamId) ?? 0, e.version));
  for (const [stream, v] of acked) if ((top.get(stream) ?? 0) < v) return false;
  return true;
}

/**
 * Every problem, one sentence each: a stream whose arrivals are not exactly
 * 1, 2, …, n in that order (a gap, a repeat, a reordering), an event id seen
 * twice, an acknowledged version that never arrived.
 */
export function followViolations(received: readonly Followed[], acked: ReadonlyMap<string, number>): string[] {
  const problems: string[] = [];
  const ids = new Set<string>();
  const byStream = new Map<string, number[]>();
  for (const e of received) {
    if (ids.has(e.eventId)) problems.push(`event ${e.eventId} (${e.streamId} v${e.version}) arrived twice`);
    ids.add(e.eventId);
    (byStream.get(e.streamId) ?? byStream.set(e.streamId, []).get(e.streamId)!).push(e.version);
  }
  for (const [stream, versions] of byStream) {
    const bad = versions.findIndex((v, i) => v !== i + 1);
    if (bad >= 0) problems.push(`${stream}: versions ${versions.slice(Math.max(0, bad - 2), bad + 3).join(',')} around arrival ${bad + 1} (expected ${bad + 1})`);
  }
  for (const [stream, v] of acked) {
    const got = byStream.get(stream)?.length ?? 0;
    if (got < v) problems.push(`${stream}: acknowledged up to v${v}, received ${got}`);
  }
  return problems.slice(0, 20);
}
