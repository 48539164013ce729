import { describe, expect, it } from 'vitest';
import { Registry } from 'prom-client';
import { deciderRegistry, modules, commandSpecs } from '../../src/domain/index.js';
import {
  ConcurrencyError,
  DeadlineExceededError,
  OverloadedError,
  StoreUnavailableError,
  VersionConflictError,
  BusinessRuleError,
  AggregateNotFoundError,
  CommandIdReusedError,
  PermissionDeniedError,
  UnauthenticatedError,
  ValidationError,
} from '../../src/errors.js';
import { toRpcStatus } from '../../src/grpc/status.js';
import { createLogger } from '../../src/observability/logger.js';
import { PipelineMetrics } from '../../src/observability/metrics.js';
import { ALLOW_ALL, ScopeAuthorizer } from '../../src/auth/authorize.js';
import type { Identity } from '../../src/auth/identity.js';
import { AggregateLoader } from '../../src/pipeline/loader.js';
import { AggregateCache } from '../../src/pipeline/aggregate-cache.js';
import { SOLE_OWNER } from '../../src/pipeline/ownership.js';
import { CommandPipeline, type PipelineOptions } from '../../src/pipeline/pipeline.js';
import { formatTraceparent, type Tracer } from '../../src/observability/tracing.js';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-node';
import type { AppendEntry, AppendResult, Appender, CommandRecord, EventReader, StoredEvent } from '../../src/store/types.js';

/**
 * An in-memory event store with the same contract as the PostgreSQL one, so
 * these tests exercise the pipeline's logic alone (the store has its own
 * integration tests). `interfere` lets a test play "another writer".
 */
class MemoryStore implements Appender, EventReader {
  async streamTenant(streamId: string): Promise<string | undefined> {
    return this.events.get(streamId)?.length ? (this.tenants.get(streamId) ?? '') : undefined;
  }

  readonly events = new Map<string, StoredEvent[]>();
  readonly commands = new Map<string, CommandRecord>();
  readonly tenants = new Map<string, string>();
  appends: AppendEntry[] = [];
  position = 0n;
  /** Called before each append; may append on its own (a concurrent writer) or throw. */
  interfere: ((entry: AppendEntry) => void) | undefined;
  gate: Promise<void> | undefined;

  async append(entry: AppendEntry): Promise<AppendResult> {
    await this.gate;
    this.interfere?.(entry);
    const stream = this.events.get(entry.streamId) ?? [];
    if (stream.length !== entry.baseVersion) throw new ConcurrencyError(entry.streamId, stream.length);
    this.appends.push(entry);
    if (entry.baseVersion === 0) this.tenants.set(entry.streamId, entry.tenant ?? '');
    const recordedAt = new Date();
    const positions = entry.events.map((e, i) => {
      this.position++;
      stream.push({ streamId: entry.streamId, version: entry.baseVersion + i + 1, ...e, position: this.position, recordedAt });
      return this.position;
    });
    let v = entry.baseVersion;
    for (const c of entry.commands) {
      if (c.commandId)
        this.commands.set(`${entry.streamId}/${c.commandId}`, {
          streamId: entry.streamId,
          commandId: c.commandId,
          firstVersion: v + 1,
          lastVersion: v + c.eventCount,
          ...(c.requestDigest ? { requestDigest: c.requestDigest } : {}),
        });
      v += c.eventCount;
    }
    this.events.set(entry.streamId, stream);
    return { streamId: entry.streamId, version: stream.length, positions, recordedAt };
  }

  async readStream(streamId: string, fromVersion = 1, toVersion = Infinity): Promise<StoredEvent[]> {
    return (this.events.get(streamId) ?? []).filter((e) => e.version >= fromVersion && e.version <= toVersion);
  }

  async findCommands(keys: readonly { streamId: string; commandId: string }[]): Promise<CommandRecord[]> {
    return keys.map((k) => this.commands.get(`${k.streamId}/${k.commandId}`)).filter((r): r is CommandRecord => r !== undefined);
  }

