/**
 * TLS on every hop, over real processes: a router and two shards with
 * certificates from one test CA. Clients reach the router over TLS; the router
 * reaches the shards over mutual TLS; the shards' internal services take only
 * the `router` and `rebalancer` identities; certificates are reloaded when
 * their files change.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as grpc from '@grpc/grpc-js';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tls from 'node:tls';
import { startCluster, type Cluster } from '../support/cluster.js';
import { connect, placeOrder } from '../support/grpc.js';
import { createClient, subscribe } from '../../src/client/index.js';
import { ringCommand, type Output } from '../../cli/ring.js';
import { RingView } from '../../src/ring/index.js';
import { tlsEnv } from '../support/cluster.js';
import { feedApi, linkDefinition } from '../../src/grpc/proto.js';
import { clientCredentials } from '../../src/grpc/tls.js';
import { freePort } from '../support/postgres-process.js';
import { checkServing } from '../../src/rebalance/health.js';
import { DevCa, ensureDevCertificates, type CertFiles } from '../../scripts/dev-certificates.js';

let cluster: Cluster;
let foreignDir: string;
/** Files of identities the cluster does not know: `router` from another CA, and `intruder` from the cluster's CA. */
let foreign: { router: CertFiles };
let intruder: CertFiles;
/** Each shard's plaintext health-only port. */
let healthPorts: number[];

beforeAll(async () => {
  healthPorts = [await freePort(), await freePort(), await freePort()];
  cluster = await startCluster({
    shards: 2,
    spares: 1,
    tls: true,
    shardEnv: (i) => ({ TLS_RELOAD_MS: '200', HEALTH_ADDRESS: `127.0.0.1:${healthPorts[i]}` }),
    routerEnv: { TLS_RELOAD_MS: '200' },
  });
  foreignDir = mkdtempSync(join(tmpdir(), 'sw-foreign-'));
  const f = await ensureDevCertificates(foreignDir, [{ name: 'router', ips: ['127.0.0.1'], dns: ['localhost'] }], 'another CA');
  foreign = { router: f.router! };
  const ca = await DevCa.load({ cert: readFileSync(cluster.tls!.caFile, 'utf8'), key: readFileSync(join(cluster.tls!.dir, 'ca.key'), 'utf8') });
  const pair = await ca.issue({ name: 'intruder', ips: ['127.0.0.1'] });
  intruder = { certFile: join(foreignDir, 'intruder.crt'), keyFile: join(foreignDir, 'intruder.key'), caFile: cluster.tls!.caFile };
  writeFileSync(intruder.certFile, pair.cert);
  writeFileSync(intruder.keyFile, pair.key);
}, 120_000);

afterAll(async () => {
  await cluster?.close();
  if (foreignDir) rmSync(foreignDir, { recursive: true, force: true });
});

/** Opens ShardFeed.Follow at `address` with `credentials`; resolves with the first batch's arrival or the call's status. */
function follow(address: string, credentials: grpc.ChannelCredentials): Promise<{ ok: true } | { code: grpc.status; message: string }> {
  const Feed = feedApi().shardwrite.internal.v1.ShardFeed;
  const client = new Feed(address, credentials);
  return new Promise((resolve) => {
    const call = client.follow({ fromEnd: true, aggregateTypes: [], eventTypes: [], partitionCount: 0, partitions: [], after: '' }, { deadline: Date.now() + 5000 });
    call.on('data', () => {
      resolve({ ok: true });
      call.cancel();
    });
    call.on('error', (err: grpc.ServiceError) => resolve({ code: err.code, message: err.details }));
    call.on('end', () => client.close());
  });
}

/** Opens the router's link (ShardLink.Execute) at `address`; resolves with how it ends. */
function link(address: string, credentials: grpc.ChannelCredentials): Promise<{ code: grpc.status; message: string }> {
  const client = new grpc.Client(address, credentials);
  const { path } = linkDefinition();
  const bytes = (b: Buffer) => b;
  return new Promise((resolve) => {
    const call = client.makeBidiStreamRequest(path, bytes, bytes, new grpc.Metadata(), { deadline: Date.now() + 5000 });
    call.on('data', () => {});
    call.on('error', (err: grpc.ServiceError) => {
      resolve({ code: err.code, message: err.details });
      client.close();
    });
    call.on('status', (s: grpc.StatusObject) => {
      resolve({ code: s.code, message: s.details });
      client.close();
    });
  });
}

function files(name: string): CertFiles {
  return cluster.tls!.files[name]!;
}

