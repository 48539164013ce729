/**
 * Gives every test a PostgreSQL server: the one in DATABASE_URL when set (CI
 * points it at the machine's server), otherwise an embedded one started here,
 * so `npm test` works on a fresh machine with only Node.js. Builds the code
 * the service processes of end-to-end tests run (`process-build.ts`).
 */
import { startEmbeddedPostgres, type EmbeddedPostgresHandle } from '../../scripts/embedded-postgres.js';
import { buildProcesses, PROCESS_BUILD_ENV, removeProcessBuild } from './process-build.js';

let embedded: EmbeddedPostgresHandle | undefined;
let processBuild: string | undefined;

export async function setup(): Promise<void> {
  if (!process.env.DATABASE_URL) {
    embedded = await startEmbeddedPostgres({ dataDir: '.data/test-postgres', port: 54329 });
    process.env.DATABASE_URL = embedded.url;
    console.log(`[tests] DATABASE_URL not set: using embedded PostgreSQL at ${embedded.url}`);
  }
  if (!process.env.REDIS_URL) console.log('[tests] REDIS_URL not set: Redis tests are skipped');
  processBuild = await buildProcesses();
  process.env[PROCESS_BUILD_ENV] = processBuild;
}

export async function teardown(): Promise<void> {
  await embedded?.stop();
  if (processBuild) removeProcessBuild(processBuild);
}
