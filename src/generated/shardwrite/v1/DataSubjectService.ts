// Original file: proto/shardwrite/v1/data_subjects.proto

import type * as grpc from '@grpc/grpc-js'
import type { MethodDefinition } from '@grpc/proto-loader'
import type { DataSubjectResult as _shardwrite_v1_DataSubjectResult, DataSubjectResult__Output as _shardwrite_v1_DataSubjectResult__Output } from '../../shardwrite/v1/DataSubjectResult.js';
import type { EraseSubjectRequest as _shardwrite_v1_EraseSubjectRequest, EraseSubjectRequest__Output as _shardwrite_v1_EraseSubjectRequest__Output } from '../../shardwrite/v1/EraseSubjectRequest.js';
import type { ReenableSubjectRequest as _shardwrite_v1_ReenableSubjectRequest, ReenableSubjectRequest__Output as _shardwrite_v1_ReenableSubjectRequest__Output } from '../../shardwrite/v1/ReenableSubjectRequest.js';

/**
 * Data subjects (crypto-shredding). Personal fields of events (an order's
 * customer e-mail and shipping address) are stored encrypted with their
 * subject's own data key. Admin only (the `admin` scope, or `*`).
 */
export interface DataSubjectServiceClient extends grpc.Client {
  /**
   * Destroys the subject's data key everywhere (its personal fields then read
   * as "[erased]" in every store, on every shard), drops every cached copy of
   * the key, records `SubjectErased` on the stream `data-subject-<subject_id>`
   * (subscribers delete their copies on it), and from then on refuses
   * commands that would record new personal data of the subject
   * (FAILED_PRECONDITION / BUSINESS_RULE) until it is re-enabled.
   * Idempotent: erasing an erased subject changes nothing (`changed` false);
   * an erasure that was interrupted is finished by calling it again.
   */
  EraseSubject(argument: _shardwrite_v1_EraseSubjectRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_shardwrite_v1_DataSubjectResult__Output>): grpc.ClientUnaryCall;
  EraseSubject(argument: _shardwrite_v1_EraseSubjectRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_shardwrite_v1_DataSubjectResult__Output>): grpc.ClientUnaryCall;
  EraseSubject(argument: _shardwrite_v1_EraseSubjectRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_shardwrite_v1_DataSubjectResult__Output>): grpc.ClientUnaryCall;
  EraseSubject(argument: _shardwrite_v1_EraseSubjectRequest, callback: grpc.requestCallback<_shardwrite_v1_DataSubjectResult__Output>): grpc.ClientUnaryCall;
  /**
   * Destroys the subject's data key everywhere (its personal fields then read
   * as "[erased]" in every store, on every shard), drops every cached copy of
   * the key, records `SubjectErased` on the stream `data-subject-<subject_id>`
   * (subscribers delete their copies on it), and from then on refuses
   * commands that would record new personal data of the subject
   * (FAILED_PRECONDITION / BUSINESS_RULE) until it is re-enabled.
   * Idempotent: erasing an erased subject changes nothing (`changed` false);
   * an erasure that was interrupted is finished by calling it again.
   */
  eraseSubject(argument: _shardwrite_v1_EraseSubjectRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_shardwrite_v1_DataSubjectResult__Output>): grpc.ClientUnaryCall;
  eraseSubject(argument: _shardwrite_v1_EraseSubjectRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_shardwrite_v1_DataSubjectResult__Output>): grpc.ClientUnaryCall;
  eraseSubject(argument: _shardwrite_v1_EraseSubjectRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_shardwrite_v1_DataSubjectResult__Output>): grpc.ClientUnaryCall;
  eraseSubject(argument: _shardwrite_v1_EraseSubjectRequest, callback: grpc.requestCallback<_shardwrite_v1_DataSubjectResult__Output>): grpc.ClientUnaryCall;
  
