/**
 * A router or shard whose start-up fails halfway — here its metrics port is
 * taken, the last thing it opens — releases everything it had opened: its
 * gRPC and health ports can be bound again, and no connection to its
 * database stays.
 */
import * as net from 'node:net';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadRouterConfig } from '../router/config.js';
import { startRouter } from '../router/router.js';
import { loadShardConfig } from '../shard/config.js';
import { startShard } from '../shard/shard.js';
import { createLogger } from '../src/observability/logger.js';
import { createTestDatabase, serverUrl, type TestDatabase } from './support/pg.js';
import { expectRejection } from './support/expect-error.js';

function listen(port = 0): Promise<net.Server> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve(server));
  });
}
const portOf = (server: net.Server) => (server.address() as net.AddressInfo).port;
const closed = (server: net.Server) => new Promise((resolve) => server.close(resolve));
async function freePort(): Promise<number> {
  const server = await listen();
  const port = portOf(server);
  await closed(server);
  return port;
}

let db: TestDatabase;
let taken: net.Server;

beforeAll(async () => {
  db = await createTestDatabase();
  taken = await listen();
});

afterAll(async () => {
  await closed(taken);
  await db?.drop();
});

/** Connections to the test database other than the one asking, once they are gone or after 5 s. */
async function connectionsLeft(): Promise<number> {
  const admin = new pg.Client({ connectionString: serverUrl() });
  await admin.connect();
  try {
    const name = new URL(db.url).pathname.slice(1);
    for (let waited = 0; ; waited += 50) {
      const { rows } = await admin.query<{ n: number }>('SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()', [name]);
      if (rows[0]!.n === 0 || waited >= 5000) return rows[0]!.n;
      await new Promise((r) => setTimeout(r, 50));
    }
  } finally {
    await admin.end();
  }
}

describe('a process that fails to start halfway', () => {
  it('releases its ports and its database connections before it reports the failure: a shard', async () => {
    const [grpcPort, healthPort] = [await freePort(), await freePort()];
    const config = loadShardConfig({
      SHARDWRITE_INSECURE: 'true',
      DATABASE_URL: db.url,
      GRPC_ADDRESS: `127.0.0.1:${grpcPort}`,
      HEALTH_ADDRESS: `127.0.0.1:${healthPort}`,
      METRICS_ADDRESS: `127.0.0.1:${portOf(taken)}`,
      ...(process.env.REDIS_URL ? { REDIS_URL: process.env.REDIS_URL, REDIS_SNAPSHOT_KEY: 'x'.repeat(32) } : {}),
    });
    await expectRejection(startShard(config, { logger: createLogger('test-shard', 'silent') }), /EADDRINUSE/);
    for (const port of [grpcPort, healthPort]) await closed(await listen(port));
    expect(await connectionsLeft()).toBe(0);
  });

  it('releases its ports and its database connections before it reports the failure: a router', async () => {
    const [grpcPort, healthPort] = [await freePort(), await freePort()];
    const config = loadRouterConfig({
      SHARDWRITE_INSECURE: 'true',
      RING_DATABASE_URL: db.url,
      RING_BOOTSTRAP: 'shard-0=127.0.0.1:1',
      GRPC_ADDRESS: `127.0.0.1:${grpcPort}`,
      HEALTH_ADDRESS: `127.0.0.1:${healthPort}`,
      METRICS_ADDRESS: `127.0.0.1:${portOf(taken)}`,
    });
    await expectRejection(startRouter(config, { logger: createLogger('test-router', 'silent') }), /EADDRINUSE/);
    for (const port of [grpcPort, healthPort]) await closed(await listen(port));
    expect(await connectionsLeft()).toBe(0);
  });
});
