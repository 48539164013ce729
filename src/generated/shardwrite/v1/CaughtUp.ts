// Original file: proto/shardwrite/v1/subscriptions.proto


export interface CaughtUp {
}

export interface CaughtUp__Output {
}
