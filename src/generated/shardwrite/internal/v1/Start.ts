// Original file: proto/shardwrite/internal/v1/shard_feed.proto


export interface Start {
  'after'?: (string);
  'copiedUpTo'?: ({[key: string]: string});
}

export interface Start__Output {
  'after': (string);
  'copiedUpTo': ({[key: string]: string});
}
