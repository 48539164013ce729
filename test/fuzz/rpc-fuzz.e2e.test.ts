/**
 * Bad input against every RPC (I10): at least 10,000 generated malformed or
 * hostile requests — random bytes, truncated and damaged messages, wrong wire
 * types, unknown and huge field numbers, oversized messages and fields, empty
 * and 100 kB ids, control characters, unicode, SQL and JSON fragments in every
 * string, negative and huge numbers, missing fields — sent as raw bytes to a
 * router in front of two shards (OrderService, InventoryService,
 * EventStoreService, CommandStreamService — commands in their own oneof
 * members and packed) and, for CommandStreamService, also straight to the
 * shards.
 *
 * Every request must get a deliberate status: the oracle (`wire.ts`) decodes
 * each one with the services' own deserializers and validates it with the
 * domain's own rules, so it knows which status is right. No process may
 * crash, and afterwards the stores must hold exactly the events that the
 * valid commands among them were acknowledged for — nothing else.
 *
 * FUZZ_REQUESTS scales the number of requests (default 10,500); FUZZ_SEED
 * replays a run.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import * as grpc from '@grpc/grpc-js';
import pg from 'pg';
import type protobuf from 'protobufjs';
import type { MethodDefinition } from '@grpc/proto-loader';
import { loadPackageDefinition } from '../../src/grpc/proto.js';
import { decodeStatus, STATUS_DETAILS_KEY } from '../../src/grpc/status.js';
import { commandSpecs, deciderRegistry, modules } from '../../src/domain/index.js';
import { buildRoutingTable, loadProtoRoot } from '../../src/grpc/routing-keys.js';
import { extractDirect } from '../../src/grpc/wire-scan.js';
import { checkStructure, readStores } from '../support/checker.js';
import { startCluster, type Cluster } from '../support/cluster.js';
import { codeName, concat, createOracle, lenField, requestBytes, stringField, validInventoryRequest, validOrderRequest, validReadStream, varintField, type Oracle } from './wire.js';

const MAX_MESSAGE_BYTES = 1024 * 1024;
const CONCURRENCY = 32;
const TOTAL = Number(process.env.FUZZ_REQUESTS) || 10_500;
const SEED = Number(process.env.FUZZ_SEED) || Date.now() % 2 ** 31;

const identity = (b: Buffer): Buffer => b;
/** StreamedCommand's member that packs any command in a google.protobuf.Any. */
const PACKED_MEMBER = 'packed';
const STREAMED_MEMBERS = ['placeOrder', 'updateShippingAddress', 'shipOrder', 'cancelOrder', 'addOrderLine', 'removeOrderLine', 'authorizePayment', 'capturePayment', 'addOrderLines', PACKED_MEMBER];
const PROTOTYPE_NAMES = ['__proto__', 'constructor', 'toString', 'hasOwnProperty', 'valueOf', '__defineGetter__', 'isPrototypeOf'];

/** The command services fuzzed one method at a time, each with its generator of valid requests. */
const COMMAND_SERVICES = {
  OrderService: {
    methods: ['PlaceOrder', 'UpdateShippingAddress', 'ShipOrder', 'CancelOrder', 'AddOrderLine', 'RemoveOrderLine', 'AuthorizePayment', 'CapturePayment', 'AddOrderLines'],
    valid: validOrderRequest,
  },
  InventoryService: { methods: ['ReceiveStock', 'ReserveStock', 'ReleaseReservation'], valid: validInventoryRequest },
} as const;
type CommandService = keyof typeof COMMAND_SERVICES;
const COMMANDS = Object.entries(COMMAND_SERVICES).flatMap(([service, { methods, valid }]) =>
  methods.map((method) => ({ service: service as CommandService, method, path: `/shardwrite.v1.${service}/${method}`, valid: () => valid(method) })),
);

interface Case {
  readonly service: CommandService | 'EventStoreService' | 'CommandStreamService';
  /** Where it is sent: the router, or (command streams only) a shard directly. */
  readonly via: 'router' | 'shard';
  readonly path: string;
  readonly kind: string;
  readonly bytes: Uint8Array;
}

