/**
 * What each role of the image (`shardwrite shard`, `shardwrite router`) reads
 * from its environment, straight from the config modules: the deployment
 * checks compare every manifest against these, never against a copy.
 */
import type { Env } from '../../../src/config.js';
import type { TlsSettings } from '../../../src/grpc/tls.js';
import { SHARD_ENV, loadShardConfig } from '../../../shard/config.js';
import { ROUTER_ENV, loadRouterConfig } from '../../../router/config.js';

export type Role = 'shard' | 'router';

/** The settings of a role that deployments must agree with. */
export interface RoleSettings {
  readonly grpcAddress: string;
  readonly metricsAddress: string | undefined;
  readonly shutdownGraceMs: number;
  readonly ringDatabaseUrl: string | undefined;
  readonly ringBootstrap: readonly { readonly id: string; readonly address: string }[] | undefined;
  /** Shard only. */
  readonly shardId?: string;
  readonly databaseUrl?: string;
  readonly redisUrl?: string | undefined;
  /** TLS_CERT_FILE, TLS_KEY_FILE, TLS_CA_FILE (undefined = plaintext). */
  readonly tls: TlsSettings | undefined;
  /** HEALTH_ADDRESS (undefined = off). */
  readonly healthAddress: string | undefined;
}

export interface RoleContract {
  /** Every variable the role's config module reads. */
  readonly env: readonly string[];
  /** The role's config module on `env`; throws its ConfigError when invalid. */
  load(env: Env): RoleSettings;
}

export const ROLES: Readonly<Record<Role, RoleContract>> = {
  shard: {
    env: SHARD_ENV,
    load(env) {
      const c = loadShardConfig(env);
      return {
        grpcAddress: c.grpcAddress,
        metricsAddress: c.metricsAddress,
        shutdownGraceMs: c.shutdownGraceMs,
        ringDatabaseUrl: c.ring.databaseUrl,
        ringBootstrap: c.ring.bootstrap?.shards,
        shardId: c.shardId,
        databaseUrl: c.databaseUrl,
        redisUrl: c.redisUrl,
        tls: c.tls,
        healthAddress: c.healthAddress,
      };
    },
  },
  router: {
    env: ROUTER_ENV,
    load(env) {
      const c = loadRouterConfig(env);
      return {
        grpcAddress: c.grpcAddress,
        metricsAddress: c.metricsAddress,
        shutdownGraceMs: c.shutdownGraceMs,
        ringDatabaseUrl: c.ring.databaseUrl,
        ringBootstrap: c.ring.bootstrap?.shards,
        tls: c.tls,
        healthAddress: c.healthAddress,
      };
    },
  },
};

export function isRole(value: unknown): value is Role {
  return value === 'shard' || value === 'router';
}

/** The port of `host:port`. */
export function portOf(address: string): number {
  return Number(address.slice(address.lastIndexOf(':') + 1));
}

/** The host of `host:port`. */
export function hostOf(address: string): string {
  return address.slice(0, address.lastIndexOf(':'));
}
