/**
 * `npm run bench -- load [--address HOST:PORT] [--in-flight N] [--streams S] [--seconds T]`:
 * drives a running router (default: `npm start`'s, 127.0.0.1:50051) the way a
 * service outside this project would, knowing nothing but `proto/`: PlaceOrder
 * commands for new orders pipelined over S `CommandStreamService` streams with
 * N in flight (default 64 over 4), answered in any order and matched by
 * `request_id`. Prints commands/s and latency; an error outcome counts as an
 * error. Needs no database of its own.
 */
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { randomBytes } from 'node:crypto';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { closedLoop, durationFromArgs, numberArg, printTable } from './support.js';

const PROTO_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '../proto');

interface Outcome {
  request_id: string;
  result?: unknown;
  error?: { code: number; message: string };
}

export async function run(args: string[]): Promise<void> {
  const a = args.indexOf('--address');
  const address = a >= 0 && args[a + 1] ? args[a + 1]! : '127.0.0.1:50051';
  const inFlight = numberArg(args, '--in-flight', 64);
  const streamCount = numberArg(args, '--streams', 4);
  const durationMs = durationFromArgs(args, 10_000);
  const definition = protoLoader.loadSync('shardwrite/v1/command_stream.proto', { includeDirs: [PROTO_DIR], keepCase: true, longs: String, defaults: false, oneofs: true });
  const api = grpc.loadPackageDefinition(definition) as unknown as {
    shardwrite: { v1: { CommandStreamService: new (address: string, credentials: grpc.ChannelCredentials) => grpc.Client & { Execute(): grpc.ClientDuplexStream<object, Outcome> } } };
  };
  const client = new api.shardwrite.v1.CommandStreamService(address, grpc.credentials.createInsecure());
  const waiting = new Map<string, { resolve(): void; reject(err: Error): void }>();
  const streams = Array.from({ length: streamCount }, () => {
    const stream = client.Execute();
    stream.on('data', (o: Outcome) => {
      const w = waiting.get(o.request_id);
      if (!w) return;
      waiting.delete(o.request_id);
      if (o.result) w.resolve();
      else w.reject(new Error(`${grpc.status[o.error?.code ?? grpc.status.UNKNOWN]}: ${o.error?.message ?? 'empty outcome'}`));
    });
    stream.on('error', (err) => {
      for (const w of waiting.values()) w.reject(err);
      waiting.clear();
    });
    return stream;
  });

  const run = randomBytes(4).toString('hex');
  let next = 0;
  console.log(`load: ${address}, ${inFlight} in flight over ${streamCount} streams, ${durationMs / 1000}s, PlaceOrder of new orders\n`);
  const result = await closedLoop(`PlaceOrder, ${inFlight} in flight over ${streamCount} streams`, inFlight, durationMs, (w) => {
    const id = String(++next);
    return new Promise<void>((resolve, reject) => {
      waiting.set(id, { resolve, reject });
      streams[w % streamCount]!.write({
        request_id: id,
        place_order: {
          order_id: `load-${run}-${id}`,
          command_id: `load-${run}-${id}`,
          customer_id: 'load',
          customer_email: 'load@example.com',
          shipping_address: { name: 'Load', line1: '1 Main St', city: 'Berlin', postal_code: '10115', country: 'DE' },
        },
      });
    });
  });
  for (const s of streams) s.end();
  client.close();
  printTable([result]);
}
