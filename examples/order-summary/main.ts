/**
 * `npm run example:order-summary`: keeps the `order_summary` table up to
 * date from the cluster's events, as the consumer group `order-summary`, and
 * prints each order's summary as it changes. Ctrl-C stops it; started again
 * it resumes after its last acknowledgement (and skips what it had applied).
 *
 * Environment (all optional):
 * - `SHARDWRITE_ADDRESS` — the router; default npm start's (from `.data/cluster.json`), else 127.0.0.1:50051.
 * - `ORDER_SUMMARY_DATABASE_URL` — where the table lives; default a database
 *   `order_summary` (created when missing) on the PostgreSQL server that
 *   holds npm start's ring database, else on `DATABASE_URL`'s server.
 * - `ORDER_SUMMARY_GROUP` — the consumer group; default `order-summary`.
 * - `SHARDWRITE_TOKEN` — bearer token, when the service checks credentials.
 */
import { existsSync, readFileSync } from 'node:fs';
import pg from 'pg';
import { consume } from '../../src/client/index.js';
import { ORDER_SUMMARY_TYPES, applyEvent, describeSummary, migrate, readSummary } from './projection.js';

/** @default order-summary */
export const DEFAULT_GROUP = 'order-summary';
/** @default order_summary */
export const DEFAULT_DATABASE = 'order_summary';
const CLUSTER_FILE = '.data/cluster.json';

function clusterFile(): { router?: { address?: string }; ringDatabaseUrl?: string } {
  return existsSync(CLUSTER_FILE) ? (JSON.parse(readFileSync(CLUSTER_FILE, 'utf8')) as object) : {};
}

async function databaseUrl(env: NodeJS.ProcessEnv): Promise<string> {
  if (env.ORDER_SUMMARY_DATABASE_URL) return env.ORDER_SUMMARY_DATABASE_URL;
  const server = clusterFile().ringDatabaseUrl ?? env.DATABASE_URL;
  if (!server) throw new Error(`set ORDER_SUMMARY_DATABASE_URL (or run npm start first, which writes ${CLUSTER_FILE})`);
  const admin = new pg.Client({ connectionString: server });
  await admin.connect();
  try {
    const exists = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [DEFAULT_DATABASE]);
    if (exists.rowCount === 0)
      await admin.query(`CREATE DATABASE ${DEFAULT_DATABASE}`).catch((err: { code?: string }) => {
        if (err.code !== '42P04') throw err; // created meanwhile by another run
      });
  } finally {
    await admin.end();
  }
  const url = new URL(server);
  url.pathname = `/${DEFAULT_DATABASE}`;
  return url.toString();
}

export async function main(env: NodeJS.ProcessEnv = process.env): Promise<void> {
  const address = env.SHARDWRITE_ADDRESS || clusterFile().router?.address || '127.0.0.1:50051';
  const url = await databaseUrl(env);
  const pool = new pg.Pool({ connectionString: url, max: 8 });
  await migrate(pool);
  let applied = 0;
  let skipped = 0;
  const consumer = consume(address, {
    group: env.ORDER_SUMMARY_GROUP || DEFAULT_GROUP,
    member: 'order-summary-example',
    ...(env.SHARDWRITE_TOKEN ? { metadata: { authorization: `Bearer ${env.SHARDWRITE_TOKEN}` } } : {}),
    aggregateTypes: ORDER_SUMMARY_TYPES,
    handler: async (event) => {
      if ((await applyEvent(pool, event)) === 'skipped') {
        skipped++;
        return;
      }
      applied++;
      const summary = await readSummary(pool, event.aggregateId);
      if (summary) console.log(`${event.type.padEnd(22)} → ${describeSummary(summary)}`);
    },
    onAssignment: (a) => console.log(`order-summary: ${a.partitions.length} of ${a.partitionCount} partitions assigned`),
    onError: (err, where) => console.error(`order-summary: ${where.kind} error: ${err instanceof Error ? err.message : String(err)}`),
  });
  console.log(`order-summary following ${address}, table order_summary in ${url.replace(/\/\/[^@]*@/, '//')}`);
  const stop = () => void consumer.stop();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  try {
    await consumer.stopped;
  } finally {
    console.log(`order-summary stopped: ${applied} events applied, ${skipped} already applied`);
    await pool.end();
  }
}

if (process.argv[1] && import.meta.url === (await import('node:url')).pathToFileURL(process.argv[1]).href) {
  main().catch((err: unknown) => {
    console.error(err instanceof Error ? err.message : err);
    process.exit(1);
  });
}