interface Outcome {
  /** Status code name of the call (or of the streamed command's outcome). */
  readonly code: string;
  readonly reason?: string;
  /** Events a successful command appended (stream@version), when it was not a duplicate. */
  readonly wrote: string[];
  /** A violation of the deliberate-status rules, if any. */
  readonly problem?: string;
  /** A valid command whose outcome is unknown (the stream carrying it broke): it may have written this stream. */
  readonly mayHaveWritten?: string;
}

describe('bad input against every RPC, through a router and straight to the shards', () => {
  let cluster: Cluster;
  let oracle: Oracle;
  const methods = new Map<string, MethodDefinition<object, object>>();
  const outcomes: { c: Case; o: Outcome }[] = [];
  let cases: Case[] = [];
  let baseline: Map<string, bigint>;

  beforeAll(async () => {
    cluster = await startCluster({ shards: 2, shardEnv: () => ({ MAX_MESSAGE_BYTES: String(MAX_MESSAGE_BYTES) }), routerEnv: { MAX_MESSAGE_BYTES: String(MAX_MESSAGE_BYTES) } });
    const definition = loadPackageDefinition();
    for (const entry of Object.values(definition)) {
      if (typeof entry !== 'object' || entry === null || 'format' in entry) continue;
      for (const m of Object.values(entry)) methods.set(m.path, m);
    }
    const routes = buildRoutingTable(loadProtoRoot()).routes;
    oracle = createOracle(definition, commandSpecs(modules), new Set(deciderRegistry(modules).keys()), MAX_MESSAGE_BYTES, (path, bytes) => routes.get(path)?.extract(bytes));

    cases = generate(loadProtoRoot(), TOTAL, SEED);
    baseline = await positions(cluster);
    const router = new grpc.Client(cluster.routerAddress, grpc.credentials.createInsecure(), { 'grpc.max_send_message_length': -1 });
    const shards = cluster.shards.map((sh) => new grpc.Client(sh.address, grpc.credentials.createInsecure(), { 'grpc.max_send_message_length': -1 }));
    const started = Date.now();
    try {
      let next = 0;
      await Promise.all(
        Array.from({ length: CONCURRENCY }, async () => {
          for (let i = next++; i < cases.length; i = next++) {
            const c = cases[i]!;
            const o =
              c.service === 'CommandStreamService'
                ? await streamCall(c.via === 'router' ? router : shards[i % shards.length]!, c, oracle, methods)
                : c.service === 'EventStoreService'
                  ? await serverStreamCall(router, c, oracle, methods)
                  : await unaryCall(router, c, oracle, methods);
            outcomes.push({ c, o });
          }
        }),
      );
    } finally {
      router.close();
      for (const sh of shards) sh.close();
    }
    const ms = Date.now() - started;

    // The figures: requests, and status codes by service (and by route for command streams).
    const byService: Record<string, Record<string, number>> = {};
    const kinds: Record<string, number> = {};
    const total: Record<string, number> = {};
    for (const { c, o } of outcomes) {
      const key = o.reason && o.code !== 'OK' ? `${o.code}/${o.reason}` : o.code;
      const service = c.service === 'CommandStreamService' ? `${c.service}(${c.via})` : c.service;
      (byService[service] ??= {})[key] = (byService[service][key] ?? 0) + 1;
      kinds[c.kind] = (kinds[c.kind] ?? 0) + 1;
      total[o.code] = (total[o.code] ?? 0) + 1;
    }
    console.log(
      `[fuzz] ${outcomes.length} requests in ${ms} ms (seed ${SEED}), kinds ${JSON.stringify(kinds)}; codes ${JSON.stringify(total)}; ` +
        `by service ${JSON.stringify(byService)}; events written by valid commands: ${outcomes.flatMap(({ o }) => o.wrote).length}`,
    );
  }, 300_000);

  afterAll(async () => {
    await cluster?.close();
  });

  const problemsOf = (filter: (c: Case) => boolean) =>
    outcomes
      .filter(({ c, o }) => filter(c) && o.problem)
      .map(({ c, o }) => `${c.path} via ${c.via} [${c.kind}] ${o.problem} bytes=${Buffer.from(c.bytes.slice(0, 64)).toString('hex')}${c.bytes.length > 64 ? `…(${c.bytes.length})` : ''}`);

  it(`sends ${TOTAL.toLocaleString('en')}+ requests and gets an answer to each`, () => {
    expect(outcomes.length).toBe(cases.length);
    expect(outcomes.length).toBeGreaterThanOrEqual(Math.min(10_000, TOTAL));
  });

  it('gives every OrderService request a deliberate status', () => {
    const problems = problemsOf((c) => c.service === 'OrderService');
    expect(problems.slice(0, 15), `${problems.length} requests got a status they should not have`).toEqual([]);
  });

  it('gives every InventoryService request a deliberate status', () => {
    expect(outcomes.filter(({ c }) => c.service === 'InventoryService').length).toBeGreaterThan(0);
    const problems = problemsOf((c) => c.service === 'InventoryService');
    expect(problems.slice(0, 15), `${problems.length} requests got a status they should not have`).toEqual([]);
  });

  it('gives every EventStoreService.ReadStream request a deliberate status, and well-formed events', () => {
    const problems = problemsOf((c) => c.service === 'EventStoreService');
    expect(problems.slice(0, 15), `${problems.length} requests got a status they should not have`).toEqual([]);
  });

  it('gives every command sent on a stream straight to a shard a deliberate outcome', () => {
    const problems = problemsOf((c) => c.service === 'CommandStreamService' && c.via === 'shard');
    expect(problems.slice(0, 15), `${problems.length} commands got an outcome they should not have`).toEqual([]);
  });

  it('gives every command sent on a stream through the router a deliberate outcome, whatever other callers send', () => {
    const problems = problemsOf((c) => c.service === 'CommandStreamService' && c.via === 'router');
    expect(problems.slice(0, 15), `${problems.length} commands got an outcome they should not have`).toEqual([]);
  });

  it('crashes no process, and each still serves', async () => {
    expect(cluster.dead()).toEqual([]);
    const probe = new grpc.Client(cluster.routerAddress, grpc.credentials.createInsecure());
    try {
      const bytes = fc.sample(validOrderRequest('PlaceOrder'), { numRuns: 1, seed: 1 })[0]!;
      const ok = await unaryCall(probe, { service: 'OrderService', via: 'router', path: '/shardwrite.v1.OrderService/PlaceOrder', kind: 'probe', bytes }, oracle, methods);
      expect(ok.problem).toBeUndefined();
    } finally {
      probe.close();
    }
  });

  it('leaves in the stores exactly what the acknowledged valid commands wrote, once each', async () => {
    const snapshot = await readStores(cluster.stores());
    const violations: string[] = [];
    checkStructure(snapshot, violations);
    expect(violations).toEqual([]);
    const wrote = outcomes.flatMap(({ o }) => o.wrote);
    const uncertain = new Set(outcomes.flatMap(({ o }) => (o.mayHaveWritten ? [o.mayHaveWritten] : [])));
    const stored = snapshot.events.filter((e) => e.position > (baseline.get(e.shard) ?? 0n));
    const keys = stored.map((e) => `${e.streamId}@${e.version}`);
    expect(keys.length).toBe(new Set(keys).size);
    // Every acknowledged event is there…
    const storedSet = new Set(keys);
    expect(wrote.filter((w) => !storedSet.has(w))).toEqual([]);
    // …and nothing else, but for commands whose outcome the fuzzer could not learn.
    const acked = new Set(wrote);
    expect(stored.filter((e) => !acked.has(`${e.streamId}@${e.version}`) && !uncertain.has(e.streamId)).map((e) => `${e.streamId}@${e.version}`)).toEqual([]);
  });
});