  async close(): Promise<void> {}
}

const specs = commandSpecs(modules);
const spec = (method: string) => specs.get(`shardwrite.v1.OrderService/${method}`)!;
const addLine = (orderId: string, lineId: string, extra: object = {}) => ({ orderId, lineId, sku: 'S', quantity: 1, unitPriceCents: '10', ...extra });

function setup(options: Partial<PipelineOptions> = {}, store = new MemoryStore(), tracer?: Tracer) {
  const metrics = new PipelineMetrics(new Registry());
  const pipeline = new CommandPipeline(
    {
      deciders: deciderRegistry(modules),
      reader: store,
      appender: store,
      loader: new AggregateLoader(store, new AggregateCache(), metrics),
      authorizer: ALLOW_ALL,
      ownership: SOLE_OWNER,
      metrics,
      logger: createLogger('test', 'silent'),
      ...(tracer ? { tracer } : {}),
    },
    { retryBaseMs: 1, retryCapMs: 2, ...options },
  );
  return { store, pipeline, metrics };
}

describe('the command pipeline', () => {
  it('decides commands queued for one stream together and appends them as one entry', async () => {
    const { store, pipeline } = setup();
    let open!: () => void;
    store.gate = new Promise((r) => (open = r));
    // The first command holds the stream's mailbox; the next five queue behind it.
    const results = Array.from({ length: 6 }, (_, i) => pipeline.execute(spec('AddOrderLine'), addLine('o1', `l${i}`), {}));
    await new Promise((r) => setTimeout(r, 10));
    open();
    const outcomes = await Promise.all(results);
    expect(outcomes.map((o) => o.version)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(store.appends.map((a) => a.commands.length)).toEqual([1, 5]);
  });

  it('fails a rejected command in the middle of a mailbox batch alone', async () => {
    const { store, pipeline } = setup();
    let open!: () => void;
    store.gate = new Promise((r) => (open = r));
    const first = pipeline.execute(spec('AddOrderLine'), addLine('o2', 'a'), {});
    await new Promise((r) => setTimeout(r, 5));
    const batch = [
      pipeline.execute(spec('AddOrderLine'), addLine('o2', 'b'), {}),
      pipeline.execute(spec('AddOrderLine'), addLine('o2', 'b'), {}), // duplicate line id
      pipeline.execute(spec('AddOrderLine'), addLine('o2', 'c'), {}),
    ].map((p) =>
      p.then(
        (o) => o.version,
        (e: unknown) => e,
      ),
    );
    open();
    await first;
    const [b, dup, c] = await Promise.all(batch);
    expect(b).toBe(2);
    expect(dup).toBeInstanceOf(BusinessRuleError);
    expect(c).toBe(3);
  });

  it('reloads and decides again when another writer appended first, and converges', async () => {
    const { store, pipeline, metrics } = setup();
    await pipeline.execute(spec('AddOrderLine'), addLine('o3', 'a'), {});
    let interfered = 0;
    store.interfere = (entry) => {
      if (interfered++ < 2) {
        // Someone else appends a line behind the pipeline's back.
        const stream = store.events.get(entry.streamId)!;
        stream.push({ ...stream[0]!, version: stream.length + 1, data: { lineId: `x${interfered}`, sku: 'S', quantity: 1, unitPriceCents: 1, lineTotalCents: 1 } });
      }
    };
    const out = await pipeline.execute(spec('AddOrderLine'), addLine('o3', 'b'), {});
    expect(out.version).toBe(4);
    expect(await metrics.conflicts.get()).toMatchObject({ values: [{ value: 2 }] });
  });

  it('gives up with VERSION_CONFLICT after the bounded number of attempts', async () => {
    const { store, pipeline } = setup({ maxAttempts: 3 });
    await pipeline.execute(spec('AddOrderLine'), addLine('o4', 'a'), {});
    let attempts = 0;
    store.interfere = (entry) => {
      attempts++;
      throw new ConcurrencyError(entry.streamId, 1);
    };
    await expect(pipeline.execute(spec('AddOrderLine'), addLine('o4', 'b'), {})).rejects.toBeInstanceOf(VersionConflictError);
    expect(attempts).toBe(3);
  });

  it('does not retry a client expected_version mismatch', async () => {
    const { store, pipeline } = setup();
    await pipeline.execute(spec('AddOrderLine'), addLine('o5', 'a'), {});
    const before = store.appends.length;
    const err = await pipeline.execute(spec('AddOrderLine'), addLine('o5', 'b', { expectedVersion: '0' }), {}).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(VersionConflictError);
    expect((err as VersionConflictError).currentVersion).toBe(1);
    expect(store.appends.length).toBe(before);
  });

  it('keeps the owner cache exact when an append fails with an unknown outcome', async () => {
    const { store, pipeline } = setup();
    await pipeline.execute(spec('AddOrderLine'), addLine('o6', 'a'), {});
    store.interfere = () => {
      throw new StoreUnavailableError('connection lost');
    };
    await expect(pipeline.execute(spec('AddOrderLine'), addLine('o6', 'b'), {})).rejects.toBeInstanceOf(StoreUnavailableError);
    store.interfere = undefined;
    // Had the cache kept the failed decision, line b would exist and this would be refused as a duplicate.
    const out = await pipeline.execute(spec('AddOrderLine'), addLine('o6', 'b'), {});
    expect(out.version).toBe(2);
  });

  it('does not execute a command whose deadline passed while it waited in the mailbox', async () => {
    const { store, pipeline } = setup();
    let open!: () => void;
    store.gate = new Promise((r) => (open = r));
    const first = pipeline.execute(spec('AddOrderLine'), addLine('o7', 'a'), {});
    await new Promise((r) => setTimeout(r, 5));
    const late = pipeline.execute(spec('AddOrderLine'), addLine('o7', 'b'), { deadline: Date.now() + 20 }).catch((e: unknown) => e);
    await new Promise((r) => setTimeout(r, 40));
    open();
    await first;
    expect(await late).toBeInstanceOf(DeadlineExceededError);
    expect(store.events.get('order-lines-o7')).toHaveLength(1);
  });

  it('refuses commands beyond the per-stream and per-shard bounds before doing any work', async () => {
    const { store, pipeline } = setup({ maxQueuedPerStream: 2, maxInFlight: 5 });
    store.gate = new Promise(() => {});
    const settled: unknown[] = [];
    for (let i = 0; i < 4; i++) void pipeline.execute(spec('AddOrderLine'), addLine('o8', `l${i}`), {}).catch((e: unknown) => settled.push(e));
    await new Promise((r) => setTimeout(r, 5));
    // One in the writer, two queued, the fourth refused.
    expect(settled).toHaveLength(1);
    expect(settled[0]).toBeInstanceOf(OverloadedError);
    for (let i = 0; i < 4; i++) void pipeline.execute(spec('AddOrderLine'), addLine(`o9-${i}`, 'l'), {}).catch((e: unknown) => settled.push(e));
    await new Promise((r) => setTimeout(r, 5));
    expect(pipeline.pending).toBe(5);
    expect(settled.filter((e) => e instanceof OverloadedError)).toHaveLength(3);
  });

  it('gives one caller at most its share of the in-flight budget, and the others keep theirs', async () => {
    const { store, pipeline } = setup({ maxInFlight: 20, callerSharePercent: 25 });
    let open!: () => void;
    store.gate = new Promise((r) => (open = r));
    const refused: unknown[] = [];
    const flood = Array.from({ length: 12 }, (_, i) => pipeline.execute(spec('AddOrderLine'), addLine(`f${i}`, 'l'), { caller: 'principal:flood' }).catch((e: unknown) => (refused.push(e), e)));
    await new Promise((r) => setTimeout(r, 5));
    // 25 % of 20: five held, the other seven refused at once, with OVERLOADED.
    expect(pipeline.pending).toBe(5);
    expect(refused).toHaveLength(7);
    for (const e of refused) expect(toRpcStatus(e)).toMatchObject({ code: 8, reason: 'OVERLOADED' });
    // Another caller, and a command counted against no caller, still get in.
    const other = Array.from({ length: 5 }, (_, i) => pipeline.execute(spec('AddOrderLine'), addLine(`g${i}`, 'l'), { caller: 'peer:ipv4:10.0.0.2:4000' }));
    const internal = pipeline.execute(spec('AddOrderLine'), addLine('h', 'l'), {});
    await new Promise((r) => setTimeout(r, 5));
    expect(pipeline.pending).toBe(11);
    open();
    expect((await Promise.all(other)).map((o) => o.version)).toEqual([1, 1, 1, 1, 1]);
    expect((await internal).version).toBe(1);
    await Promise.all(flood);
    // Answered commands give their share back.
    expect((await pipeline.execute(spec('AddOrderLine'), addLine('f-after', 'l'), { caller: 'principal:flood' })).version).toBe(1);
    expect(store.events.has('order-lines-f11')).toBe(false);
  });
});

describe('a stream not in memory is first assumed new', () => {
  const place = (orderId: string, commandId?: string) => ({
    orderId,
    customerId: 'c1',
    customerEmail: 'a@b.c',
    shippingAddress: { name: 'N', line1: 'L', city: 'C', postalCode: 'P', country: 'DE' },
    ...(commandId && { commandId }),
  });
  /** Counts the reads a pipeline makes. */
  function counting(store: MemoryStore) {
    const reads = { streams: 0, commands: 0 };
    const readStream = store.readStream.bind(store);
    const findCommands = store.findCommands.bind(store);
    store.readStream = (id, from) => (reads.streams++, readStream(id, from));
    store.findCommands = (keys) => (reads.commands++, findCommands(keys));
    return reads;
  }

  it('creates a new stream without reading anything', async () => {
    const { store, pipeline, metrics } = setup();
    const reads = counting(store);
    const out = await pipeline.execute(spec('PlaceOrder'), place('n1'), {});
    expect(out.version).toBe(1);
    expect(reads).toEqual({ streams: 0, commands: 0 });
    expect(store.appends.map((a) => a.baseVersion)).toEqual([0]);
    expect((await metrics.loads.get()).values).toEqual([expect.objectContaining({ labels: { tier: 'assumed_new' }, value: 1 })]);
  });

  it('decides again on the stream as read when the append finds it exists, without counting a conflict or backing off', async () => {
    const store = new MemoryStore();
    await setup({}, store).pipeline.execute(spec('AddOrderLine'), addLine('n2', 'a'), {});
    // A fresh process (empty owner cache) over the same store, with a backoff no test would wait out.
    const backoffMs = 60_000;
    const { pipeline, metrics } = setup({ retryBaseMs: backoffMs, retryCapMs: backoffMs }, store);
    const started = Date.now();
    const out = await pipeline.execute(spec('AddOrderLine'), addLine('n2', 'b'), {});
    expect(out.version).toBe(2);
    // Far below one backoff (a generous bound, not a speed target): the command never backed off.
    expect(Date.now() - started).toBeLessThan(backoffMs / 4);
    expect((await metrics.conflicts.get()).values).toEqual([expect.objectContaining({ value: 0 })]);
    expect(store.events.get(out.streamId)!.map((e) => (e.data as { lineId: string }).lineId)).toEqual(['a', 'b']);
  });

  it('reads the stream when a decision on the empty state is not a plain append (a refusal, a client expected_version)', async () => {
    const store = new MemoryStore();
    await setup({}, store).pipeline.execute(spec('PlaceOrder'), place('n3'), {});
    const { pipeline } = setup({}, store);
    // Refused on an empty stream (no order to cancel), accepted on the real one.
    const cancelled = await pipeline.execute(spec('CancelOrder'), { orderId: 'n3', reason: 'r' }, {});
    expect(cancelled.version).toBe(2);
    const other = setup({}, store).pipeline;
    const err = await other.execute(spec('PlaceOrder'), place('n3'), {}).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BusinessRuleError);
    expect(store.events.get(cancelled.streamId)).toHaveLength(2);
  });

  it('answers a repeated command id as a duplicate even when the first attempt assumed the stream new', async () => {
    const store = new MemoryStore();
    const first = await setup({}, store).pipeline.execute(spec('PlaceOrder'), place('n4', 'cmd-1'), {});
    const again = await setup({}, store).pipeline.execute(spec('PlaceOrder'), place('n4', 'cmd-1'), {});
    expect(again).toMatchObject({ duplicate: true, version: first.version });
    expect(store.events.get(first.streamId)).toHaveLength(1);
  });

  it('reads first when switched off', async () => {
    const store = new MemoryStore();
    const reads = counting(store);
    await setup({ assumeNewStreams: false }, store).pipeline.execute(spec('PlaceOrder'), place('n5'), {});
    expect(reads.streams).toBe(1);
  });
});

