/**
 * The router's listening socket, with a bound on connections: grpc-js has no
 * connection limit of its own, so the router accepts TCP connections itself
 * (a `net.Server` with `maxConnections`) and hands each one to the gRPC
 * server through its connection injector. A connection beyond the limit is
 * closed as soon as it is accepted; its client sees UNAVAILABLE and
 * reconnects with backoff, while the connections already open keep working.
 */
import * as grpc from '@grpc/grpc-js';
import * as net from 'node:net';

/**
 * Connections a router accepts at once.
 * @default 1024
 */
export const DEFAULT_MAX_CONNECTIONS = 1024;

/**
 * Concurrent calls (HTTP/2 streams) on one connection (`grpc.max_concurrent_streams`);
 * a client's further calls wait in its own HTTP/2 layer for a free stream.
 * @default 128
 */
export const DEFAULT_MAX_STREAMS_PER_CONNECTION = 128;

export interface Listener {
  /** The bound address (`host:port`, the real port when 0 was asked for). */
  readonly address: string;
  /** Stops accepting connections (the open ones are the gRPC server's to close). */
  close(): void;
}

/**
 * Listens on `address` (`host:port`, port 0 = any free one) for `server`,
 * accepting at most `maxConnections` connections at once.
 *
 * @throws when the address cannot be bound.
 */
export async function listen(server: grpc.Server, address: string, maxConnections: number, credentials: grpc.ServerCredentials = grpc.ServerCredentials.createInsecure()): Promise<Listener> {
  const injector = server.createConnectionInjector(credentials);
  const sockets = net.createServer({ noDelay: true }, (socket) => injector.injectConnection(socket));
  sockets.maxConnections = maxConnections;
  const colon = address.lastIndexOf(':');
  const host = address.slice(0, colon).replace(/^\[(.*)\]$/, '$1');
  await new Promise<void>((resolve, reject) => {
    sockets.once('error', reject);
    sockets.listen({ host, port: Number(address.slice(colon + 1)) }, () => {
      sockets.off('error', reject);
      resolve();
    });
  });
  const bound = sockets.address() as net.AddressInfo;
  return {
    address: `${address.slice(0, colon)}:${bound.port}`,
    close: () => {
      sockets.close();
    },
  };
}
