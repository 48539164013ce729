/**
 * How a client reaches the service: TLS that trusts a CA file (and, for
 * mutual TLS, presents a client certificate), or explicit credentials, or
 * plaintext when neither is given (insecure mode only).
 */
import * as grpc from '@grpc/grpc-js';
import { clientCredentials } from '../grpc/tls.js';

/** TLS files of a client (PEM). */
export interface TlsOptions {
  /** The CA that signed the server's certificate (`npm start -- --secure` writes `.data/tls/ca.crt`). */
  readonly caFile: string;
  /** A client certificate and its key, for mutual TLS (both or neither). */
  readonly certFile?: string;
  readonly keyFile?: string;
}

/** Credentials from a client's options: `credentials` wins, then `tls`, else plaintext. */
export function credentialsOf(options: { readonly credentials?: grpc.ChannelCredentials | undefined; readonly tls?: TlsOptions | undefined }): grpc.ChannelCredentials {
  if (options.credentials) return options.credentials;
  if (options.tls) return clientCredentials(options.tls);
  return grpc.credentials.createInsecure();
}
