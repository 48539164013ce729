/**
 * Credentials in PostgreSQL connection URLs: stripped before a URL is stored
 * or shown, and added back from a process's own configuration when it
 * connects. A URL that does not parse is returned as it is by `withCredentials`
 * and replaced by a placeholder by `redactDatabaseUrl`, never echoed.
 */

/** Query parameters of a connection URL that carry secrets. */
const SECRET_PARAMS = ['password', 'sslpassword'];

/**
 * `url` without its password (userinfo or `password=` parameter): what may be
 * written to a table or a log. The user name, host, database and TLS settings stay.
 *
 * @throws TypeError when `url` is not a URL.
 */
export function withoutPassword(url: string): string {
  const u = new URL(url);
  u.password = '';
  for (const p of SECRET_PARAMS) u.searchParams.delete(p);
  return u.toString();
}

/** `url` for a log line or an error message: without its password, or `<invalid database URL>`. */
export function redactDatabaseUrl(url: string): string {
  try {
    return withoutPassword(url);
  } catch {
    return '<invalid database URL>';
  }
}

/** Credentials a process brings to a store whose URL it found elsewhere (the ring database). */
export interface StoreCredentials {
  /** Replaces the URL's user name. */
  readonly user?: string | undefined;
  /** Replaces the URL's password. */
  readonly password?: string | undefined;
}

/** `url` with `credentials` put in (what is not given stays as in the URL). */
export function withCredentials(url: string, credentials: StoreCredentials | undefined): string {
  if (!credentials || (credentials.user === undefined && credentials.password === undefined)) return url;
  const u = new URL(url);
  if (credentials.user !== undefined) u.username = encodeURIComponent(credentials.user);
  if (credentials.password !== undefined) u.password = encodeURIComponent(credentials.password);
  return u.toString();
}
