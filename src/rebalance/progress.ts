/**
 * How a move reports itself while it runs, and how that reads: one plain
 * line for logs and pipes, a progress bar for a terminal.
 */
import type { MoveFigures } from './move-store.js';
import type { MoveKind, MovePhase } from './plan.js';

/** A move's state as the rebalancer reports it after each step. */
export interface MoveProgress {
  readonly targetEpoch: number;
  readonly kind: MoveKind;
  readonly shardId: string;
  readonly phase: MovePhase;
  readonly figures: MoveFigures;
  /** Milliseconds since this run started. */
  readonly elapsedMs: number;
  /** Moving streams copied per second in this run's copy passes; undefined before any. */
  readonly streamsPerSecond: number | undefined;
  /** Estimated milliseconds left in the current phase; undefined when unknown. */
  readonly etaMs: number | undefined;
  /** What the phase is waiting for, when it waits. */
  readonly note?: string;
}

const number = new Intl.NumberFormat('en-US');

/** `1,234`. */
export function formatCount(n: number): string {
  return number.format(Math.round(n));
}

/** `850 ms`, `12.3 s`, `4 min 05 s`. */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  const s = Math.round(ms / 1000);
  return `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, '0')} s`;
}

/** The count a phase advances, out of the moving streams. */
export function phaseCount(p: MoveProgress): { done: number; total: number; what: string } {
  const f = p.figures;
  switch (p.phase) {
    case 'seal':
      return { done: f.streamsSealed, total: f.streamsTotal, what: 'streams sealed' };
    case 'cleanup':
    case 'done':
      return { done: f.streamsCleaned, total: f.streamsTotal, what: 'old copies deleted' };
    default:
      return { done: f.streamsCopied, total: f.streamsTotal, what: 'streams moved' };
  }
}

function tail(p: MoveProgress): string {
  const parts = [`${formatCount(p.figures.eventsCopied)} events copied`];
  if (p.streamsPerSecond !== undefined) parts.push(`${formatCount(p.streamsPerSecond)} streams/s`);
  if (p.etaMs !== undefined) parts.push(`about ${formatDuration(p.etaMs)} left`);
  if (p.note) parts.push(p.note);
  return parts.join(', ');
}

/** One plain line: `epoch 5 (add shard-3) precopy: 12,345/25,000 streams moved, 40,123 events copied, 8,200 streams/s, about 2 s left`. */
export function progressLine(p: MoveProgress): string {
  const { done, total, what } = phaseCount(p);
  return `epoch ${p.targetEpoch} (${p.kind} ${p.shardId}) ${p.phase}: ${formatCount(done)}/${formatCount(total)} ${what}, ${tail(p)}`;
}

/** A terminal bar of `width` cells: `precopy [██████······] 12,345/25,000 streams moved, …`. */
export function progressBar(p: MoveProgress, width = 24): string {
  const { done, total, what } = phaseCount(p);
  const share = total === 0 ? (p.phase === 'precopy' ? 0 : 1) : Math.min(1, done / total);
  const filled = Math.round(share * width);
  return `${p.phase.padEnd(7)} [${'█'.repeat(filled)}${'·'.repeat(width - filled)}] ${formatCount(done)}/${formatCount(total)} ${what}, ${tail(p)}`;
}
