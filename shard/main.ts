/** `shardwrite shard`: runs one shard process from its environment. */
import { loadShardConfig } from './config.js';
import { startShard } from './shard.js';
import { ConfigError } from '../src/config.js';
import { runUntilSignal } from '../src/process.js';
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
  let shard;
  try {
    shard = await startShard(config);
  } catch (err) {
    // Not a crash: this process was pointed at a store that is not its shard's. Say so plainly.
    if (err instanceof StoreIdentityError) {
      console.error(err.message);
      process.exit(3);
    }
    throw err;
  }
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
