// Original file: proto/shardwrite/internal/v1/shard_feed.proto


export interface Barrier {
  'originShard'?: (string);
  'originPosition'?: (string);
}

export interface Barrier__Output {
  'originShard': (string);
  'originPosition': (string);
}
