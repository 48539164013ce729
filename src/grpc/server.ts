import * as grpc from '@grpc/grpc-js';

/** Binds `server` on `address` (`host:port`, port 0 = any free one) without TLS; resolves with the bound address. */
export async function bindInsecure(server: grpc.Server, address: string): Promise<string> {
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(address, grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );
  return `${address.slice(0, address.lastIndexOf(':'))}:${port}`;
}
