/**
 * `shardwrite pm …`: process-manager instances.
 *
 *   pm list [--failed] [--json]   instances and their status (from `pm_instances`,
 *                                 kept by the worker); --failed = parked only
 *   pm retry <instance>           resumes a parked instance: `pm-<name>-<id>`
 *                                 (as `pm list` prints it)
 *
 * The instance table is read from PM_DATABASE_URL, else RING_DATABASE_URL,
 * else the ring database `npm start` recorded in `.data/cluster.json`;
 * `retry` sends RetryProcess through the router at PM_SOURCE (default the
 * router in `.data/cluster.json`, else 127.0.0.1:50051).
 */
import { randomUUID } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { CommandFailedError, createClient } from '../src/client/index.js';
import { instanceAggregateType, processManagers } from '../src/process-managers/index.js';
import { PgPmStore } from '../pm-worker/store.js';
import { CLUSTER_FILE, type Output } from './ring.js';

export const PM_USAGE = `  pm list [--failed] [--json]   process-manager instances (--failed: parked ones)
  pm retry <instance>           resume a parked instance (pm-<name>-<id>, as pm list prints it)`;

function clusterFile(): { ringDatabaseUrl?: string; router?: { address?: string } } {
  const file = resolve(CLUSTER_FILE);
  if (!existsSync(file)) return {};
  return JSON.parse(readFileSync(file, 'utf8')) as { ringDatabaseUrl?: string; router?: { address?: string } };
}

/** Splits `pm-<name>-<id>` into a registered process manager and an instance id. */
export function parseInstance(text: string): { name: string; instanceId: string } | undefined {
  for (const d of processManagers) {
    const prefix = `${instanceAggregateType(d.name)}-`;
    if (text.startsWith(prefix) && text.length > prefix.length) return { name: d.name, instanceId: text.slice(prefix.length) };
  }
  return undefined;
}

export async function pmCommand(args: readonly string[], env: NodeJS.ProcessEnv, out: Output): Promise<number> {
  const [sub, ...rest] = args;
  const usage = () => {
    out.error(`usage:\n${PM_USAGE}`);
    return 2;
  };
  if (sub === 'list') {
    const failed = rest.includes('--failed');
    const json = rest.includes('--json');
    if (rest.some((a) => a !== '--failed' && a !== '--json')) return usage();
    const url = env.PM_DATABASE_URL || env.RING_DATABASE_URL || clusterFile().ringDatabaseUrl;
    if (!url) {
      out.error(`no database: set PM_DATABASE_URL or RING_DATABASE_URL, or run \`npm start\` (which writes ${CLUSTER_FILE})`);
      return 2;
    }
    const store = new PgPmStore({ connectionString: url, max: 1 });
    try {
      await store.migrate();
      const rows = await store.list(failed ? { status: 'parked' } : {});
      if (json) {
        for (const r of rows) out.line(JSON.stringify(r));
      } else {
        for (const r of rows) {
          out.line(`${r.streamId}  ${r.status}  v${r.version}  ${r.updatedAt.toISOString()}${r.reason ? `  ${r.reason}` : ''}`);
        }
        out.line(`${rows.length} instance${rows.length === 1 ? '' : 's'}${failed ? ' parked' : ''}`);
      }
      return 0;
    } finally {
      await store.close();
    }
  }
  if (sub === 'retry') {
    if (rest.length !== 1) return usage();
    const target = parseInstance(rest[0]!);
    if (!target) {
      out.error(`${rest[0]} is not an instance of ${processManagers.map((d) => instanceAggregateType(d.name)).join(', ')}`);
      return 2;
    }
    const address = env.PM_SOURCE || clusterFile().router?.address || '127.0.0.1:50051';
    const token = env.PM_TOKEN || env.SHARDWRITE_TOKEN;
    const client = createClient(address, token ? { metadata: { authorization: `Bearer ${token}` } } : {});
    try {
      const result = await client.retryProcess({ processManager: target.name, instanceId: target.instanceId, commandId: `pm-retry-${randomUUID()}` }, { timeoutMs: 10_000 });
      out.line(`${result.streamId} resumed at version ${result.version}: its step is sent again, then its queued inputs`);
      return 0;
    } catch (err) {
      out.error(err instanceof CommandFailedError ? `refused: ${err.message}` : String(err));
      return 1;
    } finally {
      client.close();
    }
  }
  return usage();
}
