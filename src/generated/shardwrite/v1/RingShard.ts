// Original file: proto/shardwrite/v1/ring.proto


export interface RingShard {
  /**
   * The stable id that is hashed (`shard-0`, …), never the address.
   */
  'id'?: (string);
  /**
   * `host:port` where the shard serves its gRPC API (CommandStreamService,
   * RingService, health), with the same TLS as the router's peers.
   */
  'address'?: (string);
  /**
   * The shard's weight in the hashing (RING.md); 1 for every shard today.
   */
  'weight'?: (number);
}

export interface RingShard__Output {
  /**
   * The stable id that is hashed (`shard-0`, …), never the address.
   */
  'id': (string);
  /**
   * `host:port` where the shard serves its gRPC API (CommandStreamService,
   * RingService, health), with the same TLS as the router's peers.
   */
  'address': (string);
  /**
   * The shard's weight in the hashing (RING.md); 1 for every shard today.
   */
  'weight': (number);
}
