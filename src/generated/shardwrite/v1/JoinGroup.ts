// Original file: proto/shardwrite/v1/subscriptions.proto


export interface JoinGroup {
  /**
   * [A-Za-z0-9._-]{1,100}.
   */
  'group'?: (string);
  /**
   * A name for logs and metrics (optional; need not be unique).
   */
  'member'?: (string);
  /**
   * The group's filters. The first join of a group fixes them (and its
   * partition count); a later join with other filters is FAILED_PRECONDITION.
   */
  'aggregateTypes'?: (string)[];
  'eventTypes'?: (string)[];
  /**
   * Where a new group starts: "" = the beginning, "end" = what commits from
   * its creation on. Ignored once the group exists.
   */
  'startFrom'?: (string);
  /**
   * Events delivered to this member and not yet acknowledged before the
   * server waits for acks (default 256, at most 10,000).
   */
  'maxUnacked'?: (number);
  /**
   * Partitions of a new group (default 16, 1..1024). Ignored once it exists.
   */
  'partitions'?: (number);
}

export interface JoinGroup__Output {
  /**
   * [A-Za-z0-9._-]{1,100}.
   */
  'group': (string);
  /**
   * A name for logs and metrics (optional; need not be unique).
   */
  'member': (string);
  /**
   * The group's filters. The first join of a group fixes them (and its
   * partition count); a later join with other filters is FAILED_PRECONDITION.
   */
  'aggregateTypes': (string)[];
  'eventTypes': (string)[];
  /**
   * Where a new group starts: "" = the beginning, "end" = what commits from
   * its creation on. Ignored once the group exists.
   */
  'startFrom': (string);
  /**
   * Events delivered to this member and not yet acknowledged before the
   * server waits for acks (default 256, at most 10,000).
   */
  'maxUnacked': (number);
  /**
   * Partitions of a new group (default 16, 1..1024). Ignored once it exists.
   */
  'partitions': (number);
}