describe('TLS on every hop', () => {
  it('serves commands end to end over TLS, on every shard, to a client that trusts the CA', async () => {
    const client = createClient(cluster.routerAddress, { tls: { caFile: cluster.tls!.caFile } });
    try {
      const owners = new Set<string>();
      for (let i = 0; owners.size < 2 && i < 50; i++) {
        const id = `tls-${i}`;
        const r = await client.placeOrder(placeOrder(id), { timeoutMs: 10_000 });
        expect(r.version).toBe('1');
        owners.add(cluster.ownerOf(id));
      }
      expect(owners.size).toBe(2);
    } finally {
      client.close();
    }
  });

  it('refuses a plaintext client at the router and at a shard, writing nothing', async () => {
    for (const address of [cluster.routerAddress, cluster.shards[0]!.address]) {
      const plain = connect(address);
      try {
        const r = await plain.attempt('PlaceOrder', placeOrder('plain-1'), { deadlineMs: 3000 });
        expect('error' in r && r.error.code).toBe(grpc.status.UNAVAILABLE);
      } finally {
        plain.close();
      }
    }
    for (const s of cluster.shards) expect((await s.sql.query("SELECT count(*)::int AS n FROM events WHERE stream_id = 'order-header-plain-1'")).rows[0].n).toBe(0);
  });

  it('refuses a client that does not trust the cluster CA (the server certificate does not verify)', async () => {
    const other = connect(cluster.routerAddress, { credentials: clientCredentials({ caFile: foreign.router.caFile }) });
    try {
      const r = await other.attempt('PlaceOrder', placeOrder('untrusting-1'), { deadlineMs: 3000 });
      expect('error' in r && r.error.code).toBe(grpc.status.UNAVAILABLE);
    } finally {
      other.close();
    }
  });

  it("refuses a client certificate from another CA at a shard's internal services, even one named router", async () => {
    const creds = clientCredentials({ caFile: cluster.tls!.caFile, certFile: foreign.router.certFile, keyFile: foreign.router.keyFile });
    const shard = cluster.shards[0]!.address;
    expect(await follow(shard, creds)).toMatchObject({ code: grpc.status.UNAUTHENTICATED });
    expect(await link(shard, creds)).toMatchObject({ code: grpc.status.UNAUTHENTICATED });
  });

  it("gives PERMISSION_DENIED on a shard's link and feed to a certificate of the cluster CA with an identity not allowed", async () => {
    const creds = clientCredentials(intruder);
    const shard = cluster.shards[1]!.address;
    expect(await follow(shard, creds)).toMatchObject({ code: grpc.status.PERMISSION_DENIED });
    expect(await link(shard, creds)).toMatchObject({ code: grpc.status.PERMISSION_DENIED });
    // Without any client certificate: no identity at all.
    expect(await follow(shard, clientCredentials({ caFile: cluster.tls!.caFile }))).toMatchObject({ code: grpc.status.UNAUTHENTICATED });
  });

  it('lets the rebalancer identity follow a shard feed, and any TLS client use its public services', async () => {
    const shard = cluster.shards[0]!;
    expect(await follow(shard.address, clientCredentials(files('rebalancer')))).toEqual({ ok: true });
    const id = [...Array(50).keys()].map((i) => `pub-${i}`).find((x) => cluster.ownerOf(x) === shard.id)!;
    const direct = connect(shard.address, { credentials: clientCredentials({ caFile: cluster.tls!.caFile }) });
    try {
      const r = await direct.attempt('PlaceOrder', placeOrder(id), { deadlineMs: 10_000 });
      expect(r).toMatchObject({ ok: { version: '1' } });
    } finally {
      direct.close();
    }
  });

  it('answers plaintext health checks on HEALTH_ADDRESS only (for probes that cannot speak TLS), and nothing else there', async () => {
    expect(await checkServing(`127.0.0.1:${healthPorts[0]}`)).toBeUndefined();
    expect(await checkServing(cluster.shards[0]!.address)).toMatch(/UNAVAILABLE/);
    expect(await checkServing(cluster.shards[0]!.address, 3000, '', clientCredentials({ caFile: cluster.tls!.caFile }))).toBeUndefined();
    const plain = connect(`127.0.0.1:${healthPorts[1]}`);
    try {
      const r = await plain.attempt('PlaceOrder', placeOrder('via-health-port'), { deadlineMs: 3000 });
      expect('error' in r && r.error.code).toBe(grpc.status.UNIMPLEMENTED);
    } finally {
      plain.close();
    }
  });

  it('follows committed events through the router over TLS (the router reads the shard feeds over mutual TLS)', async () => {
    const controller = new AbortController();
    const sub = subscribe(cluster.routerAddress, { from: '', tls: { caFile: cluster.tls!.caFile }, signal: controller.signal });
    const seen = new Set<string>();
    const timer = setTimeout(() => controller.abort(), 15_000);
    try {
      for await (const e of sub) {
        seen.add(e.shardId);
        if (seen.size === 2) break;
      }
    } finally {
      clearTimeout(timer);
      controller.abort();
    }
    expect([...seen].sort()).toEqual(['shard-0', 'shard-1']);
  });

  /** The serial number of the certificate the server at `address` presents now. */
  const serialAt = (address: string) =>
    new Promise<string>((resolve, reject) => {
      const [host, port] = [address.slice(0, address.lastIndexOf(':')), Number(address.slice(address.lastIndexOf(':') + 1))];
      const s = tls.connect({ host, port, ca: readFileSync(cluster.tls!.caFile), ALPNProtocols: ['h2'] }, () => {
        const n = s.getPeerCertificate().serialNumber;
        s.destroy();
        resolve(n);
      });
      s.on('error', reject);
    });

  it('reloads a shard certificate when its files change, without a restart; the router keeps reaching it', async () => {
    const shard = cluster.shards[0]!;
    const serial = () => serialAt(shard.address);
    const before = await serial();
    const ca = await DevCa.load({ cert: readFileSync(cluster.tls!.caFile, 'utf8'), key: readFileSync(join(cluster.tls!.dir, 'ca.key'), 'utf8') });
    const next = await ca.issue({ name: shard.id, ips: ['127.0.0.1'], dns: ['localhost'] });
    // Key first, then certificate: in between the pair does not match, and the old one must stay in use.
    writeFileSync(files(shard.id).keyFile, next.key);
    await new Promise((r) => setTimeout(r, 400));
    expect(await serial()).toBe(before);
    writeFileSync(files(shard.id).certFile, next.cert);
    const deadline = Date.now() + 10_000;
    let after = before;
    while (after === before && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 100));
      after = await serial();
    }
    expect(after).not.toBe(before);
    expect(shard.process.output()).not.toMatch(/exited/);
    const client = createClient(cluster.routerAddress, { tls: { caFile: cluster.tls!.caFile } });
    try {
      const id = [...Array(80).keys()].map((i) => `reload-${i}`).find((x) => cluster.ownerOf(x) === shard.id)!;
      expect((await client.placeOrder(placeOrder(id) as never, { timeoutMs: 10_000 })).version).toBe('1');
    } finally {
      client.close();
    }
  });

  it("reloads the router's certificate when its files change, without a restart: clients are served the new one and commands go on", async () => {
    const serial = () => serialAt(cluster.routerAddress);
    const before = await serial();
    const ca = await DevCa.load({ cert: readFileSync(cluster.tls!.caFile, 'utf8'), key: readFileSync(join(cluster.tls!.dir, 'ca.key'), 'utf8') });
    const next = await ca.issue({ name: 'router', ips: ['127.0.0.1'], dns: ['localhost'] });
    writeFileSync(files('router').keyFile, next.key);
    writeFileSync(files('router').certFile, next.cert);
    // The router checks its files every TLS_RELOAD_MS (200 here).
    await expect.poll(serial, { timeout: 10_000, interval: 100 }).not.toBe(before);
    expect(cluster.router.output()).not.toMatch(/exited/);
    const client = createClient(cluster.routerAddress, { tls: { caFile: cluster.tls!.caFile } });
    try {
      for (const shard of cluster.shards.slice(0, 2)) {
        const id = [...Array(80).keys()].map((i) => `router-reload-${i}`).find((x) => cluster.ownerOf(x) === shard.id)!;
        expect((await client.placeOrder(placeOrder(id) as never, { timeoutMs: 10_000 })).version).toBe('1');
      }
    } finally {
      client.close();
    }
  });

  it("adds a shard with the rebalancer's certificate: its health check speaks TLS, and plaintext finds nothing serving", async () => {
    const spare = cluster.shards[2]!;
    const run = async (env: Record<string, string>) => {
      const lines: string[] = [];
      const out: Output = { tty: false, line: (t) => lines.push(t), error: (t) => lines.push(t) };
      const code = await ringCommand(['add', spare.id, '--address', spare.address], { RING_DATABASE_URL: cluster.ringUrl, ...env }, out);
      return { code, text: lines.join('\n') };
    };
    const plain = await run({});
    expect(plain.code).toBe(1);
    expect(plain.text).toMatch(/not serving/);
    const secure = await run(tlsEnv(files('rebalancer')));
    expect(secure.text).toMatch(/ring epoch 2: added shard-2/);
    expect(secure.code).toBe(0);
    const view = new RingView((await cluster.ringStore.current())!);
    const id = [...Array(200).keys()].map((i) => `after-add-${i}`).find((x) => view.ownerOf(x).id === spare.id)!;
    const client = createClient(cluster.routerAddress, { tls: { caFile: cluster.tls!.caFile } });
    try {
      expect((await client.placeOrder(placeOrder(id) as never, { timeoutMs: 15_000 })).version).toBe('1');
    } finally {
      client.close();
    }
    expect(Number((await spare.sql.query('SELECT count(*) AS n FROM events')).rows[0].n)).toBeGreaterThan(0);
  });
});
