// Original file: proto/shardwrite/v1/ring.proto


export interface WatchRingRequest {
}

export interface WatchRingRequest__Output {
}