describe('tenants, audit and command ids in the pipeline', () => {
  const tenantA: Identity = { principal: 'alice', tenant: 'a', scopes: ['order-lines', 'order-payment'] };
  const tenantB: Identity = { principal: 'bob', tenant: 'b', scopes: ['order-lines', 'order-payment'] };
  const everything: Identity = { principal: 'ops', tenant: '', scopes: ['*'] };
  const scoped = () => setup({}, new MemoryStore());

  it('gives the stream to the tenant that creates it and answers another tenant NOT_FOUND, also for a known command id', async () => {
    for (const assumeNewStreams of [true, false]) {
      const { store, pipeline } = setup({ assumeNewStreams });
      await pipeline.execute(spec('AddOrderLine'), addLine('t1', 'a', { commandId: 'c-1' }), { identity: tenantA });
      expect(store.tenants.get('order-lines-t1')).toBe('a');
      const foreign = [
        pipeline.execute(spec('AddOrderLine'), addLine('t1', 'b'), { identity: tenantB }),
        pipeline.execute(spec('AddOrderLine'), addLine('t1', 'a', { commandId: 'c-1' }), { identity: tenantB }),
      ];
      for (const attempt of foreign) await expect(attempt).rejects.toBeInstanceOf(AggregateNotFoundError);
      expect(store.events.get('order-lines-t1')).toHaveLength(1);
    }
  });

  it("gives an order's lines and payment to the tenant that placed it: another tenant who knows the id cannot create them", async () => {
    const placer: Identity = { ...tenantA, scopes: ['order-header', 'order-lines', 'order-payment'] };
    for (const assumeNewStreams of [true, false]) {
      const { store, pipeline } = setup({ assumeNewStreams });
      const id = `t6-${assumeNewStreams}`;
      const order = { orderId: id, customerId: 'c1', customerEmail: 'a@b.c', shippingAddress: { name: 'N', line1: 'L', city: 'C', postalCode: 'P', country: 'DE' } };
      await pipeline.execute(spec('PlaceOrder'), order, { identity: placer });
      await expect(pipeline.execute(spec('AddOrderLine'), addLine(id, 'b'), { identity: tenantB })).rejects.toBeInstanceOf(AggregateNotFoundError);
      await expect(pipeline.execute(spec('AuthorizePayment'), { orderId: id, commandId: `${id}-pay`, amountCents: '100', currency: 'EUR' }, { identity: tenantB })).rejects.toBeInstanceOf(
        AggregateNotFoundError,
      );
      expect(store.events.get(`order-lines-${id}`) ?? []).toHaveLength(0);
      expect(store.events.get(`order-payment-${id}`) ?? []).toHaveLength(0);
      // The order's tenant creates them; so does a `*` principal, for that tenant.
      await pipeline.execute(spec('AddOrderLine'), addLine(id, 'a'), { identity: tenantA });
      await pipeline.execute(spec('AuthorizePayment'), { orderId: id, commandId: `${id}-pay`, amountCents: '100', currency: 'EUR' }, { identity: everything });
      expect([store.tenants.get(`order-lines-${id}`), store.tenants.get(`order-payment-${id}`)]).toEqual(['a', 'a']);
    }
  });

  it('lets the tenant itself and a `*` principal act on the stream, recording the stream’s tenant', async () => {
    const { store, pipeline } = scoped();
    await pipeline.execute(spec('AddOrderLine'), addLine('t2', 'a'), { identity: tenantA });
    await pipeline.execute(spec('AddOrderLine'), addLine('t2', 'b'), { identity: tenantA });
    await pipeline.execute(spec('AddOrderLine'), addLine('t2', 'c'), { identity: everything });
    expect(store.events.get('order-lines-t2')!.map((e) => [e.metadata.principal, e.metadata.tenant])).toEqual([
      ['alice', 'a'],
      ['alice', 'a'],
      ['ops', 'a'],
    ]);
  });

  it('records correlation (default: the command id) and causation ids, and refuses malformed ones writing nothing', async () => {
    const { store, pipeline } = scoped();
    await pipeline.execute(spec('AddOrderLine'), addLine('t3', 'a', { commandId: 'cmd-a' }), { identity: tenantA });
    await pipeline.execute(spec('AddOrderLine'), addLine('t3', 'b'), { identity: tenantA, correlationId: 'corr-1', causationId: 'cause-1' });
    expect(store.events.get('order-lines-t3')!.map((e) => [e.metadata.correlation_id, e.metadata.causation_id])).toEqual([
      ['cmd-a', undefined],
      ['corr-1', 'cause-1'],
    ]);
    for (const bad of [{ correlationId: 'x'.repeat(129) }, { causationId: 'has space' }, { correlationId: 'caf\u00e9' }, { correlationId: '' }]) {
      await expect(pipeline.execute(spec('AddOrderLine'), addLine('t3', 'z'), { identity: tenantA, ...bad })).rejects.toBeInstanceOf(ValidationError);
    }
    expect(store.events.get('order-lines-t3')).toHaveLength(2);
  });

  it('answers a retry with the same request as a duplicate, and refuses the command id reused for another request', async () => {
    const { store, pipeline } = scoped();
    const place = { orderId: 't4', commandId: 'pay-1', amountCents: '100', currency: 'EUR' };
    await pipeline.execute(spec('AuthorizePayment'), place, { identity: tenantA });
    await expect(pipeline.execute(spec('AuthorizePayment'), place, { identity: tenantA })).resolves.toMatchObject({ duplicate: true });
    await expect(pipeline.execute(spec('AuthorizePayment'), { ...place, amountCents: '999' }, { identity: tenantA })).rejects.toBeInstanceOf(CommandIdReusedError);
    // Also when the stream is read again from the store (the digest is recorded with the command id).
    const cold = setup({}, store);
    await expect(cold.pipeline.execute(spec('AuthorizePayment'), { ...place, amountCents: '999' }, { identity: tenantA })).rejects.toBeInstanceOf(CommandIdReusedError);
    await expect(cold.pipeline.execute(spec('AuthorizePayment'), place, { identity: tenantA })).resolves.toMatchObject({ duplicate: true });
    expect(store.events.get('order-payment-t4')).toHaveLength(1);
  });

  it('refuses a command without identity, with an expired one, or without the aggregate type’s scope', async () => {
    const store = new MemoryStore();
    const metrics = new PipelineMetrics(new Registry());
    const pipeline = new CommandPipeline({
      deciders: deciderRegistry(modules),
      reader: store,
      appender: store,
      loader: new AggregateLoader(store, new AggregateCache(), metrics),
      authorizer: new ScopeAuthorizer(),
      ownership: SOLE_OWNER,
      metrics,
      logger: createLogger('test', 'silent'),
    });
    await expect(pipeline.execute(spec('AddOrderLine'), addLine('t5', 'a'), {})).rejects.toBeInstanceOf(UnauthenticatedError);
    await expect(pipeline.execute(spec('AddOrderLine'), addLine('t5', 'a'), { identity: { ...tenantA, expiresAt: Date.now() - 1 } })).rejects.toBeInstanceOf(UnauthenticatedError);
    await expect(pipeline.execute(spec('AddOrderLine'), addLine('t5', 'a'), { identity: { ...tenantA, scopes: ['read'] } })).rejects.toBeInstanceOf(PermissionDeniedError);
    expect(store.appends).toHaveLength(0);
  });
});

