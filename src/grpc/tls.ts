/**
 * Transport security of every gRPC hop, shared by the router, the shards, the
 * rebalancer and the clients.
 *
 * - Settings: TLS_CERT_FILE / TLS_KEY_FILE (this process's certificate and key,
 *   PEM), TLS_CA_FILE (the CA bundle that signs the peers), all three or none;
 *   TLS_RELOAD_MS (how often the files are checked for changes).
 * - Reload without a restart: `CertificateFiles` is a grpc-js
 *   `CertificateProvider` (experimental API, grpc-js ≥ 1.10). Servers built with
 *   `createCertificateProviderServerCredentials` call `setSecureContext` on each
 *   update, and channels built with `createCertificateProviderChannelCredentials`
 *   use the newest certificates for every new connection; open connections keep
 *   the ones they were made with. Unlike grpc-js's own `FileWatcherCertificateProvider`,
 *   a half-written or mismatched set of files is not applied (the last good one
 *   stays, and the problem is reported), so a rotation never drops every
 *   connection in between.
 * - Client certificates: servers request one and verify it against TLS_CA_FILE
 *   but do not require it (`rejectUnauthorized: false`), because public services
 *   take callers with a valid TLS connection and a bearer token. The internal
 *   services of a shard (`shardwrite.internal.*`: the router's ShardLink and
 *   ShardFeed.Follow) check the verified peer certificate per call in one
 *   server interceptor (`internalServicesGuard`) and refuse anyone not named in
 *   TLS_LINK_IDENTITIES with PERMISSION_DENIED (UNAUTHENTICATED when there is no
 *   verified certificate at all: none, or one from another CA).
 */
import * as grpc from '@grpc/grpc-js';
import { experimental } from '@grpc/grpc-js';
import { readFileSync, statSync } from 'node:fs';
import { X509Certificate } from 'node:crypto';
import { createSecureContext, type PeerCertificate } from 'node:tls';
import { address, int, text, type EnvReader } from '../config.js';
import type { Logger } from '../observability/logger.js';

/**
 * How often the certificate files are checked for a change, in ms.
 * @default 5000
 */
export const DEFAULT_TLS_RELOAD_MS = 5000;

/**
 * Certificate identities a shard accepts on its internal services.
 * @default ['router', 'rebalancer']
 */
export const DEFAULT_LINK_IDENTITIES: readonly string[] = ['router', 'rebalancer'];

/** The package of the services only routers and the rebalancer may call. */
export const INTERNAL_SERVICE_PREFIX = '/shardwrite.internal.';

/** The settings `readTlsSettings` reads (see `TlsSettings`). */
export const TLS_SETTINGS = {
  TLS_CERT_FILE: text(),
  TLS_KEY_FILE: text(),
  TLS_CA_FILE: text(),
  TLS_RELOAD_MS: int(DEFAULT_TLS_RELOAD_MS, 100, 3_600_000),
} as const;
/** The settings a shard reads on top of `TLS_SETTINGS`: `readLinkIdentities`'s. */
export const SHARD_TLS_SETTINGS = { ...TLS_SETTINGS, TLS_LINK_IDENTITIES: text(DEFAULT_LINK_IDENTITIES.join(',')) } as const;
/** `readHealthAddress`'s setting: `off` = no health listener. */
export const HEALTH_SETTINGS = { HEALTH_ADDRESS: address('off') } as const;

export interface TlsSettings {
  /** TLS_CERT_FILE — this process's certificate chain (PEM). */
  readonly certFile: string;
  /** TLS_KEY_FILE — its private key (PEM). */
  readonly keyFile: string;
  /** TLS_CA_FILE — the CA certificate(s) peers are verified against (PEM). */
  readonly caFile: string;
  /** TLS_RELOAD_MS — how often the files are checked for a change; default {@link DEFAULT_TLS_RELOAD_MS}. */
  readonly reloadMs: number;
}

