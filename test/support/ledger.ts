/**
 * A load driver that keeps a ledger: N concurrent clients send order commands
 * (each with its own command id) to one address — normally a router — and
 * record every attempt, every acknowledged result and every error by status
 * code. Used by the fault tests (with `checkStores` from `checker.ts`, which
 * proves the ledger against the shards' stores afterwards) and reusable by
 * benchmarks.
 *
 * The workload runs forever on a fixed set of orders, so every shard keeps
 * getting traffic for as long as the run lasts: each client owns its orders
 * and, per order, places it once, authorizes a payment once, then alternates
 * `UpdateShippingAddress` (unbounded), `AddOrderLine` and `AddOrderLines`
 * (2..`MAX_LINES_AT_ONCE` lines, one event each) with fresh line ids (at most
 * 100 per order, the domain's limit). With `ReceiveStock` among `methods`,
 * each order id is also a SKU of the inventory domain (stream
 * `inventory-<id>`, on the order's shard) that keeps receiving stock. An `AddOrderLines` command appends
 * several events, all or none (I3): the checker finds a command with some of
 * its events. With `burst` > 1 a client sends
 * several `AddOrderLine` of one order at once, so the owner decides them
 * together and appends them as one multi-event batch entry: a partial append
 * of an entry (I3, I5) shows up as a lost acknowledgement or a gap. Nothing in
 * the workload can be refused by a business rule, so any refusal is a finding,
 * not noise.
 *
 * Every error answer is classified (`classifyError`): an unknown outcome
 * (UNAVAILABLE, DEADLINE_EXCEEDED, CANCELLED) and the retryable refusals that
 * write nothing (RESOURCE_EXHAUSTED, ABORTED, WRONG_SHARD, STREAM_MOVING) put
 * the command back in the client's queue, and it is sent again later with the
 * SAME command id (full jitter backoff, a bounded number of attempts); the
 * ledger records whether the retry came back `duplicate`. A decided refusal
 * (NOT_FOUND, BUSINESS_RULE, …) is final. An unexpected failure (INTERNAL,
 * UNKNOWN, …) is retried like an unknown outcome, since it may have written.
 * Any error the scenario did not declare in `expect` is a finding
 * (`Ledger.unexpected()`, which the checker reports as a violation), and so is
 * a `duplicate` answer that no earlier attempt of the command can explain.
 */
import * as grpc from '@grpc/grpc-js';
import { loadApi, loadPackageDefinition } from '../../src/grpc/proto.js';
import { statusOf, type RpcStatus } from '../../src/grpc/status.js';
import type { ProtoGrpcType as InventoryGrpc } from '../../src/generated/inventory.js';
import type { CommandResult__Output } from '../../src/generated/shardwrite/v1/CommandResult.js';

const definition = loadPackageDefinition();
const api = loadApi(definition);
const inventoryApi = grpc.loadPackageDefinition(definition) as unknown as InventoryGrpc;

/** The commands the workload sends. */
export type LoadMethod = 'PlaceOrder' | 'UpdateShippingAddress' | 'AddOrderLine' | 'AddOrderLines' | 'AuthorizePayment' | 'ReceiveStock';

/** What the workload sends after placing an order, unless `LoadOptions.methods` says otherwise. */
export const DEFAULT_LOAD_METHODS: readonly Exclude<LoadMethod, 'PlaceOrder'>[] = ['UpdateShippingAddress', 'AddOrderLine', 'AddOrderLines', 'AuthorizePayment'];

/** Lines one `AddOrderLines` of the workload adds at most (at least 2). */
export const MAX_LINES_AT_ONCE = 4;

/**
 * The deadline of a load that runs across a rebalance. A command whose stream
 * moves may wait up to MOVE_WAIT_MS (2 s) at its old owner and then be served
 * by its new owner, which reads the stream cold: 3 s left too little on a
 * loaded machine (seen once in a full run: six such commands written, but
 * answered after their deadline — an unknown outcome the scenario did not
 * expect).
 */
export const MOVING_LOAD_DEADLINE_MS = 10_000;

