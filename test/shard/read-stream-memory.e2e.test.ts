/**
 * ReadStream pages through the store: a 200,000-event stream is read with
 * flat memory in the shard process, not loaded whole.
 */
import { readFileSync } from 'node:fs';
import pg from 'pg';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { migrate } from '../../src/store/index.js';
import { connect } from '../support/grpc.js';
import { createTestDatabase, type TestDatabase } from '../support/pg.js';
import { startShardProcess, type ServiceProcess } from '../support/processes.js';

const EVENTS = 200_000;
let db: TestDatabase;
let shard: ServiceProcess;

const rssMiB = (pid: number) => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) / 1024;

beforeAll(async () => {
  db = await createTestDatabase('sw_long');
  await migrate(db.url);
  const pool = new pg.Pool({ connectionString: db.url, max: 1 });
  try {
    await pool.query(`INSERT INTO streams (stream_id, aggregate_type, aggregate_id, version) VALUES ('order-lines-long', 'order-lines', 'long', $1)`, [EVENTS]);
    await pool.query(
      `INSERT INTO events (stream_id, version, type, schema_version, data, metadata)
       SELECT 'order-lines-long', g, 'OrderLineAdded', 2,
              jsonb_build_object('lineId', 'l' || g, 'sku', 'SKU-' || g, 'quantity', 1, 'unitPriceCents', 100, 'note', repeat('x', 400)), '{}'
       FROM generate_series(1, $1::int) g`,
      [EVENTS],
    );
  } finally {
    await pool.end();
  }
  shard = await startShardProcess({ DATABASE_URL: db.url, SHARD_ID: 'shard-0' });
}, 120_000);

afterAll(async () => {
  await shard?.stop();
  await db?.drop();
});

it('reads a 200,000-event stream in version order while the shard holds only a page of it', async () => {
  const client = connect(shard.address);
  try {
    await client.readStream('order-lines', 'long', 199_990); // warm up
    const before = rssMiB(shard.pid);
    let peak = before;
    let count = 0;
    let last = 0;
    let ordered = true;
    await new Promise<void>((resolve, reject) => {
      const s = client.events.readStream({ aggregateType: 'order-lines', aggregateId: 'long', fromVersion: '0' });
      s.on('data', (e: { version: string }) => {
        const v = Number(e.version);
        if (v !== last + 1) ordered = false;
        last = v;
        if (++count % 10_000 === 0) peak = Math.max(peak, rssMiB(shard.pid));
      });
      s.on('error', reject);
      s.on('end', () => resolve());
    });
    expect(count).toBe(EVENTS);
    expect(ordered).toBe(true);
    // The whole stream as objects is several hundred MiB (each event carries ~450 bytes of JSON).
    console.log(`[read-stream] shard RSS ${before.toFixed(0)} MiB before, peak ${peak.toFixed(0)} MiB while reading ${EVENTS} events`);
    expect(peak - before).toBeLessThan(120);
  } finally {
    client.close();
  }
}, 180_000);