/**
 * Reads TLS_CERT_FILE, TLS_KEY_FILE, TLS_CA_FILE and TLS_RELOAD_MS: `undefined`
 * when none of the three files is set (plaintext); a partial set is a problem.
 */
export function readTlsSettings(r: EnvReader<typeof TLS_SETTINGS>): TlsSettings | undefined {
  const certFile = r.optionalString('TLS_CERT_FILE');
  const keyFile = r.optionalString('TLS_KEY_FILE');
  const caFile = r.optionalString('TLS_CA_FILE');
  const reloadMs = r.int('TLS_RELOAD_MS');
  const set = [certFile, keyFile, caFile].filter((v) => v !== undefined).length;
  if (set === 0) return undefined;
  if (set < 3 || !certFile || !keyFile || !caFile) {
    const missing = (['TLS_CERT_FILE', 'TLS_KEY_FILE', 'TLS_CA_FILE'] as const).filter((_, i) => [certFile, keyFile, caFile][i] === undefined);
    r.problem(`TLS_CERT_FILE, TLS_KEY_FILE and TLS_CA_FILE must be set together (missing: ${missing.join(', ')})`);
    return undefined;
  }
  return { certFile, keyFile, caFile, reloadMs };
}

/** HEALTH_ADDRESS — `host:port` of a plaintext health-only listener, or `off` (the default): `undefined`. */
export function readHealthAddress(r: EnvReader<typeof HEALTH_SETTINGS>): string | undefined {
  return r.string('HEALTH_ADDRESS') === 'off' ? undefined : r.address('HEALTH_ADDRESS');
}

/** TLS_LINK_IDENTITIES — comma-separated identities allowed on a shard's internal services; default {@link DEFAULT_LINK_IDENTITIES}. */
export function readLinkIdentities(r: EnvReader<typeof SHARD_TLS_SETTINGS>): ReadonlySet<string> {
  const ids = r
    .string('TLS_LINK_IDENTITIES')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  if (ids.length === 0) r.problem('TLS_LINK_IDENTITIES must name at least one identity');
  return new Set(ids);
}

/** A certificate file set that cannot be used (missing, unreadable, or key and certificate do not match). */
export class TlsFilesError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TlsFilesError';
  }
}

interface Loaded {
  readonly cert: Buffer;
  readonly key: Buffer;
  readonly ca: Buffer;
  /** Identity of the file versions read (path, inode, size, mtime of each). */
  readonly stamp: string;
}

function stampOf(files: readonly string[]): string {
  return files
    .map((f) => {
      const s = statSync(f);
      return `${f}:${s.ino}:${s.size}:${s.mtimeMs}`;
    })
    .join('|');
}