/**
 * The requests of a run: ~1,000 per command method (OrderService, InventoryService), ~1,000 ReadStream,
 * ~1,500 streamed commands (their own oneof members and packed), a few oversized ones.
 */
function generate(root: protobuf.Root, total: number, seed: number): Case[] {
  const per = Math.max(1, Math.round(total / (COMMANDS.length + 2.5)));
  const cases: Case[] = [];
  COMMANDS.forEach(({ service, method, path, valid }, i) => {
    const type = root.lookupType(`shardwrite.v1.${method}Request`);
    for (const { kind, bytes } of fc.sample(requestBytes(type, valid()), { numRuns: per, seed: seed + i })) cases.push({ service, via: 'router', path, kind, bytes });
  });
  const read = root.lookupType('shardwrite.v1.ReadStreamRequest');
  for (const { kind, bytes } of fc.sample(requestBytes(read, validReadStream), { numRuns: per, seed: seed + 100 })) {
    cases.push({ service: 'EventStoreService', via: 'router', path: '/shardwrite.v1.EventStoreService/ReadStream', kind, bytes });
  }
  const streamed = root.lookupType('shardwrite.v1.StreamedCommand');
  const members = streamed.oneofs.command!.fieldsArray;
  const packed = members.find((f) => f.resolve().resolvedType?.fullName === '.google.protobuf.Any')!;
  const any = packed.resolvedType as protobuf.Type;
  // A command in the member that carries its request (field numbers are not in method order), or else
  // packed; order commands are packed too, sometimes: either way is the same command.
  const carry = (method: string, inner: Uint8Array, pack: boolean): Uint8Array => {
    const member = members.find((f) => f.type.split('.').pop() === `${method}Request`);
    if (member && !pack) return lenField(member.id, inner);
    return lenField(packed.id, concat([stringField(any.fields.type_url!.id, `type.googleapis.com/shardwrite.v1.${method}Request`), lenField(any.fields.value!.id, inner)]));
  };
  const validFrame = fc
    .tuple(fc.integer({ min: 0, max: COMMANDS.length - 1 }), fc.string({ maxLength: 8 }), fc.option(fc.constantFrom(0, 1, 50, 5000, 4294967295), { nil: undefined }), fc.boolean())
    .chain(([m, requestId, timeout, pack]) =>
      COMMANDS[m]!.valid().map((inner) => concat([stringField(1, requestId), carry(COMMANDS[m]!.method, inner, pack), timeout === undefined ? new Uint8Array() : varintField(15, timeout)])),
    );
  fc.sample(requestBytes(streamed, validFrame), { numRuns: Math.round(per * 1.5), seed: seed + 200 }).forEach(({ kind, bytes }, i) => {
    cases.push({ service: 'CommandStreamService', via: i % 2 === 0 ? 'router' : 'shard', path: '/shardwrite.v1.CommandStreamService/Execute', kind, bytes });
  });
  // Oversized: a message, and a single field, beyond the 1 MiB limit, for every service.
  const big = new Uint8Array(MAX_MESSAGE_BYTES + 1000).fill(0x61);
  for (const { service, path } of [...COMMANDS.slice(0, 3), COMMANDS.find((c) => c.service === 'InventoryService')!]) {
    cases.push({ service, via: 'router', path, kind: 'oversized', bytes: lenField(1, big) });
    cases.push({ service, via: 'router', path, kind: 'oversized', bytes: big });
  }
  cases.push({ service: 'EventStoreService', via: 'router', path: '/shardwrite.v1.EventStoreService/ReadStream', kind: 'oversized', bytes: lenField(2, big) });
  for (const via of ['router', 'shard'] as const) {
    cases.push({ service: 'CommandStreamService', via, path: '/shardwrite.v1.CommandStreamService/Execute', kind: 'oversized', bytes: lenField(2, lenField(1, big)) });
    cases.push({ service: 'CommandStreamService', via, path: '/shardwrite.v1.CommandStreamService/Execute', kind: 'oversized', bytes: lenField(packed.id, lenField(any.fields.value!.id, big)) });
  }
  // Ids that are names of Object.prototype members, in the routing key of every method, every run:
  // they are valid ids, and must not corrupt a map keyed by them anywhere (router or shard).
  for (const id of PROTOTYPE_NAMES) {
    COMMANDS.forEach(({ service, path, valid }, i) => {
      const bytes = fc.sample(valid(), { numRuns: 1, seed: seed + 300 + i })[0]!;
      cases.push({ service, via: 'router', path, kind: 'prototype-id', bytes: concat([bytes, stringField(1, id)]) });
    });
    cases.push({
      service: 'EventStoreService',
      via: 'router',
      path: '/shardwrite.v1.EventStoreService/ReadStream',
      kind: 'prototype-id',
      bytes: concat([stringField(1, 'order-header'), stringField(2, id)]),
    });
    cases.push({
      service: 'EventStoreService',
      via: 'router',
      path: '/shardwrite.v1.EventStoreService/ReadStream',
      kind: 'prototype-id',
      bytes: concat([stringField(1, 'inventory'), stringField(2, id)]),
    });
  }
  // Interleave services so load is spread over the run.
  return fc.sample(fc.shuffledSubarray(cases, { minLength: cases.length, maxLength: cases.length }), { numRuns: 1, seed })[0]!;
}

