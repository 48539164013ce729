/**
 * `npm start -- --secure` as a newcomer runs it, on a machine with nothing
 * set up: the built service, embedded PostgreSQL servers, a local CA, and
 * tokens under `.data/` of the directory it runs in (a fresh one here). The
 * banner says how a client connects; doing exactly that works for the
 * caller's own tenant and is refused otherwise; Ctrl-C stops everything.
 *
 * It uses `npm start`'s fixed ports (50051, 50061…, 9465…, 54330…): nothing
 * else may hold them while it runs, so `npm test` runs it alone, after the others.
 */
import * as grpc from '@grpc/grpc-js';
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createClient, type ShardwriteClient } from '../../src/client/index.js';
import { placeOrder } from '../support/grpc.js';
import { run } from '../support/run.js';

const ROOT = resolve(import.meta.dirname, '../..');
let dir: string;
let starter: ChildProcess;
let output = '';
const clients: ShardwriteClient[] = [];

function waitFor(pattern: RegExp, ms: number): Promise<RegExpExecArray> {
  return new Promise((resolvePromise, reject) => {
    const check = () => {
      const m = pattern.exec(output);
      if (m) {
        clearInterval(timer);
        resolvePromise(m);
      } else if (starter.exitCode !== null) {
        clearInterval(timer);
        reject(new Error(`npm start exited (${starter.exitCode}) before printing ${pattern}:\n${output}`));
      }
    };
    const timer = setInterval(check, 100);
    setTimeout(() => {
      clearInterval(timer);
      reject(new Error(`npm start did not print ${pattern} in ${ms} ms:\n${output}`));
    }, ms);
    check();
  });
}

beforeAll(async () => {
  // What `npm start` runs: the build, then the start script from it.
  await run('npm', ['run', 'build', '--silent'], { cwd: ROOT });
  dir = mkdtempSync(join(tmpdir(), 'sw-start-'));
  // Run as root, embedded PostgreSQL initialises its data as another user, which must reach the directory.
  chmodSync(dir, 0o755);
  const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: process.env.HOME };
  starter = spawn(process.execPath, [join(ROOT, 'dist/scripts/start.js'), '--secure', '--no-pm'], { cwd: dir, env, stdio: ['ignore', 'pipe', 'pipe'] });
  starter.stdout!.on('data', (b: Buffer) => (output += b.toString()));
  starter.stderr!.on('data', (b: Buffer) => (output += b.toString()));
  await waitFor(/shardwrite is running — endpoint (\S+)/, 150_000);
}, 240_000);

afterAll(async () => {
  for (const c of clients) c.close();
  if (starter && starter.exitCode === null) {
    starter.kill('SIGKILL');
    // The supervisor runs in its own process group: it stops its children when its parent is gone.
    await new Promise((r) => setTimeout(r, 2000));
  }
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('npm start -- --secure', () => {
  it('prints how a client connects, and a client doing exactly that is served for its own tenant only', async () => {
    const endpoint = (await waitFor(/endpoint (\S+)/, 1000))[1]!;
    const caFile = (await waitFor(/trust the CA\s+(\S+)/, 1000))[1]!;
    expect(endpoint).toBe('127.0.0.1:50051');
    const token = (name: string) => readFileSync(join(dir, '.data/tls', `${name}.token`), 'utf8').trim();
    const client = (name: string | undefined, tls = true) => {
      const c = createClient(endpoint, {
        ...(tls ? { tls: { caFile: resolve(dir, caFile) } } : {}),
        ...(name ? { metadata: { authorization: `Bearer ${token(name)}` } } : {}),
      });
      clients.push(c);
      return c;
    };
    const orderId = `start-${Date.now()}`;
    const a = client('tenant-a');
    expect(await a.placeOrder(placeOrder(orderId, { commandId: `${orderId}-place` }) as never)).toMatchObject({ version: '1' });

    const line = { orderId, lineId: 'l1', sku: 'SKU', quantity: 1, unitPriceCents: '100' };
    await expect(client('tenant-b').addOrderLine(line)).rejects.toMatchObject({ code: grpc.status.NOT_FOUND });
    await expect(client(undefined).addOrderLine(line)).rejects.toMatchObject({ code: grpc.status.UNAUTHENTICATED });
    await expect(client('tenant-a', false).addOrderLine(line)).rejects.toMatchObject({ code: grpc.status.UNAVAILABLE });
    expect(await a.addOrderLine(line)).toMatchObject({ streamId: `order-lines-${orderId}`, version: '1' });
  });

  it('stops everything on Ctrl-C, in order, and exits cleanly', async () => {
    const exited = new Promise<number | null>((r) => starter.once('exit', (code) => r(code)));
    starter.kill('SIGINT');
    expect(await exited).toBe(0);
    expect(output).toMatch(/stopping: router, then shards, then PostgreSQL/);
    expect(output).toMatch(/\nstopped\n/);
    // Nothing is left listening on the router's port.
    const probe = createClient('127.0.0.1:50051');
    clients.push(probe);
    await expect(probe.placeOrder(placeOrder('after-stop') as never, { timeoutMs: 2000 })).rejects.toMatchObject({ code: grpc.status.UNAVAILABLE });
  }, 60_000);
});
