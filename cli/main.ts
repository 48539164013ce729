/**
 * `shardwrite <command>`:
 *   shard                  run one shard process (configured by its environment)
 *   router                 run one router process (configured by its environment)
 *   ring show [--json]     print the current ring
 *
 * `ring show` reads the ring database named by RING_DATABASE_URL or, when
 * that is unset, the one `npm start` recorded in `.data/cluster.json`.
 */
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { PgRingStore, ringToJson } from '../src/ring/index.js';

const USAGE = `usage: shardwrite <command>
  shard                 run a shard (env: SHARD_ID, GRPC_ADDRESS, DATABASE_URL, RING_DATABASE_URL, …)
  router                run a router (env: GRPC_ADDRESS, RING_DATABASE_URL, …)
  ring show [--json]    print the current ring (RING_DATABASE_URL, or .data/cluster.json from npm start)`;

/** Where `npm start` records the cluster it runs (relative to the working directory). */
export const CLUSTER_FILE = '.data/cluster.json';

/** Runs the command in `argv` (the arguments after `shardwrite`); a bad command prints the usage and sets exit code 2. */
export async function main(argv: string[], env: NodeJS.ProcessEnv = process.env): Promise<void> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'shard':
      return (await import('../shard/main.js')).main(env);
    case 'router':
      return (await import('../router/main.js')).main(env);
    case 'ring':
      if (rest[0] === 'show' && rest.slice(1).every((a) => a === '--json')) return ringShow(rest.includes('--json'), env);
      break;
    case 'help':
    case '--help':
    case '-h':
      console.log(USAGE);
      return;
  }
  console.error(USAGE);
  process.exitCode = 2;
}

async function ringShow(json: boolean, env: NodeJS.ProcessEnv): Promise<void> {
  const url = env.RING_DATABASE_URL || ringUrlFromClusterFile();
  if (!url) {
    console.error(`no ring database: set RING_DATABASE_URL, or run \`npm start\` (which writes ${CLUSTER_FILE})`);
    process.exitCode = 2;
    return;
  }
  const store = new PgRingStore({ connectionString: url });
  try {
    const ring = await store.current();
    if (!ring) {
      console.error('the ring database has no ring yet');
      process.exitCode = 1;
      return;
    }
    if (json) {
      console.log(ringToJson(ring));
      return;
    }
    console.log(`ring epoch ${ring.epoch}, ${ring.shards.length} shard${ring.shards.length === 1 ? '' : 's'}`);
    const width = Math.max(...ring.shards.map((s) => s.id.length));
    for (const s of ring.shards) console.log(`  ${s.id.padEnd(width)}  ${s.address}`);
  } finally {
    await store.close();
  }
}

function ringUrlFromClusterFile(): string | undefined {
  const file = resolve(CLUSTER_FILE);
  if (!existsSync(file)) return undefined;
  const parsed = JSON.parse(readFileSync(file, 'utf8')) as { ringDatabaseUrl?: unknown };
  return typeof parsed.ringDatabaseUrl === 'string' ? parsed.ringDatabaseUrl : undefined;
}
