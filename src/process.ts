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