async function positions(cluster: Cluster): Promise<Map<string, bigint>> {
  const out = new Map<string, bigint>();
  for (const s of cluster.stores()) {
    const client = new pg.Client({ connectionString: s.url });
    await client.connect();
    try {
      const r = await client.query<{ p: string }>('SELECT coalesce(max(position), 0)::text AS p FROM events');
      out.set(s.shard, BigInt(r.rows[0]!.p));
    } finally {
      await client.end();
    }
  }
  return out;
}

function statusOfError(err: grpc.ServiceError | grpc.StatusObject): { code: string; reason?: string } {
  const raw = err.metadata?.get(STATUS_DETAILS_KEY)[0];
  let reason: string | undefined;
  if (raw instanceof Buffer) {
    try {
      reason = decodeStatus(raw).reason;
    } catch {
      reason = 'UNDECODABLE_DETAILS';
    }
  }
  return { code: codeName(err.code), reason };
}

/** Which statuses a decodable, valid command may get. */
function validCommandCodes(expectsVersion: boolean, directToShard: boolean, timeoutMs: number): Set<string> {
  // The fuzzer draws command ids from a small pool, so one is often reused for another request on the same aggregate.
  const ok = new Set(['OK', 'NOT_FOUND/AGGREGATE_NOT_FOUND', 'FAILED_PRECONDITION/BUSINESS_RULE', 'FAILED_PRECONDITION/COMMAND_ID_REUSED', 'RESOURCE_EXHAUSTED/OVERLOADED']);
  if (expectsVersion) ok.add('ABORTED/VERSION_CONFLICT');
  // A shard asked directly about an aggregate it does not own says so; through the router that never happens.
  if (directToShard) ok.add('FAILED_PRECONDITION/WRONG_SHARD');
  if (timeoutMs > 0 && timeoutMs < 1000) ok.add('DEADLINE_EXCEEDED');
  return ok;
}

