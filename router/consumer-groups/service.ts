/**
 * `ConsumerGroupService.Consume`, served by the router: durable consumer
 * groups over the cluster-wide subscription.
 *
 * State lives in the ring database (`store.ts`): each group's partitions
 * and filters, one checkpoint (a cluster checkpoint token) per partition,
 * the live members with their heartbeats, and each partition's lease. Any
 * number of routers serve members of one group: they agree through those
 * rows only, and each computes the same assignment from the same members.
 *
 * A member's life (`session.ts`): its first message `join` is validated
 * (`join.ts`) and the group created on first use, with every partition
 * checkpoint at the beginning or at the cluster's current tail
 * (`start_from = "end"`). It gets an `Assignment` naming its id and
 * partitions, then their events, each with an `ack_id`; it acknowledges
 * cumulatively per partition. When members come or go, a member gives up a
 * partition only after what it was sent of it is acknowledged (bounded by
 * `handoverMs`), writing the checkpoint before the lease is released, so
 * the next owner resumes exactly there: a rebalance of members redelivers
 * nothing unless a member is slower than the handover wait. Routers hear of
 * each other's members and released partitions by LISTEN/NOTIFY at once,
 * and by the heartbeat at the latest. A member whose
 * stream ends — closed, cancelled, or broken because its process died —
 * has its acknowledged checkpoints written and its leases released at once;
 * a router that dies has its leases expire after `leaseMs`. Either way the
 * next owner resumes after the last acknowledgement: redelivery only past it.
 *
 * Lag (`lag.ts`) is published at the router's `/metrics` for every group in
 * the database, by every router, so alerts take the max per group.
 */
import { identityOfMetadata, type Identity } from '../../src/auth/identity.js';
import * as grpc from '@grpc/grpc-js';
import type { PackageDefinition } from '@grpc/proto-loader';
import { ShardUnavailableError, ValidationError } from '../../src/errors.js';
import type { ConsumeRequest__Output } from '../../src/generated/shardwrite/v1/ConsumeRequest.js';
import { loadApi, loadPackageDefinition } from '../../src/grpc/proto.js';
import { toServiceError } from '../../src/grpc/status.js';
import type { Logger } from '../../src/observability/logger.js';
import { encodeCheckpoint, parsePosition } from '../../src/subscriptions/position.js';
import type { RouterMetrics } from '../metrics.js';
import type { ClusterFeeds } from './feeds.js';
import { validateJoin, type JoinSpec } from './join.js';
import { LagSampler } from './lag.js';
import { MemberSession, type ConsumeCall } from './session.js';
import type { ConsumerGroupSettings } from './settings.js';
import { PgGroupStore, type GroupListener } from './store.js';

/** Wait before listening again after the notification connection was lost. @default 1000 ms */
const RELISTEN_MS = 1000;

/** The gRPC service name, as health and reflection know it. */
export const CONSUMER_GROUP_SERVICE = 'shardwrite.v1.ConsumerGroupService';

export interface ConsumerGroupDeps {
  /** The router's cluster-wide subscription. */
  readonly feeds: ClusterFeeds;
  /** The ring database (RING_DATABASE_URL), where group state is kept. */
  readonly databaseUrl: string;
  readonly settings: ConsumerGroupSettings;
  readonly metrics: RouterMetrics;
  readonly logger: Logger;
  /** The loaded public API (the router's own, to avoid loading it twice); default: loaded here. */
  readonly definition?: PackageDefinition;
  /**
   * Refuses unknown aggregate or event type names (throws ValidationError)
   * before a new group is created with them. Default: none (the feed then
   * refuses them when the member's subscription starts, after the group
   * was created with them).
   */
  readonly validateFilters?: (aggregateTypes: readonly string[], eventTypes: readonly string[]) => void;
}

export interface ConsumerGroups {
  /** `shardwrite.v1.ConsumerGroupService`, for health. */
  readonly serviceName: string;
  /** Members served by this router now, by group. */
  members(): Map<string, number>;
  /** Recomputes the lag gauges now (they are also recomputed every `LAG_SAMPLE_MS`). */
  sampleLag(): Promise<void>;
  /**
   * Ends every member's session (UNAVAILABLE: join again), writing its
   * acknowledged checkpoints and releasing its leases, then closes the
   * database pool. Call it before the gRPC server's shutdown, which would
   * otherwise wait for these never-ending calls.
   */
  close(): Promise<void>;
}

/**
 * Migrates the group tables (idempotent, under an advisory lock) and adds
 * `ConsumerGroupService` to `server`.
 *
 * @throws when the ring database cannot be reached or its group schema is unknown to this code.
 */