/**
 * What an error answer says about its command:
 * - `unknown-outcome` — the call was cut, timed out, or the shard or its store
 *   could not be reached: the command may or may not have been applied; retried;
 * - `not-written` — refused before anything could be written, and worth
 *   retrying (OVERLOADED, VERSION_CONFLICT after the shard's own retries,
 *   WRONG_SHARD, STREAM_MOVING); retried;
 * - `refused` — a decided refusal (NOT_FOUND, BUSINESS_RULE, VALIDATION,
 *   COMMAND_ID_REUSED, PERMISSION_DENIED, …), given only for a command id the
 *   service found unknown: final, nothing written;
 * - `failure` — INTERNAL, UNKNOWN, DATA_LOSS, …: the service failed in a way
 *   its error model does not describe; it may have written, so it is retried
 *   like an unknown outcome, but it is never normal.
 */
export type ErrorClass = 'unknown-outcome' | 'not-written' | 'refused' | 'failure';

/** Codes after which the command may or may not have been applied (`unknown-outcome`). */
export const UNKNOWN_OUTCOME_CODES: ReadonlySet<grpc.status> = new Set([grpc.status.UNAVAILABLE, grpc.status.DEADLINE_EXCEEDED, grpc.status.CANCELLED]);

/** Codes of `failure`: nothing in the error model answers with them. */
const FAILURE_CODES: ReadonlySet<grpc.status> = new Set([grpc.status.INTERNAL, grpc.status.UNKNOWN, grpc.status.DATA_LOSS, grpc.status.UNIMPLEMENTED]);

/** Classifies one error answer by its code and ErrorInfo reason (see `ErrorClass`). */
export function classifyError(code: grpc.status, reason?: string): ErrorClass {
  if (FAILURE_CODES.has(code)) return 'failure';
  // The router's and shard's "retry shortly, nothing was written" answer for a stream being moved.
  if (code === grpc.status.UNAVAILABLE && reason === 'STREAM_MOVING') return 'not-written';
  if (UNKNOWN_OUTCOME_CODES.has(code)) return 'unknown-outcome';
  if (code === grpc.status.RESOURCE_EXHAUSTED || code === grpc.status.ABORTED) return 'not-written';
  if (code === grpc.status.FAILED_PRECONDITION && reason === 'WRONG_SHARD') return 'not-written';
  return 'refused';
}

/** `classifyError` for a recorded attempt (`undefined` for OK). */
export function classOf(attempt: Attempt): ErrorClass | undefined {
  if (attempt.code === 'OK') return undefined;
  const code = grpc.status[attempt.code as keyof typeof grpc.status] as grpc.status | undefined;
  return classifyError(code ?? grpc.status.UNKNOWN, attempt.reason);
}

/**
 * An error a scenario expects: `CODE` (any reason) or `CODE/REASON`, e.g.
 * `UNAVAILABLE/STORE_UNAVAILABLE`; with `when`, only for the attempts it accepts
 * (say, of the shard under attack, or while the fault lasted).
 */
export type ExpectedError = string | { readonly error: string; readonly when: (command: CommandRecord, attempt: Attempt) => boolean };

/** `CODE` or `CODE/REASON` of an attempt. */
export function errorKey(attempt: Attempt): string {
  return attempt.reason && attempt.code !== 'OK' ? `${attempt.code}/${attempt.reason}` : attempt.code;
}

function matches(expected: ExpectedError, command: CommandRecord, attempt: Attempt): boolean {
  const pattern = typeof expected === 'string' ? expected : expected.error;
  const hit = pattern.includes('/') ? errorKey(attempt) === pattern : attempt.code === pattern;
  return hit && (typeof expected === 'string' || expected.when(command, attempt));
}

/** One try of a command. */
export interface Attempt {
  /** When it was sent (ms since epoch). */
  readonly sentAt: number;
  /** How long it took to get its answer. */
  readonly ms: number;
  /** The deadline it was sent with (ms from `sentAt`). */
  readonly deadlineMs: number;
  /** Status code name: `OK`, `UNAVAILABLE`, … */
  readonly code: string;
  /** ErrorInfo reason, when the error had one. */
  readonly reason?: string;
  /** For OK: whether the service said the command id was already applied. */
  readonly duplicate?: boolean;
}

/** What the service acknowledged for a command. */
export interface Ack {
  readonly commandId: string;
  readonly orderId: string;
  readonly method: LoadMethod;
  readonly streamId: string;
  /** The stream's version after the command (its last event's version). */
  readonly version: number;
  /** How many events the command appended (the original ones for a duplicate). */
  readonly events: number;
  readonly duplicate: boolean;
  /** When the acknowledgement arrived. */
  readonly at: number;
  /** Which attempt it was (1 = the first). */
  readonly attempt: number;
}

