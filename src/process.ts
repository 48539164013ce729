/**
 * The V8 flags a service process (router, shard, relay, pm worker) is started
 * with: by the image's ENTRYPOINT, by `npm start`, and by the tests and
 * benchmarks. `--max-semi-space-size=32` gives the young generation up to
 * 2 × 32 MiB instead of Node 20's 2 × 16 MiB, so the short-lived objects of a
 * command (and, traced, its spans) die in fewer, cheaper scavenges. Measured
 * with `npm run bench -- tracing` in turns with and without it (three runs
 * each): with tracing at 100 %, the router spends 7 µs more CPU per command
 * than with tracing off instead of 20; with tracing off, no difference beyond
 * noise. It costs memory: in the router-flood fault test the router peaked at
 * 274 MiB instead of 202 (its Kubernetes limit is 512 MiB), and a shard
 * reading a 200,000-event stream at 218 MiB instead of 200.
 */
export const SERVICE_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=32'];

/**
 * Process lifecycle shared by the entry points: run until SIGTERM or SIGINT,
 * then stop gracefully once; a second signal exits at once.
 */
export function runUntilSignal(stop: () => Promise<void>): Promise<void> {
  return new Promise((resolve) => {
    let stopping = false;
    const onSignal = (signal: NodeJS.Signals) => {
      if (stopping) process.exit(130);
      stopping = true;
      console.log(`${signal}: stopping`);
      stop().then(
        () => resolve(),
        (err: unknown) => {
          console.error('stop failed', err);
          process.exitCode = 1;
          resolve();
        },
      );
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
  });
}

/**
 * What a start-up has opened so far, so that a start-up failing halfway
 * releases it (`startOrRelease`): pools, connections, listening servers,
 * watchers. Released last first, each once; a failure to close one does not
 * keep the others open.
 */
export class Opened {
  #closers: (() => unknown)[] = [];

  /** Remembers how to close `resource`; returns it. */
  add<T>(resource: T, close: (resource: T) => unknown): T {
    this.#closers.push(() => close(resource));
    return resource;
  }

  /** Closes everything added, last first; returns what failed to close. */
  async release(): Promise<unknown[]> {
    const failures: unknown[] = [];
    for (const close of this.#closers.splice(0).reverse()) {
      try {
        await close();
      } catch (err) {
        failures.push(err);
      }
    }
    return failures;
  }
}

/**
 * Runs a start-up with an `Opened` to record what it opens. When it throws,
 * everything recorded is released before its error is rethrown, so a process
 * that fails to start holds no port, connection or timer (and a test that
 * starts one again can); `onReleaseError` hears of what failed to close.
 */
export async function startOrRelease<T>(start: (opened: Opened) => Promise<T>, onReleaseError: (err: unknown) => void): Promise<T> {
  const opened = new Opened();
  try {
    return await start(opened);
  } catch (err) {
    for (const failure of await opened.release()) onReleaseError(failure);
    throw err;
  }
}
