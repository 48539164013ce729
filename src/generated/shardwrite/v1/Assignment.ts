// Original file: proto/shardwrite/v1/subscriptions.proto


export interface Assignment {
  /**
   * This member's unique id in the group.
   */
  'memberId'?: (string);
  'partitions'?: (number)[];
  'partitionCount'?: (number);
}

export interface Assignment__Output {
  /**
   * This member's unique id in the group.
   */
  'memberId': (string);
  'partitions': (number)[];
  'partitionCount': (number);
}
