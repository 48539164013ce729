/**
 * `npx tsx examples/order-summary/place-order.ts <order id> [address]`: puts
 * one order through the router — placed, two lines, the payment authorized
 * and half of it captured — so the read model has something to show.
 * Re-running it with the same id changes nothing (every command has a
 * command id: the retries answer `duplicate`).
 */
import { createClient } from '../../src/client/index.js';

const [orderId, address = process.env.SHARDWRITE_ADDRESS ?? '127.0.0.1:50051'] = process.argv.slice(2);
if (!orderId) {
  console.error('usage: place-order.ts <order id> [host:port]');
  process.exit(2);
}
const client = createClient(address);
try {
  const steps = [
    client.placeOrder({
      orderId,
      commandId: `${orderId}-place`,
      customerId: 'cu1',
      customerEmail: 'ada@example.com',
      shippingAddress: { name: 'Ada', line1: '1 Main St', city: 'London', postalCode: 'N1', country: 'GB' },
    }),
    client.addOrderLine({ orderId, commandId: `${orderId}-line-1`, lineId: 'l1', sku: 'book', quantity: 2, unitPriceCents: 1250 }),
    client.addOrderLine({ orderId, commandId: `${orderId}-line-2`, lineId: 'l2', sku: 'pen', quantity: 1, unitPriceCents: 300 }),
    client.authorizePayment({ orderId, commandId: `${orderId}-auth`, amountCents: 2800, currency: 'EUR' }),
  ];
  for (const r of await Promise.all(steps)) console.log(`${r.streamId} v${r.version}${r.duplicate ? ' (duplicate)' : ''}`);
  // After the authorization: a capture needs it.
  const captured = await client.capturePayment({ orderId, commandId: `${orderId}-capture`, amountCents: 1400 });
  console.log(`${captured.streamId} v${captured.version}${captured.duplicate ? ' (duplicate)' : ''}`);
} finally {
  client.close();
}