/**
 * Where a command ended up:
 * - `acked` — some attempt returned OK: its events must exist exactly once;
 * - `refused` — the last attempt was a decided refusal (NOT_FOUND, a business
 *   rule, INVALID_ARGUMENT, …), which the service gives only after finding the
 *   command id unknown: its events must not exist;
 * - `not-written` — every attempt was refused before anything could be
 *   written (OVERLOADED, WRONG_SHARD, ABORTED): its events must not exist;
 * - `unknown` — attempts ran out while the outcome was unknown: its events
 *   may exist, once at most;
 * - `in-flight` — the run was cut off with the command still waiting.
 */
export type CommandState = 'acked' | 'refused' | 'not-written' | 'unknown' | 'in-flight';

export interface CommandRecord {
  readonly commandId: string;
  readonly orderId: string;
  readonly method: LoadMethod;
  readonly streamId: string;
  /** Events the command appends when it is applied. */
  readonly expectedEvents: number;
  /** Shard that owned the order when the command was first sent, when the run knows ownership. */
  readonly shard: string | undefined;
  readonly attempts: Attempt[];
  state: CommandState;
  ack?: Ack;
}

export interface LoadOptions {
  /** Address of the router (or a shard); a function when it can change between calls. */
  readonly target: string | (() => string);
  /** Concurrent clients, each with its own channel and one command (or one `burst`) in flight at a time. Default 16. */
  readonly clients?: number;
  /** Orders owned by each client. Default 8. */
  readonly ordersPerClient?: number;
  /** Prefix of order and command ids (unique per run). */
  readonly prefix: string;
  /** Deadline of each call. Default 3000 ms. */
  readonly deadlineMs?: number;
  /** Tries per command id, the first included. Default 200 (with the 1 s backoff cap: minutes of outage). */
  readonly maxAttempts?: number;
  /** Full-jitter backoff between tries of one command: base and cap. Defaults 50 and 1000 ms. */
  readonly retryBaseMs?: number;
  readonly retryCapMs?: number;
  /** After `stop()`, how long clients keep retrying commands with an unknown outcome. Default 20,000 ms. */
  readonly drainMs?: number;
  /** Pause between one client's commands (0 = as fast as answers come). Default 0. */
  readonly thinkMs?: number;
  /** Which shard owns an order (for per-shard figures); optional. */
  readonly ownerOf?: (orderId: string) => string;
  /** Only these methods are sent after an order is placed; default `DEFAULT_LOAD_METHODS`. */
  readonly methods?: readonly Exclude<LoadMethod, 'PlaceOrder'>[];
  /** Orders to use: by default `${prefix}-c<i>-o<j>`; a filter can drop ids (e.g. ones a ring change would move). */
  readonly orderFilter?: (orderId: string) => boolean;
  /**
   * `AddOrderLine` commands a client sends at once for one order (decided
   * together by its owner, appended as one multi-event batch entry).
   * @default 1
   */
  readonly burst?: number;
  /** The errors this scenario may cause; any other error answer is a finding. Default: none. */
  readonly expect?: readonly ExpectedError[];
  /**
   * Sends one attempt some other way than a unary call to `target` (say, with
   * the typed client): resolves with the result, or with the error's rich
   * status. Default: unary calls, one channel per client.
   */
  readonly call?: (clientIndex: number, method: LoadMethod, request: object, deadlineMs: number) => Promise<{ ok: CommandResult__Output } | { status: RpcStatus }>;
}

/** A running load; `stop()` ends it and returns the final ledger. */
export interface LoadRun {
  readonly ledger: Ledger;
  /** Stops sending new commands, retries the unknown ones for up to `drainMs`, closes the clients. */
  stop(): Promise<Ledger>;
}

/** Everything a load run did, by command and by attempt. */
export class Ledger {
  readonly commands = new Map<string, CommandRecord>();
  readonly acks: Ack[] = [];
  readonly startedAt = Date.now();
  stoppedAt: number | undefined;
  /** Commands sent and not yet answered: command id → when the attempt was sent. */
  readonly inFlight = new Map<string, number>();
  /** Named instants a test marks (`fault-start`, `fault-end`, …), ms since epoch. */
  readonly marks = new Map<string, number>();

