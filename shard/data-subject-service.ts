/**
 * `shardwrite.v1.DataSubjectService` at a shard: erasing and re-enabling data
 * subjects (`src/privacy/erasure.ts`). The permission table admits only
 * admins; the router forwards each call to the shard that owns the subject id.
 */
import * as grpc from '@grpc/grpc-js';
import type { DataSubjectResult } from '../src/generated/shardwrite/v1/DataSubjectResult.js';
import { loadApi } from '../src/grpc/proto.js';
import { isUnexpected, toServiceError } from '../src/grpc/status.js';
import type { Logger } from '../src/observability/logger.js';
import type { Erasure, SubjectOutcome } from '../src/privacy/erasure.js';
import type { CallContext } from '../src/pipeline/pipeline.js';
import { callContext } from './grpc-services.js';

/** The service's name, for health. */
export const DATA_SUBJECT_SERVICE = 'shardwrite.v1.DataSubjectService';

export function addDataSubjectService(server: grpc.Server, deps: { readonly erasure: Erasure; readonly logger: Logger }): void {
  const handler =
    (run: (request: unknown, ctx: CallContext) => Promise<SubjectOutcome>, method: string) =>
    (call: grpc.ServerUnaryCall<unknown, DataSubjectResult>, callback: grpc.sendUnaryData<DataSubjectResult>) => {
      run(call.request, callContext(call)).then(
        (o) => callback(null, { subjectId: o.subjectId, version: String(o.version), changed: o.changed, erased: o.erased }),
        (err: unknown) => {
          if (isUnexpected(err)) deps.logger.error({ err, method }, 'data subject call failed unexpectedly');
          callback(toServiceError(err));
        },
      );
    };
  server.addService(loadApi().shardwrite.v1.DataSubjectService.service, {
    EraseSubject: handler((r, ctx) => deps.erasure.erase(r, ctx), 'EraseSubject'),
    ReenableSubject: handler((r, ctx) => deps.erasure.reenable(r, ctx), 'ReenableSubject'),
  });
}
