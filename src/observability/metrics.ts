/**
 * Prometheus metrics of a shard, on a registry the composition root owns
 * (no global registry: two shards in one test process must not collide).
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { createServer, type Server } from 'node:http';

/** Stages of the command pipeline, in order (ARCHITECTURE.md). */
export type Stage = 'validate' | 'authorize' | 'ownership' | 'queue' | 'load' | 'decide' | 'append' | 'total';

export class PipelineMetrics {
  readonly stageSeconds: Histogram<'stage' | 'outcome'>;
  readonly commands: Counter<'method' | 'code'>;
  readonly conflicts: Counter;
  readonly retries: Counter<'outcome'>;
  readonly rejections: Counter<'reason'>;
  readonly loads: Counter<'tier'>;
  readonly replayedEvents: Histogram;
  readonly eventsSinceSnapshot: Histogram<'aggregate_type'>;
  readonly loadSeconds: Histogram<'tier'>;
  readonly snapshotsSkipped: Counter<'tier' | 'reason'>;
  readonly snapshotWrites: Counter<'outcome'>;
  readonly snapshotCacheOps: Counter<'op' | 'outcome'>;
  readonly snapshotCacheBreaker: Gauge;
  readonly batchEntries: Histogram;
  readonly inFlight: Gauge;
  readonly storeBreakerOpen: Gauge;

  constructor(readonly registry: Registry) {
    this.stageSeconds = new Histogram({
      name: 'shardwrite_stage_duration_seconds',
      help: 'Time spent in each pipeline stage, by outcome',
      labelNames: ['stage', 'outcome'],
      buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers: [registry],
    });
    this.commands = new Counter({
      name: 'shardwrite_commands_total',
      help: 'Commands handled, by method and gRPC status code name',
      labelNames: ['method', 'code'],
      registers: [registry],
    });
    this.conflicts = new Counter({
      name: 'shardwrite_conflicts_total',
      help: 'Appends refused by optimistic concurrency (before any retry)',
      registers: [registry],
    });
    this.retries = new Counter({
      name: 'shardwrite_conflict_retries_total',
      help: 'Conflict retry attempts by outcome (succeeded, exhausted)',
      labelNames: ['outcome'],
      registers: [registry],
    });
    this.rejections = new Counter({
      name: 'shardwrite_rejections_total',
      help: 'Commands refused, by ErrorInfo reason',
      labelNames: ['reason'],
      registers: [registry],
    });
    this.loads = new Counter({
      name: 'shardwrite_loads_total',
      help: 'Aggregate loads by the tier that served them (memory, redis snapshot, postgres snapshot = "snapshot", full replay = "replay")',
      labelNames: ['tier'],
      registers: [registry],
    });
    this.replayedEvents = new Histogram({
      name: 'shardwrite_load_replayed_events',
      help: 'Events replayed per aggregate load',
      buckets: [0, 1, 5, 10, 50, 100, 500, 1000, 5000, 10000],
      registers: [registry],
    });
    this.eventsSinceSnapshot = new Histogram({
      name: 'shardwrite_events_since_snapshot',
      help: 'Events after the latest snapshot at load time (alert when p95 > 500)',
      labelNames: ['aggregate_type'],
      buckets: [0, 10, 50, 100, 250, 500, 1000, 5000, 10000],
      registers: [registry],
    });
    this.loadSeconds = new Histogram({
      name: 'shardwrite_load_duration_seconds',
      help: 'Aggregate load time by the tier that served it',
      labelNames: ['tier'],
      buckets: [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
      registers: [registry],
    });
    this.snapshotsSkipped = new Counter({
      name: 'shardwrite_snapshots_skipped_total',
      help:
        'Snapshots found but not used, by tier (redis, postgres) and reason: schema (another state schema), ' +
        'foreign (not of this stream history), stale (redis older than postgres), error (unreadable)',
      labelNames: ['tier', 'reason'],
      registers: [registry],
    });
    this.snapshotWrites = new Counter({
      name: 'shardwrite_snapshot_writes_total',
      help: 'PostgreSQL snapshot writes by outcome: written, kept (a newer one was stored), failed, dropped (queue full)',
      labelNames: ['outcome'],
      registers: [registry],
    });
    this.snapshotCacheOps = new Counter({
      name: 'shardwrite_snapshot_cache_ops_total',
      help: 'Redis snapshot cache operations (get, put) by outcome: hit, miss, rejected (no valid authentication tag: not written by a shard), written, kept, error, timeout, open (breaker)',
      labelNames: ['op', 'outcome'],
      registers: [registry],
    });
    this.snapshotCacheBreaker = new Gauge({
      name: 'shardwrite_snapshot_cache_breaker_state',
      help: 'Redis snapshot cache breaker: 0 closed, 1 half-open, 2 open (the cache is bypassed)',
      registers: [registry],
    });
    this.batchEntries = new Histogram({
      name: 'shardwrite_group_commit_batch_entries',
      help: 'Entries per group-commit batch',
      buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256, 512],
      registers: [registry],
    });
    this.storeBreakerOpen = new Gauge({
      name: 'shardwrite_store_breaker_open',
      help: '1 while the circuit breaker in front of PostgreSQL is open',
      registers: [registry],
    });
    this.inFlight = new Gauge({
      name: 'shardwrite_commands_in_flight',
      help: 'Commands accepted and not yet answered',
      registers: [registry],
    });
  }

  /** Times the synchronous `fn` as `stage`; the outcome label is `ok` or `error`. */
  timeSync<T>(stage: Stage, fn: () => T): T {
    const end = this.stageSeconds.startTimer({ stage });
    try {
      const value = fn();
      end({ outcome: 'ok' });
      return value;
    } catch (err) {
      end({ outcome: 'error' });
      throw err;
    }
  }

  /** Times `fn` as `stage`; the outcome label is `ok` or `error`. */
  async time<T>(stage: Stage, fn: () => Promise<T> | T): Promise<T> {
    const end = this.stageSeconds.startTimer({ stage });
    try {
      const value = await fn();
      end({ outcome: 'ok' });
      return value;
    } catch (err) {
      end({ outcome: 'error' });
      throw err;
    }
  }
}

/** A registry with the process's default metrics (CPU, heap, event loop lag). */
export function createRegistry(prefix: string): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix });
  return registry;
}

/** Serves `GET /metrics` on 127.0.0.1:port (0 picks a free port). */
export async function serveMetrics(registry: Registry, host: string, port: number): Promise<Server> {
  const server = createServer((req, res) => {
    if (req.url !== '/metrics') {
      res.writeHead(404).end();
      return;
    }
    registry.metrics().then(
      (body) => res.writeHead(200, { 'content-type': registry.contentType }).end(body),
      (err: unknown) => res.writeHead(500).end(String(err)),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  return server;
}

/**
 * Serves `/metrics` on `address` (`host:port`; port 0 picks a free one) and
 * returns the server with the address it really bound.
 */
export async function serveMetricsAt(registry: Registry, address: string): Promise<{ server: Server; address: string }> {
  const i = address.lastIndexOf(':');
  const host = address.slice(0, i);
  const server = await serveMetrics(registry, host, Number(address.slice(i + 1)));
  const bound = server.address();
  return { server, address: `${host}:${typeof bound === 'object' && bound ? bound.port : 0}` };
}
