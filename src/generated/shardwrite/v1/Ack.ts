// Original file: proto/shardwrite/v1/subscriptions.proto


export interface Ack {
  /**
   * Each acknowledges that event and every event of the same partition
   * delivered to this member before it.
   */
  'ackIds'?: (string)[];
}

export interface Ack__Output {
  /**
   * Each acknowledges that event and every event of the same partition
   * delivered to this member before it.
   */
  'ackIds': (string)[];
}
