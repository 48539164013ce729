/** Runs `shardwrite <args>` from source (tsx), as a process of its own a test can kill. */
import { main } from '../../../cli/main.js';

await main(process.argv.slice(2));
