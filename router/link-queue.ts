/**
 * The frames waiting to be written on one shard link, queued per caller
 * (`callerKey`: its principal, else its connection) and taken out fairly by
 * bytes (deficit round robin): a caller that queues megabytes of large
 * commands delays another's small command by at most one round, not by its
 * whole backlog. A link's stream
 * carries only what the shard's flow-control window lets through, so what
 * waits here, and in which order it leaves, decides every caller's latency.
 */
import type { LinkFrame } from '../src/grpc/link-codec.js';

/** A frame and its encoded size inside a batch. */
export interface QueuedFrame extends LinkFrame {
  size: number;
}

/** Bytes a caller may send per round, so small frames of others pass large ones. */
const QUANTUM_BYTES = 16 * 1024;

interface PeerQueue {
  readonly caller: string;
  frames: QueuedFrame[];
  head: number;
  deficit: number;
}

export class LinkQueue {
  readonly #queues = new Map<string, PeerQueue>();
  /** Callers with frames waiting, in round-robin order from `#next`. */
  #active: PeerQueue[] = [];
  #next = 0;
  #bytes = 0;
  #count = 0;

  /** Bytes waiting. */
  get bytes(): number {
    return this.#bytes;
  }

  get length(): number {
    return this.#count;
  }

  push(caller: string, frame: QueuedFrame): void {
    let q = this.#queues.get(caller);
    if (!q) {
      q = { caller, frames: [], head: 0, deficit: 0 };
      this.#queues.set(caller, q);
      this.#active.push(q);
    }
    q.frames.push(frame);
    this.#bytes += frame.size;
    this.#count++;
  }

  /**
   * Takes the next frames to write, up to `maxBytes` (at least one frame if
   * any waits): each caller in turn may take frames worth its deficit,
   * which grows by a quantum per turn.
   */
  take(maxBytes: number): QueuedFrame[] {
    const out: QueuedFrame[] = [];
    // Fast path: one caller waiting (a single busy caller, or the only one in this turn).
    if (this.#active.length === 1 && this.#active[0]!.frames.length - this.#active[0]!.head <= 1) {
      const q = this.#active[0]!;
      out.push(q.frames[q.head]!);
      this.#remove(q);
      this.#bytes -= out[0]!.size;
      this.#count--;
      return out;
    }
    let bytes = 0;
    while (this.#active.length > 0) {
      if (this.#next >= this.#active.length) this.#next = 0;
      const q = this.#active[this.#next]!;
      q.deficit += QUANTUM_BYTES;
      let full = false;
      while (q.head < q.frames.length) {
        const f = q.frames[q.head]!;
        if (out.length > 0 && (f.size > q.deficit || bytes + f.size > maxBytes)) {
          full = bytes + f.size > maxBytes;
          break;
        }
        // The first frame of a batch is taken regardless of its size: a batch is never empty.
        q.head++;
        q.deficit = Math.max(0, q.deficit - f.size);
        bytes += f.size;
        out.push(f);
        this.#bytes -= f.size;
        this.#count--;
      }
      if (q.head >= q.frames.length) this.#remove(q);
      else this.#next++;
      if (full || bytes >= maxBytes) break;
    }
    return out;
  }

  /** Takes every frame waiting. */
  clear(): QueuedFrame[] {
    const out: QueuedFrame[] = [];
    for (const q of this.#active) out.push(...q.frames.slice(q.head));
    this.#queues.clear();
    this.#active = [];
    this.#next = 0;
    this.#bytes = 0;
    this.#count = 0;
    return out;
  }

  #remove(q: PeerQueue): void {
    this.#queues.delete(q.caller);
    const i = this.#active.indexOf(q);
    this.#active.splice(i, 1);
    if (i < this.#next) this.#next--;
  }
}
