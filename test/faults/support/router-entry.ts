/** Runs a router process from source (tsx), configured by its environment, for the fault tests. */
import { main } from '../../../router/main.js';

await main();
