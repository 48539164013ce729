/** `shardwrite shard`: runs one shard process from its environment. */
import { loadShardConfig } from './config.js';
import { ConfigError } from '../src/config.js';
import { runUntilSignal } from '../src/process.js';
import { startTracing } from '../src/observability/tracing.js';
import { StoreIdentityError } from '../src/store/store-identity.js';

export async function main(env: NodeJS.ProcessEnv = process.env): Promise<void> {
  let config;
  try {
    config = loadShardConfig(env);
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
    tracing = await startTracing(env, { serviceName: 'shardwrite-shard', instanceId: config.shardId });
  } catch (err) {
    console.error((err as Error).message);
    process.exit(2);
  }
  const { startShard } = await import('./shard.js');
  let shard;
  try {
    shard = await startShard(config, { tracer: tracing.tracer });
  } catch (err) {
    // Not a crash: this process was pointed at a store that is not its shard's. Say so plainly.
    if (err instanceof StoreIdentityError) {
      console.error(err.message);
      process.exit(3);
    }
    throw err;
  }
  console.log(`shard ${config.shardId} listening on ${shard.address}`);
  await runUntilSignal(() => shard.close().finally(() => tracing.shutdown()));
}

// Run when executed directly (`node dist/shard/main.js`, or with tsx in tests).
if (process.argv[1] && import.meta.url === (await import('node:url')).pathToFileURL(process.argv[1]).href) {
  main().catch((err: unknown) => {
    console.error(err);
    process.exit(1);
  });
}
