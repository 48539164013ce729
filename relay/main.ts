/** `shardwrite relay`: runs one relay process (committed events → NATS JetStream) from its environment. */
import { ConfigError } from '../src/config.js';
import { createLogger } from '../src/observability/logger.js';
import { runUntilSignal } from '../src/process.js';
import { loadRelayConfig, type RelayConfig } from './config.js';
import { connectNatsBus } from './nats-bus.js';
import { startRelay } from './relay.js';
import type { EventBus } from './bus.js';
import type { Logger } from 'pino';

/** The one place a bus is chosen: add a case for another bus. */
function connectBus(config: RelayConfig, log: Logger): Promise<EventBus> {
  switch (config.bus) {
    case 'nats':
      return connectNatsBus(config.nats, log);
  }
}

/** Loads the config (exit 2 on a bad one), connects the bus (waiting for it), relays until SIGTERM/SIGINT. */
export async function main(env: NodeJS.ProcessEnv = process.env): Promise<void> {
  let config: RelayConfig;
  try {
    config = loadRelayConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(err.message);
      process.exit(2);
    }
    throw err;
  }
  const log = createLogger('relay', config.logLevel);
  if (config.insecure)
    log.warn(
      { insecure: true },
      `INSECURE MODE (SHARDWRITE_INSECURE=true): the relay ${config.token ? 'sends RELAY_TOKEN but ' : 'sends no credentials and '}runs without the secure-by-default checks`,
    );
  const bus = await connectBus(config, log);
  const relay = startRelay({ ...config, subjectPrefix: config.nats.subjectPrefix }, bus, log);
  console.log(`relay following ${config.source} as group ${config.group}, publishing to ${bus.description}`);
  relay.stopped.catch((err: unknown) => {
    console.error(`relay stopped: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  });
  await runUntilSignal(() => relay.stop());
}

// Run when executed directly (`node dist/relay/main.js`, or with tsx in tests).
if (process.argv[1] && import.meta.url === (await import('node:url')).pathToFileURL(process.argv[1]).href) {
  main().catch((err: unknown) => {
    console.error(err);
    process.exit(1);
  });
}
