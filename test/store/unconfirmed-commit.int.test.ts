/**
 * A commit whose wait for the synchronous standby is cancelled is reported
 * as an unknown outcome (retryable with its command id), never as success.
 * The server is a test's own, configured with a standby that never comes.
 */
import pg from 'pg';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { StoreUnavailableError } from '../../src/errors.js';
import { GroupCommitWriter, migrate } from '../../src/store/index.js';
import { startOwnPostgres, type OwnPostgres } from '../support/postgres-process.js';

let server: OwnPostgres;

beforeAll(async () => {
  server = await startOwnPostgres();
  await migrate(server.url);
  const admin = new pg.Client({ connectionString: server.url });
  await admin.connect();
  await admin.query(`ALTER SYSTEM SET synchronous_standby_names = 'standby_that_never_comes'`);
  await admin.query('SELECT pg_reload_conf()');
  await admin.end();
}, 120_000);

afterAll(async () => {
  await server?.stop();
});

it('rejects an append whose commit the synchronous standby never confirmed with STORE_UNAVAILABLE, though it committed locally', async () => {
  const writer = new GroupCommitWriter({ connectionString: server.url, epoch: () => 0, statementTimeoutMs: 10_000 });
  const admin = new pg.Client({ connectionString: server.url });
  await admin.connect();
  try {
    const append = writer.append({
      streamId: 'order-header-sync',
      aggregateType: 'order-header',
      aggregateId: 'sync',
      baseVersion: 0,
      events: [{ type: 'OrderPlaced', schemaVersion: 1, data: { n: 1 }, metadata: { command_id: 'c-sync' } }],
      commands: [{ commandId: 'c-sync', eventCount: 1 }],
    });
    const outcome = append.then(
      () => undefined,
      (e: unknown) => e,
    );
    // The commit waits for the standby; an operator (or a failover tool) cancels the wait.
    for (let i = 0; ; i++) {
      const waiting = await admin.query(`SELECT pid FROM pg_stat_activity WHERE wait_event = 'SyncRep'`);
      if (waiting.rows.length > 0) {
        await admin.query('SELECT pg_cancel_backend($1)', [waiting.rows[0].pid]);
        break;
      }
      if (i === 200) throw new Error('the commit never waited for the standby');
      await new Promise((r) => setTimeout(r, 25));
    }
    const err = await outcome;
    expect(err).toBeInstanceOf(StoreUnavailableError);
    expect((err as Error).message).toMatch(/not confirmed by the synchronous standby/);
    // The outcome really is unknown to the caller: the row is there, so a retry with the same command id must answer duplicate.
    const r = await admin.query(`SELECT count(*)::int AS n FROM command_results WHERE command_id = 'c-sync'`);
    expect(r.rows[0].n).toBe(1);
  } finally {
    await admin.end();
    await writer.close();
  }
}, 60_000);