  /**
   * @param prefix the run's prefix of order and command ids
   * @param expected the errors the scenario may cause (`LoadOptions.expect`)
   */
  constructor(
    readonly prefix: string,
    readonly expected: readonly ExpectedError[] = [],
  ) {}

  /**
   * Every finding in how the service answered, one sentence each (empty = none):
   * an error answer the scenario does not expect, and an acknowledgement
   * saying `duplicate` that no earlier attempt of its command can explain
   * (only an attempt whose outcome was unknown may have written).
   */
  unexpected(): string[] {
    const out: string[] = [];
    for (const command of this.commands.values()) {
      command.attempts.forEach((attempt, i) => {
        if (attempt.code === 'OK') {
          const before = command.attempts.slice(0, i);
          if (attempt.duplicate && !before.some((a) => classOf(a) === 'unknown-outcome' || classOf(a) === 'failure')) {
            const history = before.map(errorKey).join(',') || 'none';
            out.push(`command ${command.commandId} (${command.method}) attempt ${i + 1} was answered duplicate, yet no earlier attempt could have written it (earlier: ${history})`);
          }
          return;
        }
        if (this.expected.some((e) => matches(e, command, attempt))) return;
        out.push(`command ${command.commandId} (${command.method} on ${command.shard ?? '?'}) attempt ${i + 1}: unexpected ${errorKey(attempt)} (${classOf(attempt)})`);
      });
    }
    return out;
  }

  mark(name: string, at = Date.now()): number {
    this.marks.set(name, at);
    return at;
  }

  /**
   * Resolves as soon as a command of a matching shard is in flight (checked
   * on every turn of the event loop), or after `timeoutMs` regardless: lets
   * a test strike while commands are on their way.
   */
  async untilInFlight(shard: (id: string | undefined) => boolean, timeoutMs = 5000): Promise<boolean> {
    const until = Date.now() + timeoutMs;
    while (Date.now() < until) {
      for (const id of this.inFlight.keys()) if (shard(this.commands.get(id)?.shard)) return true;
      await new Promise((resolve) => setImmediate(resolve));
    }
    return false;
  }

  /** Every attempt of every command, with its command. */
  *attempts(): Iterable<{ command: CommandRecord; attempt: Attempt }> {
    for (const command of this.commands.values()) for (const attempt of command.attempts) yield { command, attempt };
  }

  /** Attempts by status code name (each try counts once). */
  codes(filter: (c: CommandRecord, a: Attempt) => boolean = () => true): Record<string, number> {
    const out: Record<string, number> = {};
    for (const { command, attempt } of this.attempts()) {
      if (!filter(command, attempt)) continue;
      const key = errorKey(attempt);
      out[key] = (out[key] ?? 0) + 1;
    }
    return out;
  }

  /** Errors by code (every non-OK attempt). */
  errors(filter?: (c: CommandRecord, a: Attempt) => boolean): Record<string, number> {
    const all = this.codes(filter);
    delete all.OK;
    return all;
  }

  errorCount(filter?: (c: CommandRecord, a: Attempt) => boolean): number {
    return Object.values(this.errors(filter)).reduce((a, b) => a + b, 0);
  }

  /** Commands by final state. */
  states(): Record<CommandState, number> {
    const out: Record<CommandState, number> = { acked: 0, refused: 0, 'not-written': 0, unknown: 0, 'in-flight': 0 };
    for (const c of this.commands.values()) out[c.state]++;
    return out;
  }

  /** Acknowledged commands whose acknowledgement came from a retry that said `duplicate`. */
  get retriedDuplicates(): number {
    return this.acks.filter((a) => a.duplicate && a.attempt > 1).length;
  }

  /** Acknowledgements that arrived in [from, to), optionally for some shards only. */
  acksBetween(from: number, to: number, shard?: (id: string | undefined) => boolean): Ack[] {
    return this.acks.filter((a) => a.at >= from && a.at < to && (!shard || shard(this.commands.get(a.commandId)?.shard)));
  }

