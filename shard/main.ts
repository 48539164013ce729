/** `shardwrite shard`: runs one shard process from its environment. */
import { loadShardConfig } from './config.js';
import { startShard } from './shard.js';
import { ConfigError } from '../src/config.js';
import { runUntilSignal } from '../src/process.js';

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
  const shard = await startShard(config);
  console.log(`shard ${config.shardId} listening on ${shard.address}`);
  await runUntilSignal(() => shard.close());
}

// Run when executed directly (`node dist/shard/main.js`, or with tsx in tests).
if (process.argv[1] && import.meta.url === (await import('node:url')).pathToFileURL(process.argv[1]).href) {
  main().catch((err: unknown) => {
    console.error(err);
    process.exit(1);
  });
}
