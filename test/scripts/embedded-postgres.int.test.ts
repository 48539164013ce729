import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { startEmbeddedPostgres } from '../../scripts/embedded-postgres.js';
import { freePort } from '../support/postgres-process.js';

const dataDir = resolve(`.data/test-taken-port-${randomBytes(4).toString('hex')}`);
afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

describe('starting embedded PostgreSQL', () => {
  it("fails on a taken port with the server's own reason, not an empty rejection", async () => {
    const port = await freePort();
    const holder = createServer();
    await new Promise<void>((r) => holder.listen(port, '127.0.0.1', r));
    try {
      // Not `rejects.toThrow`: it passes on a rejection with `undefined` (vitest#7260), which is what this guards against.
      const error: unknown = await startEmbeddedPostgres({ dataDir, port }).then(
        () => 'started',
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(Error);
      expect((error as Error).message).toContain(`did not start on 127.0.0.1:${port}`);
      expect((error as Error).message).toMatch(/could not bind IPv4 address "127.0.0.1": Address already in use/);
    } finally {
      holder.close();
    }
  });
});
