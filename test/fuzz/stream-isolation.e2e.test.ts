/**
 * Bad input on a command stream through the router must hurt nobody else.
 * The router shares one stream per shard among all callers and does not
 * decode commands (it only scans for the routing key), so a frame whose key
 * scans fine but whose body does not decode reaches the shard on that shared
 * stream. Other callers' commands in flight on it must still get their own
 * outcomes, and the bad frame a deliberate one.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as grpc from '@grpc/grpc-js';
import { RingView } from '../../src/ring/index.js';
import { loadPackageDefinition } from '../../src/grpc/proto.js';
import type { ServiceDefinition } from '@grpc/proto-loader';
import { startCluster, type Cluster } from '../support/cluster.js';
import { concat, lenField, stringField } from './wire.js';
import { expectThrow } from '../support/expect-error.js';

const identity = (b: Buffer): Buffer => b;
const EXECUTE = '/shardwrite.v1.CommandStreamService/Execute';

interface Outcome {
  requestId: string;
  result?: unknown;
  error?: { code: number; message: string };
}

const address = concat([stringField(1, 'Ada'), stringField(2, '1 Main St'), stringField(3, 'Berlin'), stringField(4, '10115'), stringField(5, 'DE')]);

/** A valid PlaceOrder frame. */
function placeFrame(requestId: string, orderId: string): Uint8Array {
  const place = concat([stringField(1, orderId), stringField(2, `${orderId}-cmd`), stringField(4, 'cust-1'), stringField(5, 'a@b.co'), lenField(6, address)]);
  return concat([stringField(1, requestId), lenField(2, place)]);
}

/**
 * A frame whose routing key scans fine (field 2 → field 1 is a string, every
 * tag and length well-formed) but whose body does not decode: field 3
 * (`expected_version`, an int64) arrives length-delimited, and the byte after
 * its varint is a tag with the invalid wire type 7.
 */
function undecodableFrame(requestId: string, orderId: string): Uint8Array {
  const place = concat([stringField(1, orderId), lenField(3, Uint8Array.of(0x07))]);
  return concat([stringField(1, requestId), lenField(2, place)]);
}

describe('a command stream through the router, next to a caller sending an undecodable command', () => {
  let cluster: Cluster;
  const outcomeType = (loadPackageDefinition()['shardwrite.v1.CommandStreamService'] as ServiceDefinition).Execute!;

  beforeAll(async () => {
    cluster = await startCluster({ shards: 2 });
  }, 120_000);

  afterAll(async () => {
    await cluster?.close();
  });

  it("answers every other caller's commands, and the bad command alone with a deliberate status", async () => {
    const view = new RingView(cluster.ring);
    const target = 'shard-0';
    const ids = Array.from({ length: 20_000 }, (_, i) => `iso-${i}`).filter((id) => view.ownerOf(id).id === target);
    const good = ids.slice(0, 400);
    const badKey = ids[400]!;

    // The premise: the service's own deserializer cannot decode the bad frame.
    expectThrow(() => outcomeType.requestDeserialize(Buffer.from(undecodableFrame('b-1', badKey))));

    const client = new grpc.Client(cluster.routerAddress, grpc.credentials.createInsecure());
    const open = () => {
      const call = client.makeBidiStreamRequest<Buffer, Buffer>(EXECUTE, identity, identity, new grpc.Metadata(), { deadline: Date.now() + 60_000 });
      const outcomes: Outcome[] = [];
      const done = new Promise<grpc.StatusObject>((resolve) => call.on('status', resolve));
      call.on('data', (b: Buffer) => outcomes.push(outcomeType.responseDeserialize(b) as Outcome));
      call.on('error', () => {});
      return { call, outcomes, done };
    };
    try {
      const a = open();
      const b = open();
      // A pipelines its commands; B's bad command lands while many of A's are in flight on the shared shard stream.
      for (let i = 0; i < good.length; i++) {
        a.call.write(Buffer.from(placeFrame(`a-${i}`, good[i]!)));
        if (i === 100) b.call.write(Buffer.from(undecodableFrame('b-1', badKey)));
      }
      a.call.end();
      b.call.end();
      const [aStatus, bStatus] = await Promise.all([a.done, b.done]);

      const aCodes: Record<string, number> = {};
      for (const o of a.outcomes) {
        const code = o.error ? (grpc.status[o.error.code] ?? String(o.error.code)) : 'OK';
        aCodes[code] = (aCodes[code] ?? 0) + 1;
      }
      const bOutcome = b.outcomes[0];
      console.log(
        `[fuzz] stream isolation: caller A ${JSON.stringify(aCodes)} (stream ${grpc.status[aStatus.code]}); ` +
          `caller B's undecodable command: ${bOutcome?.error ? `${grpc.status[bOutcome.error.code]} "${bOutcome.error.message}"` : JSON.stringify(bOutcome)} (stream ${grpc.status[bStatus.code]})`,
      );

      expect(aStatus.code).toBe(grpc.status.OK);
      expect(a.outcomes).toHaveLength(good.length);
      expect(aCodes).toEqual({ OK: good.length });
      expect(b.outcomes).toHaveLength(1);
      expect([grpc.status.INVALID_ARGUMENT, grpc.status.INTERNAL]).toContain(bOutcome?.error?.code);
      expect(cluster.dead()).toEqual([]);
    } finally {
      client.close();
    }
  }, 120_000);
});
