/**
 * The layering of ARCHITECTURE.md, checked by `npm run lint:deps` (part of `npm test`).
 * Each rule names the folders it keeps apart; a change that breaks one fails CI.
 */
const PROCESSES = '^(router|shard|relay|pm-worker|cli|scripts)/';
module.exports = {
  forbidden: [
    {
      name: 'domain-is-pure',
      comment: 'A decider is a pure function of commands, events and state: the domain imports nothing outside src/domain but the error types.',
      severity: 'error',
      // src/domain/index.ts is the registry (one line per module), not a decider: it composes the process managers in.
      from: { path: '^src/domain/', pathNot: '^src/domain/index\\.ts$' },
      to: { pathNot: ['^src/domain/', '^src/errors\\.ts$', '^node_modules/'], dependencyTypesNot: ['type-only'] },
    },
    {
      name: 'domain-needs-no-library',
      comment: 'The domain runs without I/O: no npm package (node: built-ins such as crypto are allowed).',
      severity: 'error',
      from: { path: '^src/domain/' },
      to: { dependencyTypes: ['npm', 'npm-dev', 'npm-optional', 'npm-peer'] },
    },
    {
      name: 'store-knows-no-pipeline',
      comment: 'The event store is an adapter under the pipeline: it never reaches up into it, nor into the domain.',
      severity: 'error',
      from: { path: '^src/store/' },
      to: { path: '^src/(pipeline|domain|process-managers|rebalance)/' },
    },
    {
      name: 'router-knows-no-domain',
      comment:
        'The router routes bytes by aggregate id: it never decodes commands with the domain, and never runs the pipeline. ' +
        'It reads only the registry (src/domain/index.ts), for the list of RPCs its permission table authorizes.',
      severity: 'error',
      from: { path: '^router/' },
      to: { path: '^src/(domain|pipeline)/', pathNot: '^src/domain/index\\.ts$' },
    },
    {
      name: 'core-knows-no-process',
      comment: 'src/ is the shared core: processes are built from it, never the other way round.',
      severity: 'error',
      from: { path: '^src/' },
      to: { path: PROCESSES },
    },
    {
      name: 'processes-stay-apart',
      comment: 'Each process has one composition root and shares code only through src/ (the CLI and `npm start` may start the others).',
      severity: 'error',
      from: { path: '^(router|shard|relay|pm-worker)/' },
      to: { path: PROCESSES, pathNot: ['^$1/'] },
    },
    {
      name: 'no-tests-in-production',
      comment: 'Shipped code never imports the tests, their support or the benchmarks.',
      severity: 'error',
      from: { path: '^(src|router|shard|relay|pm-worker|cli)/' },
      to: { path: '^(test|bench)/' },
    },
    {
      name: 'no-cycles',
      comment: 'A cycle makes both modules one: load order and reasoning both break.',
      severity: 'error',
      from: { path: '^(src|router|shard|relay|pm-worker|cli)/' },
      // A cycle through a type-only import does not exist at run time.
      to: { circular: true, viaOnly: { dependencyTypesNot: ['type-only'] } },
    },
    {
      name: 'no-unresolvable',
      severity: 'error',
      from: {},
      to: { couldNotResolve: true },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^src/generated/' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { exportsFields: ['exports'], conditionNames: ['import', 'require', 'node', 'default', 'types'], extensions: ['.ts', '.js', '.json'] },
  },
};
