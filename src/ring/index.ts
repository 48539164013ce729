/** The ring: its document, the hash view over it, its store, the watcher and shard-side ownership. */
export { RingDocumentError, SHARD_ID_PATTERN, parseRingBootstrap, ringToJson, validateRingDocument, validateShards, type RingDocument, type RingShard } from './document.js';
export { RING_HASHING, RingView, SHARD_WEIGHT } from './view.js';
export {
  MOVE_NOTIFY_PAYLOAD,
  PM_TABLES_SQL,
  PgRingStore,
  RING_CHANNEL,
  RING_LOCK_KEY,
  RingConflictError,
  ringSchemaIsCurrent,
  type PgRingStoreOptions,
  type RegisteredStore,
  type RingStore,
  type RingSubscription,
} from './store.js';
export { RingWatcher, type RingListener, type RingLogger, type RingWatcherOptions } from './watcher.js';
export { RingOwnership } from './ring-ownership.js';
export { RING_SETTINGS, readRingSettings, type RingSettings } from './settings.js';
