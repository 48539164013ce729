/** The event store: contracts and their PostgreSQL implementation. */
export type {
  AppendedCommand,
  AppendEntry,
  Appender,
  AppendResult,
  CommandRecord,
  EventMetadata,
  EventReader,
  NewEvent,
  PendingMove,
  Snapshot,
  SnapshotCache,
  SnapshotLoad,
  SnapshotLoadRequest,
  SnapshotSaveResult,
  SnapshotStore,
  StoredEvent,
  StoredSnapshot,
} from './types.js';
export { GroupCommitWriter, type GroupCommitStats, type GroupCommitWriterOptions, type StoreLogger } from './group-commit-writer.js';
export { PgEventReader, type PgEventReaderOptions } from './pg-event-reader.js';
export { PgSnapshotStore, type PgSnapshotStoreOptions } from './pg-snapshot-store.js';
export { bumpFence, migrate, storeSchemaIsCurrent, MIGRATION_LOCK_KEY, MIGRATIONS, REBALANCE_SETTING, type Migration, type Queryable } from './migrations.js';
export { classifyPgError, translatePgError, type PgErrorKind } from './pg-errors.js';
export { StoreIdentityError, claimStore, identityHealthService, readStoreIdentity, type StoreIdentity } from './store-identity.js';
export { SHARD_ROLE, REBALANCER_ROLE, ROUTER_ROLE, PM_ROLE, mayRewriteEvents } from './roles.js';
export { redactDatabaseUrl, withCredentials, withoutPassword, type StoreCredentials } from './database-url.js';
