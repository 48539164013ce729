import { pino, type Logger } from 'pino';

export type { Logger };

/** JSON logs on stdout (pino); `level` from the process config. */
export function createLogger(name: string, level = 'info'): Logger {
  return pino({ name, level, base: { name, pid: process.pid } });
}
