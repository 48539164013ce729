// Original file: proto/shardwrite/v1/subscriptions.proto


export interface FellBehind {
}

export interface FellBehind__Output {
}
