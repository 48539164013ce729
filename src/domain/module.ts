/**
 * How a domain plugs into the service: its deciders, and how each RPC of its
 * gRPC service becomes a command on one aggregate. The pipeline, the shard's
 * gRPC server and the router know nothing else about a domain, so adding an
 * aggregate type touches its own folder, its proto messages and the one
 * registration line in `src/domain/index.ts`.
 */
import type { AnyDecider, Message } from './decider.js';

/** A validated command, addressed to one stream. */
export interface RoutedCommand {
  readonly aggregateType: string;
  readonly aggregateId: string;
  /** Idempotency key (invariant I4); absent when the caller sent none. */
  readonly commandId?: string;
  /** The stream version the caller requires (invariant I7); absent = any. */
  readonly expectedVersion?: number;
  readonly command: Message;
}

export interface CommandSpec {
  /** The RPC method name within the module's service, e.g. `PlaceOrder`. */
  readonly method: string;
  readonly aggregateType: string;
  /**
   * Validates a decoded request (a proto-loader object: strings for int64,
   * defaults filled in) and turns it into a command. Pure. Throws
   * `ValidationError` listing every violated field rule.
   */
  toCommand(request: unknown): RoutedCommand;
}

export interface DomainModule {
  /** Fully qualified gRPC service that carries the commands, e.g. `shardwrite.v1.OrderService`. */
  readonly service: string;
  readonly deciders: readonly AnyDecider[];
  readonly commands: readonly CommandSpec[];
}