  /**
   * Time from `from` to the first acknowledgement of a command that was sent
   * (that attempt) at or after `from`, optionally only for some shards:
   * how long it took the affected part to serve new work again.
   */
  recoveryMs(from: number, shard?: (id: string | undefined) => boolean): number | undefined {
    let first: number | undefined;
    for (const c of this.commands.values()) {
      if (shard && !shard(c.shard)) continue;
      for (const a of c.attempts) {
        if (a.code !== 'OK' || a.sentAt < from) continue;
        const done = a.sentAt + a.ms;
        if (first === undefined || done < first) first = done;
      }
    }
    return first === undefined ? undefined : first - from;
  }

  /** The slowest attempt, and by how much it outlived its deadline (negative = within it). */
  slowest(filter: (c: CommandRecord, a: Attempt) => boolean = () => true): { ms: number; overDeadlineMs: number } {
    let ms = 0;
    let over = -Infinity;
    for (const { command, attempt } of this.attempts()) {
      if (!filter(command, attempt)) continue;
      ms = Math.max(ms, attempt.ms);
      over = Math.max(over, attempt.ms - attempt.deadlineMs);
    }
    return { ms, overDeadlineMs: over };
  }
}

interface OrderPlan {
  readonly id: string;
  placed: 'no' | 'pending' | 'yes' | 'dead';
  paymentSent: boolean;
  nextLine: number;
  updates: number;
}

interface Queued {
  readonly record: CommandRecord;
  readonly request: object;
  due: number;
}

const ADDRESS = (n: number) => ({
  name: `Customer ${n}`,
  line1: `${n} Fault Street`,
  city: 'Berlin',
  postalCode: String(10_000 + (n % 90_000)),
  country: 'DE',
});

/** `order-header-…` etc.: the stream a method writes for an order. */
export function streamOf(method: LoadMethod, orderId: string): string {
  switch (method) {
    case 'PlaceOrder':
    case 'UpdateShippingAddress':
      return `order-header-${orderId}`;
    case 'AddOrderLine':
    case 'AddOrderLines':
      return `order-lines-${orderId}`;
    case 'AuthorizePayment':
      return `order-payment-${orderId}`;
    case 'ReceiveStock':
      return `inventory-${orderId}`;
  }
}

/** Order ids the load will use with these options (before `orderFilter`). */
export function orderIdsOf(prefix: string, clients: number, ordersPerClient: number): string[] {
  const out: string[] = [];
  for (let i = 0; i < clients; i++) for (let j = 0; j < ordersPerClient; j++) out.push(`${prefix}-c${i}-o${j}`);
  return out;
}

const CHANNEL_OPTIONS: grpc.ChannelOptions = {
  // Reconnect quickly to a restarted router or shard (the default backoff grows to minutes).
  'grpc.initial_reconnect_backoff_ms': 100,
  'grpc.max_reconnect_backoff_ms': 1000,
  'grpc.min_reconnect_backoff_ms': 100,
  // Each client its own connection, like separate services would have.
  'grpc.use_local_subchannel_pool': 1,
};

