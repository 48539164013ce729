/**
 * `shardwrite pm-worker`: runs every registered process manager
 * (src/process-managers/index.ts) against a router, from its environment
 * (pm-worker/config.ts). Prints `pm-worker listening on <router>` when its
 * tables are ready and its consumers joined; metrics on METRICS_ADDRESS.
 * Stops on SIGTERM/SIGINT after the steps in progress finish.
 */
import { ConfigError } from '../src/config.js';
import { createClient } from '../src/client/index.js';
import { createLogger } from '../src/observability/logger.js';
import { createRegistry, serveMetricsAt } from '../src/observability/metrics.js';
import { runUntilSignal } from '../src/process.js';
import { processManagers } from '../src/process-managers/index.js';
import { loadPmWorkerConfig, type PmWorkerConfig } from './config.js';
import { PgPmStore } from './store.js';
import { pmMetrics, startPmWorker } from './worker.js';

/** Tries to prepare the tables at start-up before giving up (about a minute). @default 15 */
export const MIGRATE_ATTEMPTS = 15;

export async function main(env: NodeJS.ProcessEnv = process.env): Promise<void> {
  let config: PmWorkerConfig;
  try {
    config = loadPmWorkerConfig(env, processManagers);
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(err.message);
      process.exit(2);
    }
    throw err;
  }
  const log = createLogger('pm-worker', config.logLevel);
  if (config.insecure)
    log.warn(
      { insecure: true },
      `INSECURE MODE (SHARDWRITE_INSECURE=true): the pm worker ${config.token ? 'sends PM_TOKEN but ' : 'sends no credentials and '}runs without the secure-by-default checks`,
    );
  const store = new PgPmStore({ connectionString: config.databaseUrl });
  // The database may still be starting (or refusing connections for a while): wait for it rather than exit.
  for (let attempt = 1; ; attempt++) {
    try {
      await store.migrate();
      break;
    } catch (err) {
      if (attempt >= MIGRATE_ATTEMPTS) throw err;
      log.warn({ err: err instanceof Error ? err.message : String(err), attempt }, 'the pm tables cannot be prepared yet; retrying');
      await new Promise((r) => setTimeout(r, Math.min(5000, 200 * 2 ** attempt)));
    }
  }
  const registry = createRegistry('shardwrite_pm_worker_');
  const metrics = pmMetrics(registry, store);
  const metricsServer = config.metricsAddress ? await serveMetricsAt(registry, config.metricsAddress) : undefined;
  const client = createClient(config.source, {
    ...(config.token ? { metadata: { authorization: `Bearer ${config.token}` } } : {}),
    ...(config.tls ? { tls: config.tls } : {}),
  });
  const worker = startPmWorker(processManagers, config, { client, store, log, metrics });
  console.log(
    `pm-worker listening on ${config.source} (process managers: ${processManagers.map((d) => d.name).join(', ')}` + `${metricsServer ? `; metrics http://${metricsServer.address}/metrics` : ''})`,
  );
  worker.stopped.catch((err: unknown) => {
    console.error(`pm-worker stopped: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  });
  await runUntilSignal(async () => {
    await worker.stop();
    client.close();
    metricsServer?.server.close();
    await store.close();
  });
}

// Run when executed directly (`node dist/pm-worker/main.js`, or with tsx in tests).
if (process.argv[1] && import.meta.url === (await import('node:url')).pathToFileURL(process.argv[1]).href) {
  main().catch((err: unknown) => {
    console.error(err);
    process.exit(1);
  });
}