function judge(verdict: ReturnType<Oracle['verdict']>, code: string, reason: string | undefined): string | undefined {
  const key = reason ? `${code}/${reason}` : code;
  if (verdict.oversized) return code === 'RESOURCE_EXHAUSTED' ? undefined : `oversized but got ${key}`;
  // Bytes that do not decode as the request are the caller's mistake, answered like any invalid request.
  if (verdict.undecodable) return key === 'INVALID_ARGUMENT/VALIDATION' ? undefined : `undecodable but got ${key}`;
  if (verdict.keyMismatch && key === 'FAILED_PRECONDITION/WRONG_SHARD') return undefined;
  if (verdict.routerRefuses || verdict.invalid) return key === 'INVALID_ARGUMENT/VALIDATION' ? undefined : `invalid but got ${key}`;
  return validCommandCodes(verdict.expectsVersion, false, 0).has(key) ? undefined : `valid but got ${key}`;
}

function unaryCall(client: grpc.Client, c: Case, oracle: Oracle, methods: Map<string, MethodDefinition<object, object>>): Promise<Outcome> {
  return new Promise((resolve) => {
    client.makeUnaryRequest<Buffer, Buffer>(c.path, identity, identity, Buffer.from(c.bytes), new grpc.Metadata(), { deadline: Date.now() + 30_000 }, (err, value) => {
      const verdict = oracle.verdict(c.path, c.bytes);
      if (err) {
        const { code, reason } = statusOfError(err);
        resolve({ code, reason, wrote: [], problem: judge(verdict, code, reason) });
        return;
      }
      const result = methods.get(c.path)!.responseDeserialize(value!) as { streamId: string; version: string; events: { version: string }[]; duplicate: boolean };
      const problem = judge(verdict, 'OK', undefined);
      resolve({ code: 'OK', wrote: result.duplicate ? [] : result.events.map((e) => `${result.streamId}@${e.version}`), problem });
    });
  });
}