describe('the command pipeline, traced', () => {
  const exporter = new InMemorySpanExporter();
  const tracer = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] }).getTracer('test');

  it("marks each stage on the command's span, records its context in the events, and hands the append its span to link", async () => {
    const { store, pipeline } = setup({}, new MemoryStore(), tracer);
    const span = tracer.startSpan('command');
    const outcome = await pipeline.execute(spec('AddOrderLine'), addLine('t1', 'a'), { span });
    span.end();
    const [finished] = exporter.getFinishedSpans().filter((s) => s.name === 'command');
    expect(finished!.events.map((e) => e.name)).toEqual(['validated', 'authorized', 'queue', 'load', 'decide', 'append']);
    expect(finished!.attributes).toMatchObject({ 'shardwrite.command': 'AddOrderLine', 'shardwrite.aggregate_type': 'order-lines' });
    expect(finished!.events.find((e) => e.name === 'load')!.attributes).toMatchObject({ 'shardwrite.load.tier': 'assumed_new', 'shardwrite.attempt': 0 });
    for (const e of finished!.events.slice(2)) expect(e.attributes!['shardwrite.stage.duration_ms']).toBeGreaterThanOrEqual(0);
    expect(outcome.events[0]!.metadata.traceparent).toBe(formatTraceparent(span.spanContext()));
    expect(store.appends[0]!.trace).toEqual({ parent: span.spanContext(), links: [span.spanContext()] });
  });

  it('shows a conflict retry as an event, and each attempt of its stages', async () => {
    const { store, pipeline } = setup({}, new MemoryStore(), tracer);
    await pipeline.execute(spec('AddOrderLine'), addLine('t2', 'a'), {});
    let interfered = 0;
    store.interfere = (entry) => {
      if (interfered++ > 0) return;
      const stream = store.events.get(entry.streamId)!;
      stream.push({ ...stream[0]!, version: stream.length + 1, data: { lineId: 'x', sku: 'S', quantity: 1, unitPriceCents: 1, lineTotalCents: 1 } });
    };
    const span = tracer.startSpan('retried');
    await pipeline.execute(spec('AddOrderLine'), addLine('t2', 'b'), { span });
    span.end();
    const [finished] = exporter.getFinishedSpans().filter((s) => s.name === 'retried');
    const names = finished!.events.map((e) => e.name);
    expect(names).toEqual(['validated', 'authorized', 'queue', 'load', 'decide', 'append', 'append refused', 'conflict retry', 'load', 'decide', 'append']);
    expect(finished!.events.find((e) => e.name === 'conflict retry')!.attributes).toMatchObject({ 'shardwrite.attempt': 1 });
  });

  it("records the caller's well-formed traceparent in the events when tracing is off, and gives the append nothing to link", async () => {
    const { store, pipeline } = setup();
    const traceparent = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
    const outcome = await pipeline.execute(spec('AddOrderLine'), addLine('t3', 'a'), { traceparent });
    expect(outcome.events[0]!.metadata.traceparent).toBe(traceparent);
    expect(store.appends[0]!.trace).toBeUndefined();
    const plain = await pipeline.execute(spec('AddOrderLine'), addLine('t3', 'b'), {});
    expect(plain.events[0]!.metadata.traceparent).toBeUndefined();
  });
});
