/**
 * A local certificate authority for `npm start -- --secure` and the tests:
 * ECDSA P-256 keys, certificates made with `@peculiar/x509` over Node's Web
 * Crypto (no `openssl` binary needed). Not for production: deployments get
 * their certificates from cert-manager or their own PKI.
 */
import 'reflect-metadata'; // @peculiar/x509's dependency injection needs it before it loads
import * as x509 from '@peculiar/x509';
import { X509Certificate, createPrivateKey, randomBytes, webcrypto } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

type CryptoKey = webcrypto.CryptoKey;
type CryptoKeyPair = webcrypto.CryptoKeyPair;

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

const ALGORITHM = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
const DAY_MS = 24 * 3600 * 1000;

/** A certificate and its private key, PEM. */
export interface PemPair {
  readonly cert: string;
  readonly key: string;
}

/** What a leaf certificate names. Its CN is `name`, which is also a SAN DNS entry. */
export interface LeafSpec {
  readonly name: string;
  readonly dns?: readonly string[];
  readonly ips?: readonly string[];
  readonly uris?: readonly string[];
  /** Validity in days from now; default 365. */
  readonly days?: number;
}

export class DevCa {
  private constructor(
    readonly pem: PemPair,
    private readonly cert: x509.X509Certificate,
    private readonly keys: CryptoKeyPair,
  ) {}

  /** A new self-signed CA named `name`. */
  static async create(name: string, days = 3650): Promise<DevCa> {
    const keys = await webcrypto.subtle.generateKey(ALGORITHM, true, ['sign', 'verify']);
    const cert = await x509.X509CertificateGenerator.createSelfSigned({
      serialNumber: serial(),
      name: `CN=${name}`,
      notBefore: new Date(Date.now() - 60_000),
      notAfter: new Date(Date.now() + days * DAY_MS),
      keys,
      signingAlgorithm: ALGORITHM,
      extensions: [
        new x509.BasicConstraintsExtension(true, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
        await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
      ],
    });
    return new DevCa({ cert: cert.toString('pem'), key: await keyPem(keys.privateKey) }, cert, keys);
  }

  /** The CA in `pem` (as written by an earlier run). */
  static async load(pem: PemPair): Promise<DevCa> {
    const cert = new x509.X509Certificate(pem.cert);
    const der = createPrivateKey(pem.key).export({ format: 'der', type: 'pkcs8' });
    const privateKey = await webcrypto.subtle.importKey('pkcs8', der, ALGORITHM, true, ['sign']);
    // @peculiar/x509 types it as the DOM's CryptoKey, which this project's libs (node, no DOM) do not declare.
    const publicKey = (await cert.publicKey.export(ALGORITHM, ['verify'])) as unknown as webcrypto.CryptoKey;
    return new DevCa(pem, cert, { privateKey, publicKey });
  }

  /** A leaf certificate for both server and client use (TLS server and client auth). */
  async issue(spec: LeafSpec): Promise<PemPair> {
    const keys = await webcrypto.subtle.generateKey(ALGORITHM, true, ['sign', 'verify']);
    const names: x509.JsonGeneralName[] = [
      ...[spec.name, ...(spec.dns ?? [])].map((value) => ({ type: 'dns' as const, value })),
      ...(spec.ips ?? []).map((value) => ({ type: 'ip' as const, value })),
      ...(spec.uris ?? []).map((value) => ({ type: 'url' as const, value })),
    ];
    const cert = await x509.X509CertificateGenerator.create({
      serialNumber: serial(),
      subject: `CN=${spec.name}`,
      issuer: this.cert.subject,
      notBefore: new Date(Date.now() - 60_000),
      notAfter: new Date(Date.now() + (spec.days ?? 365) * DAY_MS),
      publicKey: keys.publicKey,
      signingKey: this.keys.privateKey,
      signingAlgorithm: ALGORITHM,
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment, true),
        new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth]),
        new x509.SubjectAlternativeNameExtension(names),
        await x509.AuthorityKeyIdentifierExtension.create(this.cert),
      ],
    });
    return { cert: cert.toString('pem'), key: await keyPem(keys.privateKey) };
  }
}

function serial(): string {
  // Positive (top bit clear), 16 bytes.
  const b = randomBytes(16);
  b[0] = b[0]! & 0x7f;
  return b.toString('hex');
}

async function keyPem(key: CryptoKey): Promise<string> {
  const der = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', key));
  return createPrivateKey({ key: der, format: 'der', type: 'pkcs8' }).export({ format: 'pem', type: 'pkcs8' }).toString();
}

/** Paths of one identity's files under a certificate directory. */
export interface CertFiles {
  readonly certFile: string;
  readonly keyFile: string;
  readonly caFile: string;
}

/**
 * Makes sure `dir` holds a CA (`ca.crt`, `ca.key`) and, for each spec,
 * `<name>.crt` and `<name>.key` signed by it: files already there are reused
 * while they are valid for at least another day and signed by that CA.
 * Keys are written readable by the owner only.
 */
export async function ensureDevCertificates(dir: string, specs: readonly LeafSpec[], caName = 'shardwrite dev CA'): Promise<Record<string, CertFiles>> {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const caFile = join(dir, 'ca.crt');
  const caKey = join(dir, 'ca.key');
  let ca: DevCa;
  if (existsSync(caFile) && existsSync(caKey) && stillValid(readFileSync(caFile, 'utf8'))) {
    ca = await DevCa.load({ cert: readFileSync(caFile, 'utf8'), key: readFileSync(caKey, 'utf8') });
  } else {
    ca = await DevCa.create(caName);
    writeFileSync(caKey, ca.pem.key, { mode: 0o600 });
    writeFileSync(caFile, ca.pem.cert);
  }
  const caCert = new X509Certificate(ca.pem.cert);
  const out: Record<string, CertFiles> = {};
  for (const spec of specs) {
    const certFile = join(dir, `${spec.name}.crt`);
    const keyFile = join(dir, `${spec.name}.key`);
    const reuse = existsSync(certFile) && existsSync(keyFile) && stillValid(readFileSync(certFile, 'utf8'), caCert);
    if (!reuse) {
      const pair = await ca.issue(spec);
      writeFileSync(keyFile, pair.key, { mode: 0o600 });
      writeFileSync(certFile, pair.cert);
    }
    out[spec.name] = { certFile, keyFile, caFile };
  }
  return out;
}

function stillValid(pem: string, issuer?: X509Certificate): boolean {
  try {
    const cert = new X509Certificate(pem);
    if (new Date(cert.validTo).getTime() < Date.now() + DAY_MS) return false;
    return issuer ? cert.checkIssued(issuer) && cert.verify(issuer.publicKey) : true;
  } catch {
    return false;
  }
}
