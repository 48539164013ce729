import * as grpc from '@grpc/grpc-js';

/** A server call's absolute deadline in ms since the epoch, if the caller set one. */
export function deadlineOf(call: { getDeadline(): grpc.Deadline }): number | undefined {
  const deadline = call.getDeadline();
  const ms = deadline instanceof Date ? deadline.getTime() : deadline;
  return Number.isFinite(ms) ? ms : undefined;
}

/** Binds `server` on `address` (`host:port`, port 0 = any free one) without TLS; resolves with the bound address. */
export function bindInsecure(server: grpc.Server, address: string): Promise<string> {
  return bind(server, address, grpc.ServerCredentials.createInsecure());
}

/**
 * A plaintext server with only `health`'s `grpc.health.v1.Health` on
 * `address`, for probes that cannot speak TLS; resolves with it and its bound address.
 */
export async function serveHealthOnly(health: { addToServer(server: grpc.Server): void }, address: string): Promise<{ server: grpc.Server; address: string }> {
  const server = new grpc.Server();
  health.addToServer(server);
  return { server, address: await bindInsecure(server, address) };
}

/** Binds `server` on `address` (`host:port`, port 0 = any free one) with `credentials`; resolves with the bound address. */
export async function bind(server: grpc.Server, address: string, credentials: grpc.ServerCredentials): Promise<string> {
  const port = await new Promise<number>((resolve, reject) => server.bindAsync(address, credentials, (err, p) => (err ? reject(err) : resolve(p))));
  return `${address.slice(0, address.lastIndexOf(':'))}:${port}`;
}

/**
 * Graceful stop of `server`: lets the calls in flight finish for up to
 * `graceMs`, then calls `onGraceOver` and cancels the ones still running.
 */
export function shutdownWithin(server: grpc.Server, graceMs: number, onGraceOver: () => void): Promise<void> {
  return new Promise<void>((resolve) => {
    const timer = setTimeout(() => {
      onGraceOver();
      server.forceShutdown();
      resolve();
    }, graceMs);
    server.tryShutdown(() => {
      clearTimeout(timer);
      resolve();
    });
  });
}
