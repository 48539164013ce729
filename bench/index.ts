/**
 * `npm run bench -- <name> [options]`. Each benchmark prints its figures and
 * ratios in one run; none passes or fails on a number. All but `load` (which
 * drives a running router) get a PostgreSQL server: DATABASE_URL's, or an
 * embedded one.
 */
import { serverUrl, stopServer } from './support.js';

const BENCHES: Record<string, () => Promise<{ run(server: string, args: string[]): Promise<void> }>> = {
  append: () => import('./append.js'),
  rehydrate: () => import('./rehydrate.js'),
  hot: () => import('./hot.js'),
  e2e: () => import('./e2e.js'),
  rebalance: () => import('./rebalance.js'),
  library: () => import('./library.js'),
  subscribe: () => import('./subscribe.js'),
  soak: () => import('./soak.js'),
  secure: () => import('./secure.js'),
  fulfilment: () => import('./fulfilment.js'),
  tracing: () => import('./tracing.js'),
  privacy: () => import('./privacy.js'),
};

const [name, ...args] = process.argv.slice(2);
if (name === 'load') {
  await (await import('./load.js')).run(args);
  process.exit(0);
}
const load = name ? BENCHES[name] : undefined;
if (!load) {
  console.error(
    `usage: npm run bench -- <${[...Object.keys(BENCHES), 'load'].join('|')}> ` +
      '[--seconds N | --minutes N | --iterations N | --rounds R | --pool P | --address A --in-flight N --streams S | --orders N]',
  );
  process.exit(2);
}
const server = await serverUrl();
try {
  await (await load()).run(server, args);
} finally {
  await stopServer();
}
