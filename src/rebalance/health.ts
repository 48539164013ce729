/**
 * Asks a shard process whether it serves (`grpc.health.v1.Health/Check`):
 * a rebalance publishes a ring naming a new shard only while that shard
 * answers, so routers never get sent to a process that is not there.
 */
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { protoPath } from 'grpc-health-check';

type HealthClient = grpc.Client & {
  Check(request: { service: string }, options: grpc.CallOptions, callback: (err: grpc.ServiceError | null, response?: { status: string }) => void): void;
};

let Health: (new (address: string, credentials: grpc.ChannelCredentials) => HealthClient) | undefined;

/**
 * Resolves `undefined` when the process at `address` reports SERVING within
 * `timeoutMs` (for `service`; default '', the whole server; over `credentials`,
 * default plaintext), else a sentence
 * saying what it answered (or that it did not).
 */
export async function checkServing(address: string, timeoutMs = 3000, service = '', credentials = grpc.credentials.createInsecure()): Promise<string | undefined> {
  Health ??= (
    grpc.loadPackageDefinition(protoLoader.loadSync(protoPath, { enums: String, defaults: true })) as unknown as {
      grpc: { health: { v1: { Health: new (address: string, credentials: grpc.ChannelCredentials) => HealthClient } } };
    }
  ).grpc.health.v1.Health;
  const client = new Health(address, credentials);
  try {
    const status = await new Promise<string>((resolve, reject) =>
      client.Check({ service }, { deadline: Date.now() + timeoutMs }, (err, response) => (err ? reject(err) : resolve(response?.status ?? 'UNKNOWN'))),
    );
    return status === 'SERVING' ? undefined : `it reports ${status}`;
  } catch (err) {
    const e = err as Partial<grpc.ServiceError>;
    if (e.code === grpc.status.NOT_FOUND && service !== '') return `it does not serve ${service} (NOT_FOUND)`;
    return `it does not answer (${e.code !== undefined ? grpc.status[e.code] : 'error'}: ${e.details ?? e.message ?? String(err)})`;
  } finally {
    client.close();
  }
}
