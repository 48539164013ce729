/**
 * A bound on the unary requests being read at once. grpc-js reads a unary
 * call's whole request (up to the message size limit) before its handler
 * runs, so without a bound, many connections sending large bodies at once
 * would fill the router with half-received requests before any budget could
 * refuse them. A unary call takes a slot before its request is read and
 * gives it back once the request is in (or the call ended); while no slot is
 * free its request stays in the client's HTTP/2 flow-control window.
 *
 * One connection may hold at most its share of the slots, and waiting calls
 * get free slots connection by connection in turn, so a connection sending
 * many large requests does not hold back another's small ones.
 */
import * as grpc from '@grpc/grpc-js';

/**
 * Unary requests read at once; each may hold up to MAX_MESSAGE_BYTES while it arrives.
 * @default 64
 */
export const DEFAULT_MAX_RECEIVING = 64;

interface Waiting {
  readonly peer: string;
  readonly start: () => void;
  cancelled: boolean;
}

export class ReceiveSlots {
  #used = 0;
  readonly #byPeer = new Map<string, number>();
  readonly #waiting = new Map<string, Waiting[]>();
  /** Connections with calls waiting, in turn. */
  #turns: string[] = [];
  readonly #perConnection: number;

  constructor(
    readonly max: number,
    connectionSharePercent: number,
  ) {
    this.#perConnection = Math.max(1, Math.floor((max * connectionSharePercent) / 100));
  }

  /**
   * The server interceptor: meters every unary call's read. Streaming calls
   * pass through (their reads are gated one message at a time, `read-gate.ts`).
   */
  readonly interceptor: grpc.ServerInterceptor = (method, call) => {
    if (method.requestStream) return call as grpc.ServerInterceptingCall;
    // Not a ServerInterceptingCall, but what grpc-js asks of one (it only calls the interface).
    return new MeteredCall(call, this) as unknown as grpc.ServerInterceptingCall;
  };

  /** Calls reading now, and waiting. */
  get figures(): { reading: number; waiting: number } {
    let waiting = 0;
    for (const q of this.#waiting.values()) waiting += q.length;
    return { reading: this.#used, waiting };
  }

  /** Runs `start` once a slot is free for `peer` (now, if one is); `cancel` withdraws a call still waiting. */
  acquire(peer: string, start: () => void): { cancel(): void } {
    if (this.#free(peer) && !this.#waiting.has(peer)) {
      this.#take(peer);
      start();
      return { cancel: () => {} };
    }
    const w: Waiting = { peer, start, cancelled: false };
    let q = this.#waiting.get(peer);
    if (!q) {
      this.#waiting.set(peer, (q = []));
      this.#turns.push(peer);
    }
    q.push(w);
    return {
      cancel: () => {
        w.cancelled = true;
      },
    };
  }

  release(peer: string): void {
    this.#used--;
    const n = (this.#byPeer.get(peer) ?? 1) - 1;
    if (n === 0) this.#byPeer.delete(peer);
    else this.#byPeer.set(peer, n);
    this.#grant();
  }

  #free(peer: string): boolean {
    return this.#used < this.max && (this.#byPeer.get(peer) ?? 0) < this.#perConnection;
  }

  #take(peer: string): void {
    this.#used++;
    this.#byPeer.set(peer, (this.#byPeer.get(peer) ?? 0) + 1);
  }

  /** Gives free slots to waiting calls, one connection at a time in turn. */
  #grant(): void {
    let skipped = 0;
    while (this.#used < this.max && this.#turns.length > 0 && skipped < this.#turns.length) {
      const peer = this.#turns.shift()!;
      const q = this.#waiting.get(peer)!;
      while (q.length > 0 && q[0]!.cancelled) q.shift();
      if (q.length === 0) {
        this.#waiting.delete(peer);
        continue;
      }
      if (!this.#free(peer)) {
        this.#turns.push(peer);
        skipped++;
        continue;
      }
      skipped = 0;
      const w = q.shift()!;
      if (q.length === 0) this.#waiting.delete(peer);
      else this.#turns.push(peer);
      this.#take(peer);
      w.start();
    }
  }
}

/**
 * A unary call whose first read waits for a slot, and gives it back once its
 * request is in or it ended. A thin delegate rather than a
 * ServerInterceptingCall: it sits on every unary call's path, and needs
 * neither of that class's queues.
 */
class MeteredCall implements grpc.ServerInterceptingCallInterface {
  #state: 'idle' | 'waiting' | 'reading' | 'done' = 'idle';
  #waiting: { cancel(): void } | undefined;
  readonly #peer: string;

  constructor(
    private readonly next: grpc.ServerInterceptingCallInterface,
    private readonly slots: ReceiveSlots,
  ) {
    this.#peer = next.getPeer();
  }

  start(listener: Parameters<grpc.ServerInterceptingCallInterface['start']>[0]): void {
    this.next.start({
      onReceiveMetadata: (metadata) => listener.onReceiveMetadata(metadata),
      onReceiveMessage: (message) => {
        this.#finish();
        listener.onReceiveMessage(message);
      },
      onReceiveHalfClose: () => {
        this.#finish();
        listener.onReceiveHalfClose();
      },
      onCancel: () => {
        this.#finish();
        listener.onCancel();
      },
    });
  }

  startRead(): void {
    if (this.#state !== 'idle') {
      if (this.#state === 'done') this.next.startRead();
      return;
    }
    this.#state = 'waiting';
    this.#waiting = this.slots.acquire(this.#peer, () => {
      this.#waiting = undefined;
      if (this.#state !== 'waiting') return this.slots.release(this.#peer);
      this.#state = 'reading';
      this.next.startRead();
    });
  }

  sendStatus(status: Parameters<grpc.ServerInterceptingCallInterface['sendStatus']>[0]): void {
    this.#finish();
    this.next.sendStatus(status);
  }

  sendMetadata(metadata: grpc.Metadata): void {
    this.next.sendMetadata(metadata);
  }

  sendMessage(message: unknown, callback: () => void): void {
    this.next.sendMessage(message, callback);
  }

  getPeer(): string {
    return this.#peer;
  }

  getDeadline(): grpc.Deadline {
    return this.next.getDeadline();
  }

  getHost(): string {
    return this.next.getHost();
  }

  getAuthContext(): ReturnType<grpc.ServerInterceptingCallInterface['getAuthContext']> {
    return this.next.getAuthContext();
  }

  getConnectionInfo(): ReturnType<grpc.ServerInterceptingCallInterface['getConnectionInfo']> {
    return this.next.getConnectionInfo();
  }

  getMetricsRecorder(): ReturnType<grpc.ServerInterceptingCallInterface['getMetricsRecorder']> {
    return this.next.getMetricsRecorder();
  }

  #finish(): void {
    if (this.#state === 'reading') this.slots.release(this.#peer);
    else if (this.#state === 'waiting') this.#waiting?.cancel();
    this.#state = 'done';
  }
}