/** Starts the load; it runs until `stop()`. */
export function startLoad(options: LoadOptions): LoadRun {
  const clients = options.clients ?? 16;
  const ordersPerClient = options.ordersPerClient ?? 8;
  const deadlineMs = options.deadlineMs ?? 3000;
  const maxAttempts = options.maxAttempts ?? 200;
  const retryBaseMs = options.retryBaseMs ?? 50;
  const retryCapMs = options.retryCapMs ?? 1000;
  const drainMs = options.drainMs ?? 20_000;
  const thinkMs = options.thinkMs ?? 0;
  const methods = options.methods ?? DEFAULT_LOAD_METHODS;
  const burst = Math.max(1, options.burst ?? 1);
  const target = typeof options.target === 'function' ? options.target : () => options.target as string;
  const ledger = new Ledger(options.prefix, options.expect);
  let stopping = false;
  let drainUntil = Infinity;

  const stubs = new Map<string, grpc.Client>();
  const stubFor = (clientIndex: number, method: LoadMethod): grpc.Client => {
    const address = target();
    const inventory = method === 'ReceiveStock';
    const key = `${inventory ? 'inventory' : 'orders'}:${clientIndex}@${address}`;
    let stub = stubs.get(key);
    if (!stub) {
      const Service = inventory ? inventoryApi.shardwrite.v1.InventoryService : api.shardwrite.v1.OrderService;
      stub = new Service(address, grpc.credentials.createInsecure(), CHANNEL_OPTIONS);
      stubs.set(key, stub);
    }
    return stub;
  };

  const unary = (clientIndex: number, method: LoadMethod, request: object): Promise<{ ok: CommandResult__Output } | { status: RpcStatus }> =>
    new Promise((resolve) => {
      const stub = stubFor(clientIndex, method) as unknown as Record<string, (r: object, m: grpc.Metadata, o: grpc.CallOptions, cb: grpc.requestCallback<CommandResult__Output>) => void>;
      const fn = stub[method]!;
      fn.call(stub, request, new grpc.Metadata(), { deadline: Date.now() + deadlineMs }, (err, res) => resolve(err ? { status: statusOf(err) } : { ok: res! }));
    });
  const call = options.call ? (i: number, method: LoadMethod, request: object) => options.call!(i, method, request, deadlineMs) : unary;

  /** Sends one attempt and files its outcome; returns whether the command needs another try. */
  const attempt = async (clientIndex: number, q: Queued): Promise<boolean> => {
    const { record } = q;
    const sentAt = Date.now();
    ledger.inFlight.set(record.commandId, sentAt);
    const out = await call(clientIndex, record.method, q.request);
    ledger.inFlight.delete(record.commandId);
    const ms = Date.now() - sentAt;
    if ('ok' in out) {
      const r = out.ok;
      const ack: Ack = {
        commandId: record.commandId,
        orderId: record.orderId,
        method: record.method,
        streamId: r.streamId,
        version: Number(r.version),
        events: r.events.length,
        duplicate: r.duplicate,
        at: Date.now(),
        attempt: record.attempts.length + 1,
      };
      record.attempts.push({ sentAt, ms, deadlineMs, code: 'OK', duplicate: r.duplicate });
      record.ack = ack;
      record.state = 'acked';
      ledger.acks.push(ack);
      return false;
    }
    const { status } = out;
    const code = grpc.status[status.code] ?? String(status.code);
    record.attempts.push({ sentAt, ms, deadlineMs, code, reason: status.reason });
    if (classifyError(status.code, status.reason) === 'refused') {
      record.state = 'refused';
      return false;
    }
    const possiblyWritten = record.attempts.some((a) => classOf(a) === 'unknown-outcome' || classOf(a) === 'failure');
    record.state = possiblyWritten ? 'unknown' : 'not-written';
    return record.attempts.length < maxAttempts;
  };

  const runClient = async (clientIndex: number): Promise<void> => {
    const orders: OrderPlan[] = [];
    for (let j = 0; j < ordersPerClient; j++) {
      const id = `${options.prefix}-c${clientIndex}-o${j}`;
      if (options.orderFilter && !options.orderFilter(id)) continue;
      orders.push({ id, placed: 'no', paymentSent: false, nextLine: 0, updates: 0 });
    }
    const retries: Queued[] = [];
    let seq = 0;
    let turn = 0;
    let failures = 0;

    const newCommand = (order: OrderPlan, method: LoadMethod, request: object, expectedEvents = 1): Queued => {
      const commandId = `${options.prefix}-c${clientIndex}-k${seq++}`;
      const record: CommandRecord = {
        commandId,
        orderId: order.id,
        method,
        streamId: streamOf(method, order.id),
        expectedEvents,
        shard: options.ownerOf?.(order.id),
        attempts: [],
        state: 'in-flight',
      };
      ledger.commands.set(commandId, record);
      // The order id is also the SKU of its inventory stream.
      const id = method === 'ReceiveStock' ? { sku: order.id } : { orderId: order.id };
      return { record, request: { ...request, ...id, commandId }, due: 0 };
    };

    const settle = (q: Queued, again: boolean) => {
      const order = orders.find((o) => o.id === q.record.orderId);
      if (again) {
        const n = q.record.attempts.length;
        q.due = Date.now() + Math.random() * Math.min(retryCapMs, retryBaseMs * 2 ** Math.min(n, 16));
        retries.push(q);
        return;
      }
      if (q.record.method === 'PlaceOrder' && order) order.placed = q.record.state === 'acked' ? 'yes' : 'dead';
    };

    const next = (): Queued[] => {
      for (let k = 0; k < orders.length; k++) {
        const order = orders[(turn + k) % orders.length]!;
        if (order.placed === 'pending' || order.placed === 'dead') continue;
        turn = (turn + k + 1) % orders.length;
        if (order.placed === 'no') {
          order.placed = 'pending';
          return [
            newCommand(order, 'PlaceOrder', {
              customerId: `cust-${clientIndex}`,
              customerEmail: `c${clientIndex}@example.com`,
              shippingAddress: ADDRESS(0),
            }),
          ];
        }
        const choices = methods.filter((m) => (m !== 'AddOrderLine' || order.nextLine < 100) && (m !== 'AddOrderLines' || order.nextLine < 99) && (m !== 'AuthorizePayment' || !order.paymentSent));
        const method = choices[Math.floor(Math.random() * choices.length)] ?? 'UpdateShippingAddress';
        const newLine = () => {
          const line = order.nextLine++;
          return { lineId: `l${line}`, sku: `SKU-${line}`, quantity: 1 + (line % 5), unitPriceCents: String(100 + line) };
        };
        if (method === 'AddOrderLine') {
          const lines: Queued[] = [];
          for (let b = 0; b < burst && order.nextLine < 100; b++) lines.push(newCommand(order, method, newLine()));
          return lines;
        }
        if (method === 'AddOrderLines') {
          const n = Math.min(100 - order.nextLine, 2 + Math.floor(Math.random() * (MAX_LINES_AT_ONCE - 1)));
          const lines = Array.from({ length: n }, newLine);
          return [newCommand(order, method, { lines }, n)];
        }
        if (method === 'AuthorizePayment') {
          order.paymentSent = true;
          return [newCommand(order, method, { amountCents: '10000', currency: 'EUR' })];
        }
        if (method === 'ReceiveStock') return [newCommand(order, method, { quantity: 1 + (seq % 5) })];
        order.updates++;
        return [newCommand(order, 'UpdateShippingAddress', { shippingAddress: ADDRESS(order.updates) })];
      }
      return [];
    };

    for (;;) {
      const now = Date.now();
      if (stopping && (retries.length === 0 || now >= drainUntil)) break;
      retries.sort((a, b) => a.due - b.due);
      let batch: Queued[] = [];
      if (retries[0] && retries[0].due <= now) batch = [retries.shift()!];
      else if (!stopping) batch = next();
      if (batch.length === 0) {
        const wait = retries[0] ? Math.max(1, Math.min(retries[0].due - now, 50)) : 20;
        await sleep(wait);
        continue;
      }
      const outcomes = await Promise.all(batch.map((q) => attempt(clientIndex, q)));
      batch.forEach((q, i) => settle(q, outcomes[i]!));
      const again = outcomes.some(Boolean);
      // A client that keeps failing slows down (full jitter), like a real caller would, rather than spin.
      failures = again ? failures + 1 : 0;
      if (failures > 0) await sleep(Math.random() * Math.min(retryCapMs, retryBaseMs * 2 ** Math.min(failures, 16)));
      if (thinkMs > 0) await sleep(thinkMs);
    }
  };

  const running = Promise.all(Array.from({ length: clients }, (_, i) => runClient(i)));

  return {
    ledger,
    async stop() {
      stopping = true;
      drainUntil = Date.now() + drainMs;
      await running;
      ledger.stoppedAt = Date.now();
      for (const stub of stubs.values()) stub.close();
      return ledger;
    },
  };
}

/** One line a test prints so the figures can be quoted. */
export function summaryLine(name: string, ledger: Ledger, check: { lost: number; duplicated: number; violations: readonly string[] }, extra: Record<string, string | number | undefined> = {}): string {
  const errors = ledger.errors();
  const errorText =
    Object.keys(errors).length === 0
      ? 'none'
      : Object.entries(errors)
          .map(([k, v]) => `${k}=${v}`)
          .join(' ');
  const states = ledger.states();
  const extras = Object.entries(extra)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => `${k}=${v}`)
    .join(' ');
  return (
    `[faults] ${name}: acked=${states.acked} (retries-dup=${ledger.retriedDuplicates}) ` +
    `unknown=${states.unknown} refused=${states.refused} not-written=${states['not-written']} ` +
    `errors: ${errorText}; lost=${check.lost} duplicated=${check.duplicated} violations=${check.violations.length}` +
    (extras ? ` ${extras}` : '')
  );
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
