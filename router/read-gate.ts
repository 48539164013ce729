/**
 * Flow control for calls that stream requests. Pausing a grpc-js server
 * stream is not enough: while paused, its Readable still reads ahead up to
 * 16 messages (of up to the message size limit each) into memory. A gate
 * sits between the handler and grpc-js: while it is closed, grpc-js is not
 * asked for the next message, so it stops reading the HTTP/2 stream and the
 * client's flow-control window fills — the client is slowed, not buffered.
 */
import * as grpc from '@grpc/grpc-js';

/** Lets a handler stop and restart reading its call's requests. */
export interface ReadGate {
  /** No further request is read until `open()` (one already asked for may still arrive). */
  close(): void;
  open(): void;
}

class GatedCall extends grpc.ServerInterceptingCall implements ReadGate {
  #open = true;
  #wanted = false;

  override startRead(): void {
    if (this.#open) super.startRead();
    else this.#wanted = true;
  }

  close(): void {
    this.#open = false;
  }

  open(): void {
    if (this.#open) return;
    this.#open = true;
    if (this.#wanted) {
      this.#wanted = false;
      super.startRead();
    }
  }
}

/**
 * A server interceptor giving every call that streams requests a gate, which
 * its handler finds by the call's metadata object (grpc-js hands the object
 * an interceptor passes on to the handler unchanged). Other calls pass
 * through untouched.
 */
export class ReadGates {
  readonly #gates = new WeakMap<grpc.Metadata, ReadGate>();

  readonly interceptor: grpc.ServerInterceptor = (method, call) => {
    // A call that does not stream requests is read once: nothing to gate, and no wrapper on its path.
    if (!method.requestStream) return call as grpc.ServerInterceptingCall;
    const gates = this.#gates;
    const gated: GatedCall = new GatedCall(call, {
      start: (next) =>
        next({
          onReceiveMetadata: (metadata, pass) => {
            gates.set(metadata, gated);
            pass(metadata);
          },
        }),
    });
    return gated;
  };

  /** The gate of the call that received `metadata`, if it streams requests. */
  of(metadata: grpc.Metadata): ReadGate | undefined {
    return this.#gates.get(metadata);
  }
}
