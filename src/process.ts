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
