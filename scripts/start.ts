/**
 * `npm start`: runs the service on this machine with no other software — an
 * embedded PostgreSQL (data kept in .data/) unless DATABASE_URL is set.
 */
import pg from 'pg';
import { startEmbeddedPostgres } from './embedded-postgres.js';
import { loadShardConfig } from '../shard/config.js';
import { startShard } from '../shard/shard.js';
import { runUntilSignal } from '../src/process.js';

const DATA_DIR = process.env.SHARDWRITE_DATA_DIR ?? '.data/postgres';
const PG_PORT = Number(process.env.EMBEDDED_PG_PORT ?? 54320);

async function ensureDatabase(serverUrl: string, name: string): Promise<string> {
  const client = new pg.Client({ connectionString: serverUrl });
  await client.connect();
  try {
    const exists = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
    if (exists.rowCount === 0) await client.query(`CREATE DATABASE "${name}"`);
  } finally {
    await client.end();
  }
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  return url.toString();
}

async function main(): Promise<void> {
  let serverUrl = process.env.DATABASE_URL;
  let embedded: Awaited<ReturnType<typeof startEmbeddedPostgres>> | undefined;
  if (!serverUrl) {
    console.log(`starting embedded PostgreSQL (data in ${DATA_DIR}) …`);
    embedded = await startEmbeddedPostgres({ dataDir: DATA_DIR, port: PG_PORT });
    serverUrl = embedded.url;
  }
  const databaseUrl = await ensureDatabase(serverUrl, 'shardwrite_shard_0');
  const config = loadShardConfig({ ...process.env, DATABASE_URL: databaseUrl });
  const shard = await startShard(config);
  console.log(`shardwrite listening on ${shard.address} (metrics: http://${shard.metricsAddress ?? 'off'}/metrics)`);
  await runUntilSignal(async () => {
    await shard.close();
    await embedded?.stop();
  });
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
