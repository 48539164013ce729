/**
 * Secure by default: the one place that decides whether a serving process
 * may start, and says so loudly when it starts insecure.
 *
 * A process starts only with an authentication method configured
 * (AUTH_TOKENS, AUTH_JWKS_FILE or AUTH_JWKS_URL), unless SHARDWRITE_INSECURE=true.
 * The transport (TLS) requirement plugs in at {@link transportProblems}.
 */
import type { Logger } from '../observability/logger.js';
import type { AuthSettings } from './settings.js';

export type SecurityMode = 'secure' | 'insecure';

/** The setting that allows starting without authentication. */
export const INSECURE_ENV = 'SHARDWRITE_INSECURE';

/** Whether an authentication method is configured. */
export function authConfigured(settings: Pick<AuthSettings, 'tokens' | 'jwt'>): boolean {
  return settings.tokens !== undefined || settings.jwt !== undefined;
}

/**
 * HOOK for the transport-security work: the problems that keep a process
 * with this configuration from starting securely for want of TLS
 * (TLS_CERT_FILE / TLS_KEY_FILE / TLS_CA_FILE). None yet: TLS is not part of
 * this gate until that work extends it here.
 */
export function transportProblems(_settings: Pick<AuthSettings, 'insecure'>): string[] {
  return [];
}

/** Why this configuration may not start; empty when it may. */
export function securityProblems(settings: Pick<AuthSettings, 'insecure' | 'tokens' | 'jwt'>): string[] {
  if (settings.insecure) return [];
  const problems = authConfigured(settings)
    ? []
    : [`no authentication method is configured: set AUTH_TOKENS, AUTH_JWKS_FILE or AUTH_JWKS_URL, or choose insecure mode explicitly with ${INSECURE_ENV}=true`];
  return [...problems, ...transportProblems(settings)];
}

/**
 * The mode a process runs in, logged: a warning on every insecure start.
 * Call after the configuration was validated (`securityProblems` empty).
 */
export function announceSecurityMode(settings: Pick<AuthSettings, 'insecure' | 'tokens' | 'jwt'>, logger: Logger, what: string): SecurityMode {
  if (!settings.insecure) return 'secure';
  logger.warn(
    { insecure: true, authentication: authConfigured(settings) ? 'on' : 'off' },
    `INSECURE MODE (${INSECURE_ENV}=true): ${what} ${authConfigured(settings) ? 'authenticates callers but ' : 'accepts every caller as anonymous with every permission, and '}runs without the secure-by-default checks. Never run this way outside a trusted development machine.`,
  );
  return 'insecure';
}
