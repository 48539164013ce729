/**
 * mTLS client certificates as an identity (AUTH_CLIENT_CERTS), over real
 * processes: a caller presenting a certificate the CA signed, named in the
 * setting, is that principal of that tenant without a token — through the
 * router and straight at the owning shard; a certificate the setting does not
 * name is no identity; and tenants stay apart as with tokens.
 */
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureDevCertificates, type CertFiles } from '../../scripts/dev-certificates.js';
import { tokenEntry } from '../../src/auth/static-tokens.js';
import { clientCredentials } from '../../src/grpc/tls.js';
import { startCluster, type Cluster } from '../support/cluster.js';
import { connect, placeOrder, type Clients } from '../support/grpc.js';

const ORDER_SCOPES = ['order-header', 'order-lines', 'order-payment', 'read'];
const TENANT_B_TOKEN = 'tenant-b-token';
const ADDRESS = { name: 'Forged', line1: '1 Main St', city: 'Berlin', postalCode: '10115', country: 'DE' };

describe('client certificates as identities', () => {
  let cluster: Cluster;
  let certs: Record<string, CertFiles>;
  const clients: Clients[] = [];
  const withCert = (address: string, name: string): Clients => {
    const c = connect(address, { credentials: clientCredentials(certs[name]!) });
    clients.push(c);
    return c;
  };

  beforeAll(async () => {
    cluster = await startCluster({
      shards: 2,
      tls: true,
      auth: {
        AUTH_CLIENT_CERTS: `svc-a:svc-a:tenant-a:${ORDER_SCOPES.join('|')}`,
        AUTH_TOKENS: tokenEntry(TENANT_B_TOKEN, 'bob', 'tenant-b', ORDER_SCOPES),
      },
    });
    // Two callers' certificates from the cluster's own CA: one the setting names, one it does not.
    certs = await ensureDevCertificates(
      cluster.tls!.dir,
      ['svc-a', 'svc-x'].map((name) => ({ name, ips: ['127.0.0.1'], dns: ['localhost'] })),
      'shardwrite test CA',
    );
  }, 120_000);

  afterAll(async () => {
    for (const c of clients) c.close();
    await cluster?.close();
  });

  it('lets a named certificate command and read without a token, through the router and at the owning shard', async () => {
    const a = withCert(cluster.routerAddress, 'svc-a');
    const placed = await a.attempt('PlaceOrder', placeOrder('cert-1'));
    expect('ok' in placed ? 'OK' : grpc.status[placed.error.code]).toBe('OK');
    const events = await a.readStream('order-header', 'cert-1');
    expect(events[0]!.metadata).toMatchObject({ principal: 'svc-a', tenant: 'tenant-a' });
    const owner = cluster.shards.find((s) => s.id === cluster.ownerOf('cert-1'))!;
    expect(await withCert(owner.address, 'svc-a').readStream('order-header', 'cert-1')).toHaveLength(1);
  });

  it('keeps tenants apart: a token of another tenant gets NOT_FOUND for the certificate caller’s order', async () => {
    await withCert(cluster.routerAddress, 'svc-a').call('PlaceOrder', placeOrder('cert-2'));
    const b = connect(cluster.routerAddress, { token: TENANT_B_TOKEN, credentials: clientCredentials({ caFile: cluster.tls!.caFile }) });
    clients.push(b);
    const read = await b.readStream('order-header', 'cert-2').then(
      () => 'OK',
      (err: { status: { code: number; reason?: string } }) => `${grpc.status[err.status.code]}/${err.status.reason}`,
    );
    expect(read).toBe('NOT_FOUND/AGGREGATE_NOT_FOUND');
  });

  it('takes an identity forwarded in metadata only from the router: another certificate forging one at a shard is UNAUTHENTICATED', async () => {
    await withCert(cluster.routerAddress, 'svc-a').call('PlaceOrder', placeOrder('cert-4'));
    const owner = cluster.shards.find((s) => s.id === cluster.ownerOf('cert-4'))!;
    const forged = { 'x-shardwrite-principal': 'svc-a', 'x-shardwrite-tenant': 'tenant-a', 'x-shardwrite-scopes': '*' };
    const r = await withCert(owner.address, 'svc-x').attempt('UpdateShippingAddress', { orderId: 'cert-4', shippingAddress: ADDRESS }, { metadata: forged });
    expect('error' in r ? grpc.status[r.error.code] : 'OK').toBe('UNAUTHENTICATED');
    const { rows } = await owner.sql.query("SELECT count(*)::int AS n FROM events WHERE stream_id = 'order-header-cert-4'");
    expect(rows[0].n).toBe(1);
  });

  it('gives a certificate the setting does not name no identity: UNAUTHENTICATED, nothing written', async () => {
    const x = withCert(cluster.routerAddress, 'svc-x');
    const r = await x.attempt('PlaceOrder', placeOrder('cert-3'));
    expect('error' in r ? r.error.code : 'OK').toBe(grpc.status.UNAUTHENTICATED);
    const owner = cluster.shards.find((s) => s.id === cluster.ownerOf('cert-3'))!;
    const { rows } = await owner.sql.query("SELECT count(*)::int AS n FROM events WHERE stream_id = 'order-header-cert-3'");
    expect(rows[0].n).toBe(0);
  });
});
