/**
 * The ring document: which shards exist at which epoch, and where each one
 * listens. It is the only thing routers and shards need to agree on; its one
 * durable source of truth is the ring database (`store.ts`).
 */

/** One shard on the ring: a stable id (what is hashed) and where it listens (what is dialled). */
export interface RingShard {
  /** Stable id, a DNS label such as `shard-0`; never reused for different data. */
  readonly id: string;
  /** `host:port` of the shard's gRPC server, as routers reach it. */
  readonly address: string;
}

/**
 * A version of the ring. Epochs start at 1 and every published change takes
 * the next one; an epoch's document never changes once written.
 */
export interface RingDocument {
  readonly epoch: number;
  readonly shards: readonly RingShard[];
}

/** A ring document (or the text it was read from) is not valid. */
export class RingDocumentError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RingDocumentError';
  }
}

/** What a shard id must look like: the StatefulSet pod names `shard-0`, `shard-1`, … qualify. */
export const SHARD_ID_PATTERN = /^[a-z0-9][a-z0-9-]{0,62}$/;
const ADDRESS_PATTERN = /^(.+):(\d{1,5})$/;

/**
 * Checks `value` is a ring document and returns a frozen copy with exactly the
 * known fields.
 *
 * @throws RingDocumentError when the epoch is not a positive safe integer, the
 *   shard list is empty, an id is not a DNS label, an address is not
 *   `host:port`, or an id or address appears twice.
 */
export function validateRingDocument(value: unknown): RingDocument {
  if (typeof value !== 'object' || value === null) throw new RingDocumentError('a ring must be an object');
  const { epoch, shards } = value as { epoch?: unknown; shards?: unknown };
  if (typeof epoch !== 'number' || !Number.isSafeInteger(epoch) || epoch < 1) {
    throw new RingDocumentError(`ring epoch must be a positive integer (got ${String(epoch)})`);
  }
  return Object.freeze({ epoch, shards: validateShards(shards) });
}

/** Validates a shard list on its own (the bootstrap setting, a rebalancer's plan). */
export function validateShards(shards: unknown): readonly RingShard[] {
  if (!Array.isArray(shards) || shards.length === 0) throw new RingDocumentError('a ring needs at least one shard');
  const ids = new Set<string>();
  const addresses = new Set<string>();
  const out: RingShard[] = [];
  for (const s of shards as unknown[]) {
    const { id, address } = (typeof s === 'object' && s !== null ? s : {}) as { id?: unknown; address?: unknown };
    if (typeof id !== 'string' || !SHARD_ID_PATTERN.test(id)) {
      throw new RingDocumentError(`shard id must be a DNS label like shard-0 (got ${JSON.stringify(id)})`);
    }
    const port = typeof address === 'string' ? ADDRESS_PATTERN.exec(address)?.[2] : undefined;
    if (typeof address !== 'string' || port === undefined || Number(port) < 1 || Number(port) > 65535) {
      throw new RingDocumentError(`shard ${id}: address must be host:port (got ${JSON.stringify(address)})`);
    }
    if (ids.has(id)) throw new RingDocumentError(`shard id ${id} appears twice`);
    if (addresses.has(address)) throw new RingDocumentError(`address ${address} appears twice`);
    ids.add(id);
    addresses.add(address);
    out.push(Object.freeze({ id, address }));
  }
  return Object.freeze(out);
}

/**
 * Parses the `RING_BOOTSTRAP` setting, `shard-0=host:port,shard-1=host:port`,
 * into the first ring (epoch 1).
 *
 * @throws RingDocumentError on a malformed entry or an invalid shard list.
 */
export function parseRingBootstrap(text: string): RingDocument {
  const shards = text
    .split(',')
    .map((part) => part.trim())
    .filter((part) => part !== '')
    .map((part) => {
      const i = part.indexOf('=');
      if (i <= 0) throw new RingDocumentError(`ring bootstrap entry "${part}" is not id=host:port`);
      return { id: part.slice(0, i).trim(), address: part.slice(i + 1).trim() };
    });
  return { epoch: 1, shards: validateShards(shards) };
}

/** The `--json` form of `shardwrite ring show`: `{"epoch": N, "shards": [{"id", "address"}]}`. */
export function ringToJson(doc: RingDocument): string {
  return JSON.stringify({ epoch: doc.epoch, shards: doc.shards.map((s) => ({ id: s.id, address: s.address })) });
}