export async function addConsumerGroupService(server: grpc.Server, deps: ConsumerGroupDeps): Promise<ConsumerGroups> {
  const store = new PgGroupStore({
    connectionString: deps.databaseUrl,
    onIdleError: (err) => deps.logger.warn({ err }, 'idle consumer group database connection failed'),
  });
  try {
    await store.migrate();
  } catch (err) {
    await store.close();
    throw err;
  }
  const sessions = new Map<string, Set<MemberSession>>();
  let closing = false;
  const sessionDeps = {
    store,
    feeds: deps.feeds,
    settings: deps.settings,
    logger: deps.logger,
    poke: (group: string) => {
      for (const s of sessions.get(group) ?? []) s.poke();
    },
  };

  const initialCheckpoint = (join: JoinSpec) => async (): Promise<string> => {
    if (join.startFrom === '') return '';
    const tails = await deps.feeds.tails();
    return tails.size === 0 ? '' : encodeCheckpoint(new Map([...tails].map(([shard, p]) => [shard, parsePosition(p)])));
  };

  const begin = async (call: ConsumeCall, msg: ConsumeRequest__Output): Promise<void> => {
    if (msg.kind !== 'join' || !msg.join) throw new ValidationError([{ field: 'kind', description: 'the first message must be join' }]);
    const join = tenantScoped(validateJoin(msg.join), identityOfMetadata(call.metadata));
    deps.validateFilters?.(join.aggregateTypes, join.eventTypes);
    const group = await store.ensureGroup({ name: join.group, partitionCount: join.partitions, aggregateTypes: join.aggregateTypes, eventTypes: join.eventTypes }, initialCheckpoint(join));
    if (call.cancelled) return;
    if (closing) throw new ShardUnavailableError('the router is shutting down; join again');
    const session = new MemberSession(sessionDeps, call, join, group);
    let members = sessions.get(group.name);
    if (!members) sessions.set(group.name, (members = new Set()));
    members.add(session);
    void session.finished.then(() => {
      members.delete(session);
      if (members.size === 0 && sessions.get(group.name) === members) sessions.delete(group.name);
    });
    session.start();
    // The others recompute at once instead of at their next heartbeat.
    sessionDeps.poke(group.name);
  };

  const handler: grpc.handleBidiStreamingCall<ConsumeRequest__Output, unknown> = (call) => {
    const consume = call as ConsumeCall;
    if (closing) {
      call.emit('error', toServiceError(new ShardUnavailableError('the router is shutting down; join again')));
      return;
    }
    consume.once('data', (msg: ConsumeRequest__Output) => {
      // Nothing else is read until the session takes over the call.
      consume.pause();
      begin(consume, msg).then(
        () => consume.resume(),
        (err: unknown) => {
          if (!(err instanceof ValidationError)) deps.logger.warn({ err }, 'consumer group join failed');
          if (!consume.cancelled) consume.emit('error', toServiceError(err));
        },
      );
    });
  };

  const api = loadApi(deps.definition ?? loadPackageDefinition());
  server.addService(api.shardwrite.v1.ConsumerGroupService.service, { Consume: handler });

  // Other routers announce members and released partitions; heartbeats remain the fallback while this is down.
  let listener: GroupListener | undefined;
  let relisten: NodeJS.Timeout | undefined;
  const listen = () => {
    relisten = undefined;
    if (closing) return;
    store
      .listen(sessionDeps.poke, (err) => {
        deps.logger.warn({ err }, 'consumer group notifications lost; listening again');
        listener = undefined;
        relisten = setTimeout(listen, RELISTEN_MS);
      })
      .then(
        (l) => {
          if (closing) void l.close();
          else listener = l;
        },
        (err: unknown) => {
          deps.logger.warn({ err }, 'cannot listen for consumer group notifications; retrying');
          relisten = setTimeout(listen, RELISTEN_MS);
        },
      );
  };
  listen();

  const all = () => [...sessions.values()].flatMap((s) => [...s]);
  const lag = new LagSampler({ store, feeds: deps.feeds, metrics: deps.metrics, logger: deps.logger, sessions: () => sessions });
  lag.start();

  let closed: Promise<void> | undefined;
  return {
    serviceName: CONSUMER_GROUP_SERVICE,
    members: () => new Map([...sessions].map(([g, s]) => [g, s.size])),
    sampleLag: () => lag.sample(),
    close: () =>
      (closed ??= (async () => {
        closing = true;
        lag.stop();
        clearTimeout(relisten);
        await listener?.close();
        await Promise.all(all().map((s) => s.shutdown()));
        await store.close();
      })()),
  };
}

/**
 * Group names are per tenant: a caller bound to a tenant joins `<tenant>/<group>`
 * (`/` is not allowed in a name a caller gives), so another tenant's members can
 * neither take its partitions nor move its checkpoints. Callers without a tenant
 * (insecure mode, `*` service principals with tenant '') use the name as given.
 */
function tenantScoped<J extends { readonly group: string }>(join: J, identity: Identity | undefined): J {
  return identity === undefined || identity.tenant === '' ? join : { ...join, group: `${identity.tenant}/${join.group}` };
}
