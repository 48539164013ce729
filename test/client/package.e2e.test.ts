/**
 * The typed client as another service gets it: `npm pack` of this repository
 * (its `prepack` builds it), installed from the tarball into a scratch project
 * that knows nothing else, type-checked there against the package's own
 * declarations, then run against a real cluster.
 */
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCluster, type Cluster } from '../support/cluster.js';
import { run } from '../support/run.js';

const ROOT = resolve(import.meta.dirname, '../..');
const DEV = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { devDependencies: Record<string, string> }).devDependencies;

/** What a user writes: every call typed by the package (a wrong field is a compile error, proven below). */
const USAGE = `
import { createClient, subscribe, CommandFailedError, type CommandResult, type ReceivedEvent } from 'shardwrite/client';
import type { InventoryServiceDefinition } from 'shardwrite/generated/shardwrite/v1/InventoryService';

const [address, orderId] = process.argv.slice(2) as [string, string];
const client = createClient(address);
const placed: CommandResult = await client.placeOrder({
  orderId,
  commandId: 'place-' + orderId,
  customerId: 'c-1',
  customerEmail: 'ada@example.com',
  shippingAddress: { name: 'Ada', line1: '1 Road', city: 'London', postalCode: 'N1', country: 'GB' },
});
// Any command service, typed by its generated definition.
const inventory = client.service<InventoryServiceDefinition>('shardwrite.v1.InventoryService');
const received: CommandResult = await inventory.ReceiveStock({ sku: orderId, commandId: 'recv-' + orderId, quantity: 3 });
// Never called: a wrong field must be a compile error (the package's declarations are real, not \`any\`).
export const misuse = () =>
  // @ts-expect-error -- no such field
  client.shipOrder({ orderIdd: orderId });
export const misuseInventory = () =>
  // @ts-expect-error -- no such field
  inventory.ReserveStock({ skuu: orderId });
export const noSuchCommand = () =>
  // @ts-expect-error -- no such RPC
  inventory.ShipStock({ sku: orderId });
let refused = '';
try {
  await client.shipOrder({ orderId, carrier: 'ups', trackingNumber: '1' });
} catch (err) {
  if (err instanceof CommandFailedError) refused = err.reason ?? String(err.code);
}
const sub = subscribe(address, { from: '' });
let seen: ReceivedEvent | undefined;
for await (const e of sub) {
  if (e.aggregateId === orderId) {
    seen = e;
    break;
  }
}
sub.close();
client.close();
// Straight to the owner shard once the ring is known (the package's proto/ drives the routing keys).
const ringAware = createClient(address, { ringAware: true });
for (let i = 0; i < 200 && (ringAware.routing?.epoch ?? 0) === 0; i++) await new Promise((r) => setTimeout(r, 50));
const line = await ringAware.addOrderLine({ orderId, lineId: 'l1', sku: 'S', quantity: 1, unitPriceCents: '100' });
// A packed command (no member of its own) goes straight to its owner too.
const reserved = await ringAware.service<InventoryServiceDefinition>('shardwrite.v1.InventoryService').ReserveStock({ sku: orderId, orderId, quantity: 2 });
const ringEpoch = ringAware.routing?.epoch;
ringAware.close();
console.log(JSON.stringify({ version: placed.version, refused, type: seen?.type, stream: seen?.streamId, ringEpoch, line: line.version, stock: received.streamId, reserved: reserved.version }));
`;

describe('the client package', () => {
  let cluster: Cluster;
  let dir: string;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'sw-client-pkg-'));
    cluster = await startCluster({ shards: 1 });
  }, 120_000);

  afterAll(async () => {
    await cluster?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('installs from its tarball, type-checks against its declarations, and runs against a cluster', async () => {
    await run('npm', ['pack', '--pack-destination', dir], { cwd: ROOT });
    const tarball = readdirSync(dir).find((f) => f.endsWith('.tgz'))!;
    const project = join(dir, 'project');
    mkdirSync(project);
    writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'scratch', private: true, type: 'module' }));
    writeFileSync(
      join(project, 'tsconfig.json'),
      JSON.stringify({ compilerOptions: { target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', strict: true, types: ['node'], outDir: 'out', skipLibCheck: false } }),
    );
    writeFileSync(join(project, 'usage.ts'), USAGE);
    // From npm's cache (this repository's own install filled it); the embedded PostgreSQL binaries are optional for a client.
    await run('npm', ['install', join(dir, tarball), `typescript@${DEV.typescript}`, `@types/node@${DEV['@types/node']}`, '--prefer-offline', '--no-audit', '--no-fund', '--omit=optional'], {
      cwd: project,
    });
    await run(join(project, 'node_modules/.bin/tsc'), ['-p', '.'], { cwd: project });
    const out = await run(process.execPath, [join(project, 'out/usage.js'), cluster.routerAddress, 'pkg-order-1'], { cwd: project });
    expect(JSON.parse(out.trim().split('\n').pop()!)).toEqual({
      version: '1',
      refused: 'BUSINESS_RULE',
      type: 'OrderPlaced',
      stream: 'order-header-pkg-order-1',
      ringEpoch: 1,
      line: '1',
      stock: 'inventory-pkg-order-1',
      reserved: '2',
    });
  }, 240_000);
});
