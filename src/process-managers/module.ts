/**
 * Process managers as a domain module: one decider per registered definition
 * (aggregate type `pm-<name>`) and the `shardwrite.v1.ProcessManagerService`
 * RPCs, which name the process manager in the request and route by
 * `instance_id` (the correlation id), so an order's fulfilment instance
 * lives on the shard of its order.
 */
import type { FieldViolation } from '../errors.js';
import type { CommandSpec, DomainModule, RoutedCommand } from '../domain/module.js';
import { MAX_ID_LENGTH, checkCommandId, checkExpectedVersion, checkId, requireMessage, throwIfViolations } from '../domain/validation.js';
import { instanceAggregateType, type AnyProcessManager, type PmRecordedInput } from './definition.js';
import { instanceDecider } from './instance.js';

/** The gRPC service that carries instance commands. */
export const PROCESS_MANAGER_SERVICE = 'shardwrite.v1.ProcessManagerService';
/** Largest `data_json` / `settings_json` accepted, in characters. @default 65536 */
export const MAX_PM_JSON = 65_536;

type Reader = (request: Record<string, unknown>, streamId: string, out: FieldViolation[]) => RoutedCommand['command']['data'];

function spec(method: string, names: ReadonlySet<string>, aggregateType: string, type: string, read: Reader): CommandSpec {
  return {
    method,
    // The aggregate type depends on the request's `process_manager`; this one is for the registry's wiring check.
    aggregateType,
    toCommand(input: unknown): RoutedCommand {
      const request = requireMessage(input);
      const out: FieldViolation[] = [];
      const name = request.processManager;
      if (typeof name !== 'string' || !names.has(name)) {
        out.push({ field: 'process_manager', description: `must be one of ${[...names].join(', ')}` });
      }
      const aggregateId = checkId(out, 'instance_id', request.instanceId);
      const commandId = checkCommandId(out, 'command_id', request.commandId);
      const expectedVersion = checkExpectedVersion(out, 'expected_version', request.expectedVersion);
      const type_ = instanceAggregateType(typeof name === 'string' ? name : '');
      const data = read(request, `${type_}-${aggregateId}`, out);
      throwIfViolations(out);
      return {
        aggregateType: type_,
        aggregateId,
        ...(commandId !== undefined ? { commandId } : {}),
        ...(expectedVersion !== undefined ? { expectedVersion } : {}),
        command: { type, data },
      };
    },
  };
}

function parseJson(out: FieldViolation[], field: string, value: unknown): unknown {
  if (value === '' || value === undefined) return undefined;
  if (typeof value !== 'string' || value.length > MAX_PM_JSON) {
    out.push({ field, description: `must be JSON text of at most ${MAX_PM_JSON} characters` });
    return undefined;
  }
  try {
    return JSON.parse(value) as unknown;
  } catch {
    out.push({ field, description: 'must be JSON text' });
    return undefined;
  }
}

function count(out: FieldViolation[], field: string, value: unknown, min: number): number {
  const n = typeof value === 'string' ? Number(value) : value;
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < min) {
    out.push({ field, description: `must be an integer >= ${min}` });
    return min;
  }
  return n;
}

function readInput(r: Record<string, unknown>, out: FieldViolation[]): PmRecordedInput {
  const inputId = checkId(out, 'input_id', r.inputId);
  const type = checkId(out, 'event_type', r.eventType);
  if (type === 'TimeoutFired') {
    const id = inputId.startsWith('timeout:') ? inputId.slice('timeout:'.length) : '';
    const name = id.split(':')[0] ?? '';
    if (name === '') out.push({ field: 'input_id', description: 'a timeout input is `timeout:<name>:<step>`' });
    return { kind: 'timeout', inputId, name };
  }
  const sourceStreamId = typeof r.sourceStreamId === 'string' && r.sourceStreamId.length <= 2 * MAX_ID_LENGTH ? r.sourceStreamId : '';
  if (sourceStreamId === '') out.push({ field: 'source_stream_id', description: 'is required' });
  return {
    kind: 'event',
    inputId,
    type,
    data: parseJson(out, 'data_json', r.dataJson),
    sourceStreamId,
    sourceVersion: count(out, 'source_version', r.sourceVersion, 1),
  };
}

/**
 * The module that runs `definitions`. Throws when two share a name.
 * With no definitions there is nothing to register: returns `undefined`.
 */
export function processManagerModule(definitions: readonly AnyProcessManager[]): DomainModule | undefined {
  if (definitions.length === 0) return undefined;
  const names = new Set<string>();
  for (const d of definitions) {
    if (names.has(d.name)) throw new Error(`process manager ${d.name} is registered twice`);
    names.add(d.name);
  }
  const first = instanceAggregateType(definitions[0]!.name);
  return {
    service: PROCESS_MANAGER_SERVICE,
    deciders: definitions.map(instanceDecider),
    commands: [
      spec('RecordProcessInput', names, first, 'RecordProcessInput', (r, streamId, out) => ({
        streamId,
        input: readInput(r, out),
        settings: parseJson(out, 'settings_json', r.settingsJson),
      })),
      spec('CompleteProcessStep', names, first, 'CompleteProcessStep', (r, streamId, out) => {
        const rejected = Array.isArray(r.rejected) ? r.rejected : [];
        return {
          streamId,
          step: count(out, 'step', r.step, 1),
          attempt: count(out, 'attempt', r.attempt, 1),
          failure: typeof r.failure === 'string' ? r.failure.slice(0, 2000) : '',
          rejected: rejected.map((x, i) => count(out, `rejected[${i}]`, x, 0)),
        };
      }),
      spec('RetryProcess', names, first, 'RetryProcess', (_r, streamId) => ({ streamId })),
    ],
  };
}
