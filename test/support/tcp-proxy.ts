/**
 * A fault-injecting TCP proxy for tests: clients connect to
 * `127.0.0.1:<port>` and are forwarded to `target`. Point a client's URL at
 * it (Redis, PostgreSQL, …) instead of stopping a server other tests share.
 *
 * Modes:
 * - `resume()` — forward both ways (the initial mode).
 * - `pause()` — accept connections and hold all data in both directions; it
 *   is delivered on `resume()` (a server that stalls).
 * - `blackhole()` — accept connections and silently drop all data, for good
 *   (a server or network that swallows packets).
 * - `cut()` — destroy every connection and refuse new ones (a dead server).
 */
import * as net from 'node:net';

export type ProxyMode = 'forward' | 'pause' | 'blackhole' | 'cut';

interface Link {
  readonly client: net.Socket;
  readonly upstream: net.Socket;
  /** Data held while paused, per direction. */
  readonly toUpstream: Buffer[];
  readonly toClient: Buffer[];
}

export interface TcpProxy {
  /** `127.0.0.1:<port>`. */
  readonly address: string;
  readonly port: number;
  readonly mode: ProxyMode;
  /** Connections currently open through the proxy. */
  readonly connections: number;
  pause(): void;
  blackhole(): void;
  cut(): void;
  resume(): void;
  /** Destroys every connection and stops listening. */
  close(): Promise<void>;
}

/** Starts a proxy on 127.0.0.1 (a free port) forwarding to `target` (`host:port`). */
export async function startTcpProxy(target: string): Promise<TcpProxy> {
  const i = target.lastIndexOf(':');
  const targetHost = target.slice(0, i);
  const targetPort = Number(target.slice(i + 1));
  const links = new Set<Link>();
  let mode: ProxyMode = 'forward';

  const destroy = (link: Link) => {
    link.client.destroy();
    link.upstream.destroy();
    links.delete(link);
  };
  const flush = (link: Link) => {
    for (const chunk of link.toUpstream.splice(0)) link.upstream.write(chunk);
    for (const chunk of link.toClient.splice(0)) link.client.write(chunk);
  };
  const relay = (link: Link, data: Buffer, to: net.Socket, held: Buffer[]) => {
    if (mode === 'forward') to.write(data);
    else if (mode === 'pause') held.push(data);
    // blackhole: dropped
  };

  const server = net.createServer((client) => {
    if (mode === 'cut') {
      client.destroy();
      return;
    }
    const upstream = net.connect(targetPort, targetHost);
    const link: Link = { client, upstream, toUpstream: [], toClient: [] };
    links.add(link);
    client.on('data', (d: Buffer) => relay(link, d, upstream, link.toUpstream));
    upstream.on('data', (d: Buffer) => relay(link, d, client, link.toClient));
    const end = () => destroy(link);
    client.on('error', end);
    upstream.on('error', end);
    client.on('close', end);
    upstream.on('close', end);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as net.AddressInfo).port;

  return {
    address: `127.0.0.1:${port}`,
    port,
    get mode() {
      return mode;
    },
    get connections() {
      return links.size;
    },
    pause() {
      mode = 'pause';
    },
    blackhole() {
      mode = 'blackhole';
      for (const link of links) {
        link.toUpstream.length = 0;
        link.toClient.length = 0;
      }
    },
    cut() {
      mode = 'cut';
      for (const link of [...links]) destroy(link);
    },
    resume() {
      mode = 'forward';
      for (const link of links) flush(link);
    },
    async close() {
      mode = 'cut';
      for (const link of [...links]) destroy(link);
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
