/**
 * A consumer-group member in a process of its own, for tests that SIGKILL
 * it: joins GROUP at ADDRESS, prints every event it gets as a JSON line, and
 * acks (one by one) only the first ACK_LIMIT of them.
 */
import { TestMember } from './member.js';

const address = process.env.ADDRESS!;
const limit = Number(process.env.ACK_LIMIT ?? '0');
const member = new TestMember(address, { group: process.env.GROUP!, partitions: Number(process.env.PARTITIONS ?? '0'), maxUnacked: 10_000 });
let seen = 0;
const timer = setInterval(() => {
  while (seen < member.events.length) {
    const e = member.events[seen++]!;
    const acked = seen <= limit;
    if (acked) member.ack([e]);
    process.stdout.write(
      JSON.stringify({ stream: e.event!.streamId, version: Number(e.event!.version), partition: e.partition, shard: e.event!.shardId, checkpoint: e.event!.checkpoint, acked }) + '\n',
    );
  }
}, 5);
process.stdout.write('member listening on ' + address + '\n');
void member.ended.then(() => clearInterval(timer));