/** Reads and checks the three files; throws TlsFilesError naming the file (never its contents). */
function load(settings: TlsSettings): Loaded {
  const files = [settings.certFile, settings.keyFile, settings.caFile];
  let stamp: string;
  const [cert, key, ca] = files.map((f) => {
    try {
      return readFileSync(f);
    } catch (err) {
      throw new TlsFilesError(`cannot read ${f}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
    }
  }) as [Buffer, Buffer, Buffer];
  try {
    stamp = stampOf(files);
  } catch (err) {
    throw new TlsFilesError(`cannot stat the TLS files: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
  try {
    new X509Certificate(cert);
  } catch {
    throw new TlsFilesError(`${settings.certFile} holds no PEM certificate`);
  }
  try {
    new X509Certificate(ca);
  } catch {
    throw new TlsFilesError(`${settings.caFile} holds no PEM certificate`);
  }
  try {
    // Fails when the key does not belong to the certificate, or does not parse.
    createSecureContext({ cert, key, ca });
  } catch (err) {
    throw new TlsFilesError(`${settings.certFile} and ${settings.keyFile} do not form a usable pair (${(err as Error).message})`);
  }
  return { cert, key, ca, stamp };
}

export interface CertificateFilesOptions {
  /** Called after a changed set of files was loaded and applied. */
  readonly onReload?: (subject: string) => void;
  /** Called when changed files cannot be used (the previous ones stay in use). */
  readonly onError?: (err: TlsFilesError) => void;
}

/**
 * A process's `CertificateFiles` (router, shard), its reloads and its refused changes logged.
 *
 * @throws TlsFilesError when the files cannot be used at start-up.
 */
export function loggedCertificateFiles(settings: TlsSettings, logger: Logger): CertificateFiles {
  return new CertificateFiles(settings, {
    onReload: (subject) => logger.info({ subject }, 'TLS certificates reloaded'),
    onError: (err) => logger.error({ err: err.message }, 'changed TLS certificate files are not usable; the previous ones stay in use'),
  });
}

/**
 * This process's certificate, key and CA, loaded from their files, and loaded
 * again when they change (checked every `reloadMs`). A grpc-js
 * `CertificateProvider` for both identity and CA.
 *
 * @throws TlsFilesError from the constructor when the files cannot be used at start-up.
 */
export class CertificateFiles implements experimental.CertificateProvider {
  #current: Loaded;
  #timer: NodeJS.Timeout | undefined;
  readonly #ca = new Set<experimental.CaCertificateUpdateListener>();
  readonly #identity = new Set<experimental.IdentityCertificateUpdateListener>();

  constructor(
    readonly settings: TlsSettings,
    private readonly options: CertificateFilesOptions = {},
  ) {
    this.#current = load(settings);
    this.#timer = setInterval(() => this.check(), settings.reloadMs);
    this.#timer.unref();
  }

  /** The subject of the certificate in use (for logs). */
  get subject(): string {
    return new X509Certificate(this.#current.cert).subject.replace(/\n/g, ', ');
  }

  /** The PEM of the CA bundle in use. */
  get ca(): Buffer {
    return this.#current.ca;
  }

  /** Loads the files again if they changed since the last load; returns whether new ones were applied. */
  check(): boolean {
    let stamp: string;
    try {
      stamp = stampOf([this.settings.certFile, this.settings.keyFile, this.settings.caFile]);
    } catch {
      return false; // mid-rotation (a file briefly absent): try again next time
    }
    if (stamp === this.#current.stamp) return false;
    let next: Loaded;
    try {
      next = load(this.settings);
    } catch (err) {
      this.options.onError?.(err as TlsFilesError);
      return false;
    }
    const changed = !next.cert.equals(this.#current.cert) || !next.key.equals(this.#current.key) || !next.ca.equals(this.#current.ca);
    this.#current = next;
    if (!changed) return false;
    for (const l of this.#ca) l({ caCertificate: next.ca });
    for (const l of this.#identity) l({ certificate: next.cert, privateKey: next.key });
    this.options.onReload?.(this.subject);
    return true;
  }

  addCaCertificateListener(listener: experimental.CaCertificateUpdateListener): void {
    this.#ca.add(listener);
    // On the next tick, as grpc-js expects: its server credentials add their own watcher after this returns.
    process.nextTick(() => {
      if (this.#ca.has(listener)) listener({ caCertificate: this.#current.ca });
    });
  }

  removeCaCertificateListener(listener: experimental.CaCertificateUpdateListener): void {
    this.#ca.delete(listener);
  }

  addIdentityCertificateListener(listener: experimental.IdentityCertificateUpdateListener): void {
    this.#identity.add(listener);
    process.nextTick(() => {
      if (this.#identity.has(listener)) listener({ certificate: this.#current.cert, privateKey: this.#current.key });
    });
  }

  removeIdentityCertificateListener(listener: experimental.IdentityCertificateUpdateListener): void {
    this.#identity.delete(listener);
  }

  /** Stops checking the files. */
  close(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
  }
}

/**
 * Server credentials from `files`: TLS with this process's certificate; a
 * client certificate is requested and verified against the CA when sent, but
 * not required (see the module comment), unless `requireClientCertificate`.
 */
export function serverCredentials(files: CertificateFiles, options: { requireClientCertificate?: boolean; interceptors?: grpc.ServerInterceptor[] } = {}): grpc.ServerCredentials {
  const base = experimental.createCertificateProviderServerCredentials(files, files, options.requireClientCertificate ?? false);
  return options.interceptors?.length ? experimental.createServerCredentialsWithInterceptors(base, options.interceptors) : base;
}

/**
 * Channel credentials from `files`: the server is verified against the CA
 * (and its certificate must name the host dialled), and this process's own
 * certificate is presented as its client identity (mutual TLS).
 */
export function channelCredentials(files: CertificateFiles): grpc.ChannelCredentials {
  return experimental.createCertificateProviderChannelCredentials(files, files);
}

/**
 * Credentials of a client that trusts `ca` (PEM): with `cert` and `key` also
 * given it presents them (mutual TLS). For `src/client` and the CLI.
 */
export function clientCredentials(files: { caFile: string; certFile?: string; keyFile?: string }): grpc.ChannelCredentials {
  const ca = readFileSync(files.caFile);
  if ((files.certFile === undefined) !== (files.keyFile === undefined)) throw new TlsFilesError('a client certificate needs both its file and its key file');
  return grpc.credentials.createSsl(ca, files.keyFile ? readFileSync(files.keyFile) : null, files.certFile ? readFileSync(files.certFile) : null);
}

/**
 * The identities of a call's peer certificate, verified against the server's
 * CA: its DNS and URI subject alternative names and its common name. Empty
 * when the connection is plaintext, or the peer sent no certificate, or one
 * that does not verify.
 */
export function peerIdentities(call: { getAuthContext(): { sslPeerCertificate?: PeerCertificate | undefined } | null }): string[] {
  const cert = call.getAuthContext()?.sslPeerCertificate;
  return cert ? certificateIdentities(cert) : [];
}

/** DNS and URI SANs and the CN of a certificate as Node's TLS reports it. */
export function certificateIdentities(cert: Pick<PeerCertificate, 'subject' | 'subjectaltname'>): string[] {
  const out: string[] = [];
  for (const part of (cert.subjectaltname ?? '').split(/,\s*/)) {
    const m = /^(DNS|URI):(.+)$/.exec(part);
    if (m) out.push(m[2]!);
  }
  const cn = cert.subject?.CN;
  if (typeof cn === 'string') out.push(cn);
  else if (Array.isArray(cn)) out.push(...cn);
  return out;
}

/**
 * A server interceptor that lets a call to a `shardwrite.internal.*` service
 * through only when the peer's verified certificate names one of `allowed`;
 * other services pass untouched. Without a verified certificate:
 * UNAUTHENTICATED; with one that names no allowed identity: PERMISSION_DENIED.
 */
export function internalServicesGuard(allowed: ReadonlySet<string>, onRefused?: (path: string, identities: string[]) => void): grpc.ServerInterceptor {
  return (method, call) => {
    if (!method.path.startsWith(INTERNAL_SERVICE_PREFIX)) return new grpc.ServerInterceptingCall(call);
    return new grpc.ServerInterceptingCall(call, {
      start: (next) => {
        const identities = peerIdentities(call);
        const ok = identities.some((id) => allowed.has(id));
        if (ok) {
          next();
          return;
        }
        onRefused?.(method.path, identities);
        next({
          onReceiveMetadata: () => {
            call.sendStatus(
              identities.length === 0
                ? { code: grpc.status.UNAUTHENTICATED, details: 'this service needs a client certificate from the cluster CA' }
                : { code: grpc.status.PERMISSION_DENIED, details: 'this client certificate may not call internal services' },
            );
          },
        });
      },
    });
  };
}
