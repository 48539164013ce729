import { pino, type Logger } from 'pino';
import { activeTraceFields } from './tracing.js';

export type { Logger };

/**
 * JSON logs on stdout (pino); `level` from the process config. A line
 * written inside a traced command's context carries its `trace_id` and
 * `span_id`, so logs and traces join.
 */
export function createLogger(name: string, level = 'info'): Logger {
  return pino({ name, level, base: { name, pid: process.pid }, mixin: activeTraceFields });
}
