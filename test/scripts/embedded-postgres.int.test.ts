import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { startEmbeddedPostgres } from '../../scripts/embedded-postgres.js';
import { freePort } from '../support/postgres-process.js';
import { expectRejection } from '../support/expect-error.js';

const dataDir = resolve(`.data/test-taken-port-${randomBytes(4).toString('hex')}`);
afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

describe('starting embedded PostgreSQL', () => {
  it("fails on a taken port with the server's own reason, not an empty rejection", async () => {
    const port = await freePort();
    const holder = createServer();
    await new Promise<void>((r) => holder.listen(port, '127.0.0.1', r));
    try {
      const error = await expectRejection(startEmbeddedPostgres({ dataDir, port }), `did not start on 127.0.0.1:${port}`);
      expect(error.message).toMatch(/could not bind IPv4 address "127.0.0.1": Address already in use/);
    } finally {
      holder.close();
    }
  });
});
