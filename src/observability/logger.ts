import { pino, type DestinationStream, type Logger } from 'pino';
import { activeTraceFields } from './tracing.js';

export type { Logger };

/**
 * JSON logs on stdout (pino; or `destination`); `level` from the process config. A line
 * written inside a traced command's context carries its `trace_id` and
 * `span_id`, so logs and traces join.
 */
export function createLogger(name: string, level = 'info', destination?: DestinationStream): Logger {
  const options = { name, level, base: { name, pid: process.pid }, mixin: activeTraceFields };
  return destination ? pino(options, destination) : pino(options);
}
