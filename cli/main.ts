/**
 * `shardwrite <command>`:
 *   shard        run one shard process (configured by its environment)
 *   router       run one router process (configured by its environment)
 *   ring show    print the current ring (--json for machine-readable output)
 */
const USAGE = `usage: shardwrite <shard|router|ring show [--json]>`;

export async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'shard':
      return (await import('../shard/main.js')).main();
    default:
      console.error(USAGE);
      process.exitCode = rest.length >= 0 ? 2 : 2;
  }
}
