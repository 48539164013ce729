/**
 * `shardwrite erase <subject> [--reenable]`: erases a data subject through
 * the router (`DataSubjectService.EraseSubject`, admin only): its data key is
 * destroyed on every shard, its personal fields read as "[erased]" from then
 * on, `SubjectErased` is recorded for subscribers. Idempotent, and run again
 * to finish an erasure that was interrupted. `--reenable` gives an erased
 * subject a new key instead.
 *
 * The router is `--address`, else the one `npm start` recorded in
 * `.data/cluster.json`, else 127.0.0.1:50051; `--token` or SHARDWRITE_TOKEN
 * (an `admin` or `*` token), `--ca-file` or SHARDWRITE_CA_FILE for TLS.
 */
import * as grpc from '@grpc/grpc-js';
import { credentialsOf } from '../src/client/credentials.js';
import type { DataSubjectResult__Output } from '../src/generated/shardwrite/v1/DataSubjectResult.js';
import { loadApi } from '../src/grpc/proto.js';
import type { Output } from './ring.js';
import { fromClusterFile } from './tail.js';

export const ERASE_USAGE = `  erase <subject> [--reenable] [--address host:port] [--token T] [--ca-file F]
                        destroy a data subject's key (its personal data reads "[erased]" everywhere);
                        idempotent, and finishes an interrupted erasure; --reenable gives it a new key`;

/** How long an erasure may take (two database transactions and an append). @default 30000 */
const ERASE_TIMEOUT_MS = 30_000;

export async function eraseCommand(args: readonly string[], env: NodeJS.ProcessEnv, out: Output): Promise<number> {
  let subject: string | undefined;
  let reenable = false;
  let address: string | undefined;
  let token = env.SHARDWRITE_TOKEN || undefined;
  let caFile = env.SHARDWRITE_CA_FILE || undefined;
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--reenable') reenable = true;
    else if (a === '--address' || a === '--token' || a === '--ca-file') {
      const v = args[++i];
      if (v === undefined) subject = undefined;
      if (a === '--address') address = v;
      else if (a === '--token') token = v;
      else caFile = v;
    } else if (subject === undefined && !a.startsWith('--')) subject = a;
    else subject = '';
  }
  if (!subject) {
    out.error(`usage:\n${ERASE_USAGE}`);
    return 2;
  }
  const cluster = address === undefined ? fromClusterFile() : undefined;
  const target = address ?? cluster?.address ?? '127.0.0.1:50051';
  caFile ??= cluster?.caFile;
  const Service = loadApi().shardwrite.v1.DataSubjectService;
  const client = new Service(target, credentialsOf(caFile ? { tls: { caFile } } : {}));
  const metadata = new grpc.Metadata();
  if (token) metadata.set('authorization', `Bearer ${token}`);
  try {
    const result = await new Promise<DataSubjectResult__Output>((resolve, reject) => {
      const callback = (err: grpc.ServiceError | null, r?: DataSubjectResult__Output) => (err ? reject(err) : resolve(r!));
      const options = { deadline: Date.now() + ERASE_TIMEOUT_MS };
      if (reenable) client.ReenableSubject({ subjectId: subject }, metadata, options, callback);
      else client.EraseSubject({ subjectId: subject }, metadata, options, callback);
    });
    const what = reenable ? 're-enabled' : 'erased';
    out.line(result.changed ? `${result.subjectId} ${what} (data-subject-${result.subjectId} v${result.version})` : `${result.subjectId} was already ${what}: nothing to do`);
    return 0;
  } catch (err) {
    const e = err as grpc.ServiceError;
    out.error(`${reenable ? 're-enabling' : 'erasing'} ${subject} failed: ${grpc.status[e.code] ?? ''} ${e.details ?? e.message} (run it again: it is idempotent)`);
    return 1;
  } finally {
    client.close();
  }
}
