import type { AnyDecider } from './decider.js';

/**
 * Brings stored event data up to the current schema of its type by applying
 * the decider's upcasters one version at a time. Throws when a step is
 * missing: decoding old data with a newer shape would silently corrupt state.
 */
export function upcast(decider: AnyDecider, type: string, schemaVersion: number, data: unknown): unknown {
  const current = decider.eventSchemaVersions[type] ?? 1;
  let value = data;
  for (let v = schemaVersion; v < current; v++) {
    const step = decider.upcasters[type]?.[v];
    if (!step) throw new Error(`no upcaster for ${decider.aggregateType}/${type} from schema version ${v}`);
    value = step(value);
  }
  if (schemaVersion > current) {
    throw new Error(`${decider.aggregateType}/${type} schema version ${schemaVersion} is newer than this build (${current})`);
  }
  return value;
}
