/**
 * The CommandSpec every command RPC is built with: the fields every command
 * request shares (the aggregate id in the routing-key field, `command_id`,
 * `expected_version`) are checked here, the method's own fields by its
 * reader, and every violation is reported at once.
 */
import type { Command } from './decider.js';
import type { CommandSpec, RoutedCommand } from './module.js';
import type { FieldViolation } from '../errors.js';
import { checkCommandId, checkExpectedVersion, checkId, requireMessage, throwIfViolations } from './validation.js';

/** Reads a method's own fields from a decoded request (own properties only), appending violations. */
export type Reader<C extends Command> = (request: Record<string, unknown>, out: FieldViolation[]) => C['data'];

/** Where a module's commands go: the aggregate type, and the request field that holds its id. */
export interface CommandTarget {
  readonly aggregateType: string;
  /** The proto (snake_case) name of the aggregate id field, the one marked `routing_key`: `order_id`, `sku`. */
  readonly idField: string;
}

export interface CommandSpecOptions {
  /**
   * `command_id` must be set, and this is why (the violation's text after
   * "is required: "): commands a retry could double, such as money. Unset
   * (the default): `command_id` is optional.
   */
  readonly requireCommandId?: string;
}

/**
 * A CommandSpec whose `toCommand` checks the id field (`target.idField` → the
 * aggregate id), `command_id`, `expected_version` and, with `readData`, the
 * method's own fields, then throws one ValidationError with every violation
 * or returns the routed command. `readData` is typed by the command, so a
 * request field cannot drift from the decider's command shape.
 */
export function commandSpec<C extends Command>(target: CommandTarget, method: C['type'], readData: Reader<C>, options: CommandSpecOptions = {}): CommandSpec {
  const { aggregateType, idField } = target;
  const idProperty = idField.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());
  return {
    method,
    aggregateType,
    toCommand(input: unknown): RoutedCommand {
      const request = ownFields(requireMessage(input));
      const out: FieldViolation[] = [];
      const aggregateId = checkId(out, idField, request[idProperty]);
      const commandId = checkCommandId(out, 'command_id', request.commandId);
      if (options.requireCommandId !== undefined && commandId === undefined && !out.some((v) => v.field === 'command_id')) {
        out.push({ field: 'command_id', description: `is required: ${options.requireCommandId}` });
      }
      const expectedVersion = checkExpectedVersion(out, 'expected_version', request.expectedVersion);
      const data = readData(request, out);
      throwIfViolations(out);
      return {
        aggregateType,
        aggregateId,
        ...(commandId !== undefined ? { commandId } : {}),
        ...(expectedVersion !== undefined ? { expectedVersion } : {}),
        command: { type: method, data },
      };
    },
  };
}

/**
 * A copy of an untrusted object's own properties on a null prototype: it
 * must not supply fields through its prototype chain.
 */
export function ownFields(request: Record<string, unknown>): Record<string, unknown> {
  const fields: Record<string, unknown> = Object.create(null) as Record<string, unknown>;
  for (const key of Object.keys(request)) fields[key] = request[key];
  return fields;
}
