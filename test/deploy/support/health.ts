/** A grpc.health.v1 client: what Kubernetes' native gRPC probes call. */
import * as grpc from '@grpc/grpc-js';
import { service } from 'grpc-health-check';

export type ServingStatus = 'UNKNOWN' | 'SERVING' | 'NOT_SERVING' | 'SERVICE_UNKNOWN';

interface HealthStub extends grpc.Client {
  check(req: { service: string }, options: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res?: { status: ServingStatus }) => void): void;
  watch(req: { service: string }): grpc.ClientReadableStream<{ status: ServingStatus }>;
}

const Health = grpc.makeGenericClientConstructor(service, 'Health') as unknown as new (address: string, creds: grpc.ChannelCredentials) => HealthStub;

export interface HealthClient {
  /** Health.Check of `serviceName` ('' = the whole server), as a probe does. */
  check(serviceName?: string, deadlineMs?: number): Promise<ServingStatus>;
  /** Health.Watch: calls `onStatus` with every status until `cancel()`. */
  watch(onStatus: (status: ServingStatus) => void, serviceName?: string): { cancel(): void };
  close(): void;
}

export function healthClient(address: string): HealthClient {
  const stub = new Health(address, grpc.credentials.createInsecure());
  return {
    check: (serviceName = '', deadlineMs = 2000) =>
      new Promise((resolve, reject) => stub.check({ service: serviceName }, { deadline: Date.now() + deadlineMs }, (err, res) => (err ? reject(err) : resolve(res!.status)))),
    watch: (onStatus, serviceName = '') => {
      const call = stub.watch({ service: serviceName });
      call.on('data', (m: { status: ServingStatus }) => onStatus(m.status));
      // The stream ends with CANCELLED when we cancel it, or when the server goes away.
      call.on('error', () => {});
      return { cancel: () => call.cancel() };
    },
    close: () => stub.close(),
  };
}
