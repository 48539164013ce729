// Original file: proto/shardwrite/v1/process_managers.proto

import type { Long } from '@grpc/proto-loader';

/**
 * Records one input (an event of another stream, or a fired timeout) on the
 * instance, and, when the instance is free (started, no step in flight, not
 * parked), applies it and decides the next step (event StepDecided). An input
 * already recorded is refused (FAILED_PRECONDITION / BUSINESS_RULE).
 */
export interface RecordProcessInputRequest {
  'instanceId'?: (string);
  'commandId'?: (string);
  'expectedVersion'?: (number | string | Long);
  /**
   * The process manager's name, e.g. "order-fulfilment".
   */
  'processManager'?: (string);
  /**
   * The input's id: the source event's `event_id`, or `timeout:<id>`.
   */
  'inputId'?: (string);
  /**
   * The source event's type (`TimeoutFired` for a timeout) and its data as JSON.
   */
  'eventType'?: (string);
  'dataJson'?: (string);
  'sourceStreamId'?: (string);
  'sourceVersion'?: (number | string | Long);
  /**
   * The worker's settings for this process manager, as JSON (e.g. the payment
   * timeout); kept on the instance, read by its decisions.
   */
  'settingsJson'?: (string);
  '_expectedVersion'?: "expectedVersion";
}

/**
 * Records one input (an event of another stream, or a fired timeout) on the
 * instance, and, when the instance is free (started, no step in flight, not
 * parked), applies it and decides the next step (event StepDecided). An input
 * already recorded is refused (FAILED_PRECONDITION / BUSINESS_RULE).
 */
export interface RecordProcessInputRequest__Output {
  'instanceId': (string);
  'commandId': (string);
  'expectedVersion'?: (string);
  /**
   * The process manager's name, e.g. "order-fulfilment".
   */
  'processManager': (string);
  /**
   * The input's id: the source event's `event_id`, or `timeout:<id>`.
   */
  'inputId': (string);
  /**
   * The source event's type (`TimeoutFired` for a timeout) and its data as JSON.
   */
  'eventType': (string);
  'dataJson': (string);
  'sourceStreamId': (string);
  'sourceVersion': (string);
  /**
   * The worker's settings for this process manager, as JSON (e.g. the payment
   * timeout); kept on the instance, read by its decisions.
   */
  'settingsJson': (string);
  '_expectedVersion'?: "expectedVersion";
}
