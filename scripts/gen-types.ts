/**
 * Regenerates the typed stubs in src/generated/ with the runtime's loader
 * options (src/grpc/proto.ts). `npm run gen`; CI fails when the committed
 * output differs (test/proto.unit.test.ts).
 */
import { execFileSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { resolve } from 'node:path';
import { GENERATED_PROTO_FILES, LOADER_OPTIONS, PROTO_DIR } from '../src/grpc/proto.js';

export function generateTypes(outDir: string): void {
  const bin = resolve(PROTO_DIR, '..', 'node_modules', '@grpc', 'proto-loader', 'build', 'bin', 'proto-loader-gen-types.js');
  const flags: string[] = [];
  if (LOADER_OPTIONS.keepCase) flags.push('--keepCase');
  flags.push(`--longs=${LOADER_OPTIONS.longs.name}`, `--enums=${LOADER_OPTIONS.enums.name}`);
  if (LOADER_OPTIONS.defaults) flags.push('--defaults');
  if (LOADER_OPTIONS.oneofs) flags.push('--oneofs');
  execFileSync(
    process.execPath,
    // Relative include path: the output names the proto files, and must not depend on the checkout's location.
    [bin, ...flags, '--grpcLib=@grpc/grpc-js', '--importFileExtension=.js', '--includeComments', '-I', 'proto', '-O', outDir, ...GENERATED_PROTO_FILES],
    { stdio: 'inherit', cwd: resolve(PROTO_DIR, '..') },
  );
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const out = resolve(PROTO_DIR, '..', 'src', 'generated');
  rmSync(out, { recursive: true, force: true });
  generateTypes(out);
  console.log(`generated ${out}`);
}
