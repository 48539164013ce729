/**
 * Secure by default: the one place that decides whether a serving process
 * may start, and says so loudly when it starts insecure.
 *
 * A process starts only with transport security (TLS_CERT_FILE, TLS_KEY_FILE
 * and TLS_CA_FILE) and an authentication method (AUTH_TOKENS, AUTH_JWKS_FILE
 * or AUTH_JWKS_URL) configured, unless SHARDWRITE_INSECURE=true.
 */
import type { Logger } from '../observability/logger.js';
import type { AuthSettings } from './settings.js';

export type SecurityMode = 'secure' | 'insecure';

/** The setting that allows starting without authentication. */
export const INSECURE_ENV = 'SHARDWRITE_INSECURE';

/** Whether an authentication method is configured. */
export function authConfigured(settings: Pick<AuthSettings, 'tokens' | 'jwt'> & { clientCerts?: AuthSettings['clientCerts'] }): boolean {
  return settings.tokens !== undefined || settings.jwt !== undefined || settings.clientCerts !== undefined;
}

/** Why this configuration may not start; empty when it may. `tls`: whether TLS_* are configured. */
export function securityProblems(settings: Pick<AuthSettings, 'insecure' | 'tokens' | 'jwt'> & { clientCerts?: AuthSettings['clientCerts'] }, tls: boolean): string[] {
  if (settings.insecure) return [];
  const problems: string[] = [];
  if (!tls) problems.push(`no transport security is configured: set TLS_CERT_FILE, TLS_KEY_FILE and TLS_CA_FILE, or choose insecure mode explicitly with ${INSECURE_ENV}=true`);
  if (!authConfigured(settings)) {
    problems.push(`no authentication method is configured: set AUTH_TOKENS, AUTH_JWKS_FILE, AUTH_JWKS_URL or AUTH_CLIENT_CERTS, or choose insecure mode explicitly with ${INSECURE_ENV}=true`);
  }
  return problems;
}

/**
 * The mode a process runs in, logged: a warning on every insecure start.
 * Call after the configuration was validated (`securityProblems` empty).
 */
export function announceSecurityMode(
  settings: Pick<AuthSettings, 'insecure' | 'tokens' | 'jwt'> & { clientCerts?: AuthSettings['clientCerts'] },
  tls: boolean,
  logger: Logger,
  what: string,
): SecurityMode {
  if (!settings.insecure) return 'secure';
  const auth = authConfigured(settings);
  logger.warn(
    { insecure: true, authentication: auth ? 'on' : 'off', tls: tls ? 'on' : 'off' },
    `INSECURE MODE (${INSECURE_ENV}=true): ${what} ${tls ? 'uses TLS' : 'talks plaintext'} and ${auth ? 'authenticates callers' : 'accepts every caller as anonymous with every permission'}, without the secure-by-default checks. Never run this way outside a trusted development machine.`,
  );
  return 'insecure';
}