function serverStreamCall(client: grpc.Client, c: Case, oracle: Oracle, methods: Map<string, MethodDefinition<object, object>>): Promise<Outcome> {
  return new Promise((resolve) => {
    const call = client.makeServerStreamRequest<Buffer, Buffer>(c.path, identity, identity, Buffer.from(c.bytes), new grpc.Metadata(), { deadline: Date.now() + 30_000 });
    let badMessage: string | undefined;
    call.on('data', (m: Buffer) => {
      try {
        methods.get(c.path)!.responseDeserialize(m);
      } catch {
        badMessage = 'a streamed message does not decode';
      }
    });
    call.on('error', () => {});
    call.on('status', (s: grpc.StatusObject) => {
      const { code, reason } = statusOfError(s);
      const problem = badMessage ?? judge(oracle.verdict(c.path, c.bytes), code, reason);
      resolve({ code, reason, wrote: [], problem });
    });
  });
}

/**
 * One CommandStreamService stream carrying one fuzzed frame, to a shard or
 * through the router.
 *
 * The caller's stream always stays up and every frame gets exactly one
 * outcome: INVALID_ARGUMENT when the router's key scan refuses it or the shard
 * cannot decode it (the shard decodes frame by frame, so a bad frame fails
 * alone), else judged like a unary call (a shard reached directly may say
 * WRONG_SHARD for an aggregate it does not own; the router resends those), else as a
 * unary call (the router resends WRONG_SHARD itself). Through the router the
 * shard receives the frame's bytes unchanged (inside a link frame that carries
 * the deadline), so it is judged as sent.
 */
