/**
 * `shardwrite <command>`:
 *   shard                  run one shard process (configured by its environment)
 *   router                 run one router process (configured by its environment)
 *   relay                  run one relay (committed events → NATS JetStream; relay/config.ts)
 *   ring show|status|add|remove|abort|rebind the ring, rebalancing and store rebinding (cli/ring.ts)
 *   tail                   print committed events live (cli/tail.ts)
 *   top                    live per-shard view from the processes' /metrics (cli/top.ts)
 *   certs DIR NAME…        a development CA and certificates (scripts/dev-certificates.ts)
 *   pm-worker              run the process-manager worker (pm-worker/config.ts)
 *   pm list|retry          process-manager instances (cli/pm.ts)
 *   erase <subject>        erase a data subject's personal data (cli/erase.ts)
 *   migrate [--wait]       the owner's migration step, or wait for it (cli/migrate.ts)
 *
 * The ring commands read the ring database named by RING_DATABASE_URL or,
 * when that is unset, the one `npm start` recorded in `.data/cluster.json`.
 */
import { RING_USAGE, consoleOutput, ringCommand } from './ring.js';
import { TAIL_USAGE, tailCommand } from './tail.js';
import { PM_USAGE, pmCommand } from './pm.js';
import { TOP_USAGE, topCommand } from './top.js';
import { ERASE_USAGE, eraseCommand } from './erase.js';
import { MIGRATE_USAGE, migrateCommand } from './migrate.js';

export { CLUSTER_FILE } from './ring.js';

const USAGE = `usage: shardwrite <command>
  shard                 run a shard (env: SHARD_ID, GRPC_ADDRESS, DATABASE_URL, RING_DATABASE_URL, …)
  router                run a router (env: GRPC_ADDRESS, RING_DATABASE_URL, …)
  relay                 publish every committed event to NATS JetStream (env: NATS_URL, NATS_STREAM,
                        NATS_SUBJECT_PREFIX, RELAY_GROUP, RELAY_SOURCE, …; see relay/config.ts)
  pm-worker             run the process managers (env: PM_SOURCE, RING_DATABASE_URL or PM_DATABASE_URL,
                        PM_PAYMENT_TIMEOUT_MS, …; see pm-worker/config.ts)
${RING_USAGE}
${TAIL_USAGE}
${TOP_USAGE}
  certs DIR NAME[,DNS…]… make DIR/ca.crt and, per NAME, DIR/NAME.crt and DIR/NAME.key signed by it
                        (reused while valid; for development and docker compose, not production);
                        each certificate names NAME, localhost, 127.0.0.1 and the extra DNS names given
${PM_USAGE}
${ERASE_USAGE}
${MIGRATE_USAGE}`;

/** Runs the command in `argv` (the arguments after `shardwrite`); a bad command prints the usage and sets exit code 2. */
export async function main(argv: string[], env: NodeJS.ProcessEnv = process.env): Promise<void> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'shard':
      return (await import('../shard/main.js')).main(env);
    case 'router':
      return (await import('../router/main.js')).main(env);
    case 'relay':
      return (await import('../relay/main.js')).main(env);
    case 'pm-worker':
      return (await import('../pm-worker/main.js')).main(env);
    case 'pm':
      process.exitCode = await pmCommand(rest, env, consoleOutput());
      return;
    case 'migrate':
      process.exitCode = await untilInterrupted((signal) => migrateCommand(rest, env, consoleOutput(), signal));
      return;
    case 'erase':
      process.exitCode = await eraseCommand(rest, env, consoleOutput());
      return;
    case 'tail':
      process.exitCode = await untilInterrupted((signal) => tailCommand(rest, consoleOutput(), signal, env.SHARDWRITE_TOKEN || undefined, env.SHARDWRITE_CA_FILE || undefined));
      return;
    case 'top':
      process.exitCode = await untilInterrupted((signal) => topCommand(rest, env, consoleOutput(), signal));
      return;
    case 'ring': {
      // Ctrl-C stops a move between two steps, leaving it resumable; a second one exits at once.
      const interrupt = new AbortController();
      const onSignal = () => {
        if (interrupt.signal.aborted) process.exit(130);
        interrupt.abort(new Error('interrupted'));
      };
      process.on('SIGINT', onSignal);
      process.on('SIGTERM', onSignal);
      try {
        process.exitCode = await ringCommand(rest, env, consoleOutput(), interrupt.signal);
      } finally {
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
      }
      return;
    }
    case 'certs': {
      const [dir, ...names] = rest;
      if (!dir || names.length === 0) break;
      const { ensureDevCertificates } = await import('../scripts/dev-certificates.js');
      const specs = names.map((n) => {
        const [name, ...dns] = n.split(',');
        return { name: name!, dns: ['localhost', ...dns], ips: ['127.0.0.1'] };
      });
      const files = await ensureDevCertificates(dir, specs);
      for (const [name, f] of Object.entries(files)) console.log(`${name}: ${f.certFile} ${f.keyFile} (CA ${f.caFile})`);
      return;
    }
    case 'help':
    case '--help':
    case '-h':
      console.log(USAGE);
      return;
  }
  console.error(USAGE);
  process.exitCode = 2;
}

/** Runs a command that stops cleanly when its signal aborts: on the first SIGINT or SIGTERM. */
async function untilInterrupted(run: (signal: AbortSignal) => Promise<number>): Promise<number> {
  const interrupt = new AbortController();
  const onSignal = () => interrupt.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    return await run(interrupt.signal);
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}
