/**
 * The floor of what unary gRPC can carry here: a do-nothing backend (answers
 * every OrderService call with a fixed CommandResult the size of a real one) and a do-nothing
 * pass-through router (forwards bytes over one channel), both grpc-js, each
 * its own process. `ROLE=backend` or `ROLE=router BACKEND=host:port`.
 */
import * as grpc from '@grpc/grpc-js';
import { loadPackageDefinition } from '../src/grpc/proto.js';
import type { ServiceDefinition } from '@grpc/proto-loader';

const identity = (b: Buffer): Buffer => b;
const definition = loadPackageDefinition();
const orders = definition['shardwrite.v1.OrderService'] as ServiceDefinition;
const role = process.env.ROLE;
const server = new grpc.Server();
const service: Record<string, grpc.MethodDefinition<Buffer, Buffer>> = {};
const handlers: grpc.UntypedServiceImplementation = {};

if (role === 'backend') {
  // The size and shape of what a shard answers a PlaceOrder (one OrderPlaced event), so both
  // cases carry the same bytes.
  const data = { customerId: 'cust-1', customerEmail: 'ada@example.com', shippingAddress: { name: 'Customer 12345', line1: '12345 Main St', city: 'Berlin', postalCode: '10115', country: 'DE' } };
  const event = {
    streamId: 'order-header-c-12-3456',
    version: '1',
    type: 'OrderPlaced',
    schemaVersion: 1,
    data: JSON.stringify(data),
    position: '123456',
    recordedAt: { seconds: '1795000000', nanos: 123000000 },
    metadata: {},
  };
  const reply = orders.PlaceOrder!.responseSerialize({ streamId: event.streamId, version: '1', events: [event], duplicate: false });
  for (const [name, m] of Object.entries(orders)) {
    service[name] = {
      path: m.path,
      requestStream: false,
      responseStream: false,
      originalName: m.originalName,
      requestSerialize: identity,
      requestDeserialize: identity,
      responseSerialize: identity,
      responseDeserialize: identity,
    };
    handlers[name] = (_call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => cb(null, reply);
  }
} else {
  const backend = new grpc.Client(process.env.BACKEND ?? '', grpc.credentials.createInsecure());
  for (const [name, m] of Object.entries(orders)) {
    service[name] = {
      path: m.path,
      requestStream: false,
      responseStream: false,
      originalName: m.originalName,
      requestSerialize: identity,
      requestDeserialize: identity,
      responseSerialize: identity,
      responseDeserialize: identity,
    };
    handlers[name] = (call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) =>
      backend.makeUnaryRequest(m.path, identity, identity, call.request, call.metadata, { parent: call }, cb);
  }
}
server.addService(service, handlers);
server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, port) => {
  if (err) throw err;
  console.log(`${role} listening on 127.0.0.1:${port}`);
});
process.on('SIGTERM', () => server.tryShutdown(() => process.exit(0)));
