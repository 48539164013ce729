/** `shardwrite router`: runs one router process from its environment. */
import { loadRouterConfig } from './config.js';
import { ConfigError } from '../src/config.js';
import { runUntilSignal } from '../src/process.js';
import { startTracing } from '../src/observability/tracing.js';

/** Loads the config (exit 2 on a bad one), starts the router, and drains it on SIGTERM/SIGINT. */
export async function main(env: NodeJS.ProcessEnv = process.env): Promise<void> {
  let config;
  try {
    config = loadRouterConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(err.message);
      process.exit(2);
    }
    throw err;
  }
  // Before the process loads its clients and servers, which the tracing SDK instruments.
  let tracing;
  try {
    tracing = await startTracing(env, { serviceName: 'shardwrite-router' });
  } catch (err) {
    console.error((err as Error).message);
    process.exit(2);
  }
  const { startRouter } = await import('./router.js');
  const router = await startRouter(config, { tracer: tracing.tracer });
  const metrics = router.metricsAddress ? `http://${router.metricsAddress}/metrics` : 'off';
  console.log(`router listening on ${router.address} (ring epoch ${router.watcher.epoch}; metrics ${metrics})`);
  await runUntilSignal(() => router.close().finally(() => tracing.shutdown()));
}

// Run when executed directly (`node dist/router/main.js`, or with tsx in tests).
if (process.argv[1] && import.meta.url === (await import('node:url')).pathToFileURL(process.argv[1]).href) {
  main().catch((err: unknown) => {
    console.error(err);
    process.exit(1);
  });
}
