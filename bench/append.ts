/**
 * `npm run bench -- append [--seconds N]`: appends/s and latency at 64
 * concurrent callers for (a) the shard's group-commit writer and (b) one
 * transaction per command (the same SQL, a batch of one, over 16 pooled
 * connections), on the same PostgreSQL, plus transactions per command from
 * pg_stat_database; then (c) what one batch costs PostgreSQL (CPU of every
 * postgres process, from /proc) when 1, 4, 16 and 64 callers keep the writer's
 * batches at that size.
 */
import pg from 'pg';
import { GroupCommitWriter, migrate } from '../src/store/index.js';
import type { AppendEntry, Appender } from '../src/store/types.js';
import { benchDatabase, closedLoop, committedTransactions, cpuPerCommand, durationFromArgs, printTable, type LoadResult } from './support.js';

const CALLERS = 64;
const POOL = 16;

function entry(worker: number, version: number): AppendEntry {
  const streamId = `order-lines-bench-${worker}`;
  return {
    streamId,
    aggregateType: 'order-lines',
    aggregateId: `bench-${worker}`,
    baseVersion: version,
    events: [
      {
        type: 'OrderLineAdded',
        schemaVersion: 2,
        data: { lineId: `l${version}`, sku: 'SKU-1', quantity: 1, unitPriceCents: 999, lineTotalCents: 999 },
        metadata: { command_id: `c-${worker}-${version}` },
      },
    ],
    commands: [{ commandId: `c-${worker}-${version}`, eventCount: 1 }],
  };
}

async function measure(server: string, label: string, durationMs: number, make: (url: string) => Appender[]): Promise<LoadResult> {
  const db = await benchDatabase(server);
  await migrate(db.url);
  const admin = new pg.Client({ connectionString: server });
  await admin.connect();
  const dbName = new URL(db.url).pathname.slice(1);
  const appenders = make(db.url);
  const versions = new Array<number>(CALLERS).fill(0);
  const before = await committedTransactions(admin, dbName);
  const result = await closedLoop(
    label,
    CALLERS,
    durationMs,
    async (w) => {
      const appender = appenders[w % appenders.length]!;
      await appender.append(entry(w, versions[w]!));
      versions[w]!++;
    },
    0,
  );
  const total = versions.reduce((a, b) => a + b, 0);
  await Promise.all(appenders.map((a) => a.close()));
  // Closed backends flush their statistics; give the collector a moment.
  await new Promise((r) => setTimeout(r, 1500));
  const txns = (await committedTransactions(admin, dbName)) - before;
  await admin.end();
  await db.drop();
  return { ...result, extra: { 'txn/command': (txns / total).toFixed(3), commands: total } };
}

/** (c): `callers` closed loops on one writer, so each batch holds about `callers` entries. */
async function perBatch(server: string, callers: number, durationMs: number): Promise<LoadResult> {
  const db = await benchDatabase(server);
  await migrate(db.url);
  const writer = new GroupCommitWriter({ connectionString: db.url, epoch: () => 0 });
  const versions = new Array<number>(callers).fill(0);
  const { result, perCommandUs } = await cpuPerCommand({}, () =>
    closedLoop(`(c) ${callers} callers`, callers, durationMs, async (w) => {
      await writer.append(entry(w, versions[w]!));
      versions[w]!++;
    }),
  );
  const { batches, entries } = writer.stats;
  await writer.close();
  await db.drop();
  const perBatchEntries = entries / batches;
  return {
    ...result,
    extra: {
      'entries/batch': perBatchEntries.toFixed(1),
      'PG µs/batch': Math.round(perCommandUs.postgres! * perBatchEntries),
      'PG µs/command': perCommandUs.postgres!,
    },
  };
}

export async function run(server: string, args: string[]): Promise<void> {
  const durationMs = durationFromArgs(args, 5000);
  console.log(`append: ${CALLERS} concurrent callers, ${durationMs / 1000}s per case, one event per command\n`);
  const grouped = await measure(server, '(a) group-commit writer', durationMs, (url) => [new GroupCommitWriter({ connectionString: url, epoch: () => 0 })]);
  const single = await measure(server, `(b) one txn per command (${POOL} conns)`, durationMs, (url) =>
    Array.from({ length: POOL }, () => new GroupCommitWriter({ connectionString: url, epoch: () => 0, maxBatchEntries: 1 })),
  );
  printTable([grouped, single]);
  console.log(`\nratio (a)/(b) throughput: ${(grouped.perSecond / single.perSecond).toFixed(2)}x   (target >= 2x)`);
  console.log(`(a) transactions per command: ${grouped.extra['txn/command']}   (target <= 0.1)`);

  console.log('\n(c) what a batch costs PostgreSQL, by batch size:');
  const sizes: LoadResult[] = [];
  for (const callers of [1, 4, 16, 64]) sizes.push(await perBatch(server, callers, Math.min(durationMs, 3000)));
  printTable(sizes);
}
