/** What a command sent by the client can fail with (besides a closed client). */
import * as grpc from '@grpc/grpc-js';
import type { RpcStatus } from '../grpc/status.js';

/** The service refused the command; `status` has the gRPC code and ErrorInfo reason. */
export class CommandFailedError extends Error {
  constructor(readonly status: RpcStatus) {
    super(`${grpc.status[status.code] ?? status.code}: ${status.message}`);
    this.name = 'CommandFailedError';
  }
  get code(): grpc.status {
    return this.status.code;
  }
  get reason(): string | undefined {
    return this.status.reason;
  }
}

/** The stream broke while the command was in flight: its outcome is unknown. */
export class ConnectionLostError extends Error {
  constructor(readonly cause: RpcStatus) {
    super(
      `the command stream closed before the outcome arrived (${grpc.status[cause.code] ?? cause.code}: ${cause.message}); ` +
        'the command may or may not have been applied — retry it with the same commandId',
    );
    this.name = 'ConnectionLostError';
  }
}
