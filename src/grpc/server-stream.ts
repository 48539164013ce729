/**
 * Serving a long-lived server stream from an async source, with gRPC's flow
 * control as the pace: the source is pulled only while the call's send
 * buffer drains, so a slow reader costs nothing but its own cursor.
 */
import * as grpc from '@grpc/grpc-js';
import type { Logger } from '../observability/logger.js';
import { UnauthenticatedError } from '../errors.js';
import { isUnexpected, toServiceError } from './status.js';

/**
 * Writes every batch `produce` yields to `call`, waiting for 'drain' whenever
 * the call's buffer is full. The signal aborts when the caller cancels or the
 * call closes. The call ends with OK when the source ends, or with the
 * source's error mapped by the status module (an unexpected one is logged,
 * never leaked). When `closing` aborts (the server drains), the call ends with
 * UNAVAILABLE, so the caller resumes elsewhere from its last checkpoint; at
 * `expiresAt` it ends with UNAUTHENTICATED (a long-lived stream does not
 * outlive its credentials).
 */
/** The longest delay setTimeout takes. */
const MAX_TIMER_MS = 2 ** 31 - 1;

export async function serveStream<T>(
  call: grpc.ServerWritableStream<unknown, T>,
  produce: (signal: AbortSignal) => AsyncIterable<readonly T[]>,
  options: {
    readonly logger: Logger;
    readonly what: string;
    readonly closing?: AbortSignal;
    /** When the caller's credentials expire (ms since epoch): the stream then ends UNAUTHENTICATED. */
    readonly expiresAt?: number;
  },
): Promise<void> {
  const { logger, what, closing } = options;
  const abort = new AbortController();
  const stop = () => abort.abort();
  // A timer past setTimeout's range (about 24 days) would fire at once: such streams are left alone.
  const untilExpiry = options.expiresAt === undefined ? undefined : options.expiresAt - Date.now();
  const expiry =
    untilExpiry === undefined || untilExpiry > MAX_TIMER_MS
      ? undefined
      : setTimeout(
          () => {
            if (abort.signal.aborted) return;
            abort.abort();
            call.emit('error', toServiceError(new UnauthenticatedError('the token has expired: subscribe again with a valid one, from the last checkpoint')));
          },
          Math.max(0, untilExpiry),
        );
  call.on('cancelled', stop);
  call.on('close', stop);
  call.on('error', stop);
  const shutDown = () => {
    if (abort.signal.aborted) return;
    abort.abort();
    call.emit('error', { code: grpc.status.UNAVAILABLE, details: 'the server is shutting down: resume from the last checkpoint' });
  };
  if (closing?.aborted) return shutDown();
  closing?.addEventListener('abort', shutDown);
  try {
    for await (const batch of produce(abort.signal)) {
      for (const message of batch) {
        if (abort.signal.aborted) return;
        if (!call.write(message)) await drained(call, abort.signal);
      }
      if (abort.signal.aborted) return;
    }
    if (!abort.signal.aborted) call.end();
  } catch (err) {
    if (abort.signal.aborted) return;
    if (isUnexpected(err)) logger.error({ err }, `${what} failed unexpectedly`);
    call.emit('error', toServiceError(err));
  } finally {
    clearTimeout(expiry);
    closing?.removeEventListener('abort', shutDown);
    abort.abort();
  }
}

function drained(call: grpc.ServerWritableStream<unknown, unknown>, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      call.off('drain', done);
      signal.removeEventListener('abort', done);
      resolve();
    };
    call.once('drain', done);
    signal.addEventListener('abort', done);
  });
}

/**
 * A service definition whose responses are written as the bytes the handler
 * gives (already encoded), requests decoded as usual.
 */
export function rawResponses(service: grpc.ServiceDefinition): grpc.ServiceDefinition {
  const out: Record<string, grpc.MethodDefinition<unknown, Buffer>> = {};
  for (const [name, method] of Object.entries(service)) {
    out[name] = { ...(method as grpc.MethodDefinition<unknown, unknown>), responseSerialize: (b: Buffer) => b, responseDeserialize: (b: Buffer) => b };
  }
  return out;
}