function streamCall(client: grpc.Client, c: Case, oracle: Oracle, methods: Map<string, MethodDefinition<object, object>>): Promise<Outcome> {
  const m = methods.get(c.path)!;
  return new Promise((resolve) => {
    const call = client.makeBidiStreamRequest<Buffer, Buffer>(c.path, identity, identity, new grpc.Metadata(), { deadline: Date.now() + 30_000 });
    const outcomes: {
      requestId: string;
      result?: { streamId: string; duplicate: boolean; events: { version: string }[] };
      error?: { code: number; details: { type_url: string; value: Buffer }[] };
    }[] = [];
    call.on('data', (b: Buffer) => outcomes.push(m.responseDeserialize(b) as (typeof outcomes)[number]));
    call.on('error', () => {});
    call.on('status', (s: grpc.StatusObject) => {
      // A judge that throws must fail the run, not leave its call pending for ever.
      try {
        judgeStream(s);
      } catch (err) {
        resolve({ code: statusOfError(s).code, wrote: [], problem: `judging the outcome threw: ${err instanceof Error ? err.message : String(err)}` });
      }
    });
    const judgeStream = (s: grpc.StatusObject) => {
      const verdict = oracle.verdict(c.path, c.bytes);
      const stream = statusOfError(s);
      const viaRouter = c.via === 'router';
      if (verdict.oversized || stream.code !== 'OK') {
        const expected = verdict.oversized ? 'RESOURCE_EXHAUSTED' : 'OK';
        const problem =
          stream.code !== expected
            ? `${verdict.oversized ? 'oversized' : verdict.undecodable ? 'undecodable' : 'decodable'} frame ended its stream with ${stream.code}`
            : outcomes.length > 0
              ? 'a failed stream still answered'
              : undefined;
        resolve({ code: stream.code, reason: stream.reason, wrote: [], problem });
        return;
      }
      if (outcomes.length !== 1) {
        resolve({ code: stream.code, wrote: [], problem: `${outcomes.length} outcomes for one command` });
        return;
      }
      const o = outcomes[0]!;
      let code = 'OK';
      let reason: string | undefined;
      if (o.error) {
        code = codeName(o.error.code);
        const info = o.error.details.find((d) => d.type_url.endsWith('google.rpc.ErrorInfo'));
        if (info) reason = decodeStatus(encodeStatusShell(o.error.code, info)).reason;
      }
      const key = reason ? `${code}/${reason}` : code;
      const r = o.result;
      const wrote = r && !r.duplicate ? r.events.map((e) => `${r.streamId}@${e.version}`) : [];

      // Every way the frame may legitimately be read, and what each allows.
      const readings: { allowed: Set<string>; streamId?: string }[] = [];
      const judgeDecoded = (v: ReturnType<Oracle['verdict']>) => {
        const decoded = v.decoded as { command?: string; timeoutMs?: number } & Record<string, unknown>;
        const field = decoded.command;
        const method = field ? field[0]!.toUpperCase() + field.slice(1) : undefined;
        const cv =
          field === PACKED_MEMBER
            ? oracle.packedVerdict(decoded[field] as { type_url?: unknown; value?: unknown })
            : method
              ? oracle.commandVerdict(method, decoded[field!])
              : { invalid: true, expectsVersion: false, streamId: undefined };
        // A frame that sets two members of the `command` oneof is ambiguous: the router (like the protobuf
        // spec) routes by the last one on the wire, protobufjs on the shard keeps the last one declared.
        // The shard then refuses the aggregate it does not own, which is a deliberate answer.
        const members = STREAMED_MEMBERS.filter((f) => decoded[f] !== null && decoded[f] !== undefined).length;
        // A packed request whose fields have unexpected wire types may be read with another id by protobufjs
        // than by the router's strict scan (as `keyMismatch` for a unary request): the shard refuses it as not its own.
        const packedMismatch = field === PACKED_MEMBER && v.routerKey !== undefined && cv.aggregateId !== undefined && cv.aggregateId !== v.routerKey;
        readings.push({
          allowed: cv.invalid ? new Set(['INVALID_ARGUMENT/VALIDATION']) : validCommandCodes(cv.expectsVersion, !viaRouter || members > 1 || packedMismatch, Number(decoded.timeoutMs ?? 0)),
          streamId: cv.streamId,
        });
      };
      // The router reads the frame's request_id with the same strict scan as the routing key: a
      // request_id field with another wire type is refused there, even where protobufjs would read it.
      if (viaRouter && (verdict.routerRefuses || !scansAsString(c.bytes, 1))) readings.push({ allowed: new Set(['INVALID_ARGUMENT/VALIDATION']) });
      else {
        if (verdict.undecodable) readings.push({ allowed: new Set(['INVALID_ARGUMENT/VALIDATION']) });
        else judgeDecoded(verdict);
      }
      const fits = readings.some((x) => x.allowed.has(key));
      const unknown = code === 'UNAVAILABLE' || code === 'DEADLINE_EXCEEDED' || code === 'CANCELLED';
      const mayHaveWritten = unknown ? readings.find((x) => x.streamId)?.streamId : undefined;
      resolve({ code, reason, wrote, problem: fits ? undefined : `streamed command got ${key}`, mayHaveWritten });
    };
    call.write(Buffer.from(c.bytes));
    call.end();
  });
}

/** True when every occurrence of top-level field `field` is length-delimited (the router's scan accepts it). */
function scansAsString(bytes: Uint8Array, field: number): boolean {
  try {
    extractDirect(bytes, field);
    return true;
  } catch {
    return false;
  }
}

/** A serialized google.rpc.Status holding just one detail, so `decodeStatus` can read its ErrorInfo. */
function encodeStatusShell(code: number, detail: { type_url: string; value: Buffer }): Uint8Array {
  const any = concat([stringField(1, detail.type_url), lenField(2, detail.value)]);
  return concat([varintField(1, code), lenField(3, any)]);
}
