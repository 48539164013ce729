/** `shardwrite router`: runs one router process from its environment. */
import { loadRouterConfig } from './config.js';
import { startRouter } from './router.js';
import { ConfigError } from '../src/config.js';
import { runUntilSignal } from '../src/process.js';

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
  const router = await startRouter(config);
  const metrics = router.metricsAddress ? `http://${router.metricsAddress}/metrics` : 'off';
  console.log(`router listening on ${router.address} (ring epoch ${router.watcher.epoch}; metrics ${metrics})`);
  await runUntilSignal(() => router.close());
}

// Run when executed directly (`node dist/router/main.js`, or with tsx in tests).
if (process.argv[1] && import.meta.url === (await import('node:url')).pathToFileURL(process.argv[1]).href) {
  main().catch((err: unknown) => {
    console.error(err);
    process.exit(1);
  });
}