  /**
   * Gives an erased subject a new data key (what was erased stays erased) and
   * records `SubjectReenabled`; its personal data may be recorded again.
   * Re-enabling a subject that is not erased changes nothing.
   */
  ReenableSubject(argument: _shardwrite_v1_ReenableSubjectRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_shardwrite_v1_DataSubjectResult__Output>): grpc.ClientUnaryCall;
  ReenableSubject(argument: _shardwrite_v1_ReenableSubjectRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_shardwrite_v1_DataSubjectResult__Output>): grpc.ClientUnaryCall;
  ReenableSubject(argument: _shardwrite_v1_ReenableSubjectRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_shardwrite_v1_DataSubjectResult__Output>): grpc.ClientUnaryCall;
  ReenableSubject(argument: _shardwrite_v1_ReenableSubjectRequest, callback: grpc.requestCallback<_shardwrite_v1_DataSubjectResult__Output>): grpc.ClientUnaryCall;
  /**
   * Gives an erased subject a new data key (what was erased stays erased) and
   * records `SubjectReenabled`; its personal data may be recorded again.
   * Re-enabling a subject that is not erased changes nothing.
   */
  reenableSubject(argument: _shardwrite_v1_ReenableSubjectRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_shardwrite_v1_DataSubjectResult__Output>): grpc.ClientUnaryCall;
  reenableSubject(argument: _shardwrite_v1_ReenableSubjectRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_shardwrite_v1_DataSubjectResult__Output>): grpc.ClientUnaryCall;
  reenableSubject(argument: _shardwrite_v1_ReenableSubjectRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_shardwrite_v1_DataSubjectResult__Output>): grpc.ClientUnaryCall;
  reenableSubject(argument: _shardwrite_v1_ReenableSubjectRequest, callback: grpc.requestCallback<_shardwrite_v1_DataSubjectResult__Output>): grpc.ClientUnaryCall;
  
}

/**
 * Data subjects (crypto-shredding). Personal fields of events (an order's
 * customer e-mail and shipping address) are stored encrypted with their
 * subject's own data key. Admin only (the `admin` scope, or `*`).
 */
export interface DataSubjectServiceHandlers extends grpc.UntypedServiceImplementation {
  /**
   * Destroys the subject's data key everywhere (its personal fields then read
   * as "[erased]" in every store, on every shard), drops every cached copy of
   * the key, records `SubjectErased` on the stream `data-subject-<subject_id>`
   * (subscribers delete their copies on it), and from then on refuses
   * commands that would record new personal data of the subject
   * (FAILED_PRECONDITION / BUSINESS_RULE) until it is re-enabled.
   * Idempotent: erasing an erased subject changes nothing (`changed` false);
   * an erasure that was interrupted is finished by calling it again.
   */
  EraseSubject: grpc.handleUnaryCall<_shardwrite_v1_EraseSubjectRequest__Output, _shardwrite_v1_DataSubjectResult>;
  
  /**
   * Gives an erased subject a new data key (what was erased stays erased) and
   * records `SubjectReenabled`; its personal data may be recorded again.
   * Re-enabling a subject that is not erased changes nothing.
   */
  ReenableSubject: grpc.handleUnaryCall<_shardwrite_v1_ReenableSubjectRequest__Output, _shardwrite_v1_DataSubjectResult>;
  
}

export interface DataSubjectServiceDefinition extends grpc.ServiceDefinition {
  EraseSubject: MethodDefinition<_shardwrite_v1_EraseSubjectRequest, _shardwrite_v1_DataSubjectResult, _shardwrite_v1_EraseSubjectRequest__Output, _shardwrite_v1_DataSubjectResult__Output>
  ReenableSubject: MethodDefinition<_shardwrite_v1_ReenableSubjectRequest, _shardwrite_v1_DataSubjectResult, _shardwrite_v1_ReenableSubjectRequest__Output, _shardwrite_v1_DataSubjectResult__Output>
}
