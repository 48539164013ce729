/** Rebalancing: adding and removing shards under load (see rebalancer.ts). */
export { MoveSwitchedError, Rebalancer, type AbortResult, type MoveResult, type RebalancerOptions } from './rebalancer.js';
export { abandonCopies, type AbortFigures } from './abort.js';
export { OLD_STORE_TIMEOUT_MS, rebindStore, type RebindResult } from './rebind.js';
export {
  MOVE_PHASES,
  MoveInProgressError,
  RebalanceError,
  commandOf,
  copyBatches,
  copyItem,
  decide,
  describeMove,
  movingStreams,
  targetRing,
  type CopyItem,
  type MoveDecision,
  type MoveKind,
  type MovePhase,
  type MoveRequest,
  type PlannedMove,
  type StreamRow,
} from './plan.js';
export { NO_FIGURES, PgMoveStore, REBALANCE_LOCK_KEY, type MoveFigures, type MoveLock, type MoveRecord } from './move-store.js';
export { formatCount, formatDuration, progressBar, progressLine, type MoveProgress } from './progress.js';
export { checkServing } from './health.js';
export { ShardDb } from './shard-db.js';
