import type * as grpc from '@grpc/grpc-js';
import type { EnumTypeDefinition, MessageTypeDefinition } from '@grpc/proto-loader';

import type { DescriptorProto as _google_protobuf_DescriptorProto, DescriptorProto__Output as _google_protobuf_DescriptorProto__Output } from './google/protobuf/DescriptorProto.js';
import type { EnumDescriptorProto as _google_protobuf_EnumDescriptorProto, EnumDescriptorProto__Output as _google_protobuf_EnumDescriptorProto__Output } from './google/protobuf/EnumDescriptorProto.js';
import type { EnumOptions as _google_protobuf_EnumOptions, EnumOptions__Output as _google_protobuf_EnumOptions__Output } from './google/protobuf/EnumOptions.js';
import type { EnumValueDescriptorProto as _google_protobuf_EnumValueDescriptorProto, EnumValueDescriptorProto__Output as _google_protobuf_EnumValueDescriptorProto__Output } from './google/protobuf/EnumValueDescriptorProto.js';
import type { EnumValueOptions as _google_protobuf_EnumValueOptions, EnumValueOptions__Output as _google_protobuf_EnumValueOptions__Output } from './google/protobuf/EnumValueOptions.js';
import type { ExtensionRangeOptions as _google_protobuf_ExtensionRangeOptions, ExtensionRangeOptions__Output as _google_protobuf_ExtensionRangeOptions__Output } from './google/protobuf/ExtensionRangeOptions.js';
import type { FeatureSet as _google_protobuf_FeatureSet, FeatureSet__Output as _google_protobuf_FeatureSet__Output } from './google/protobuf/FeatureSet.js';
import type { FeatureSetDefaults as _google_protobuf_FeatureSetDefaults, FeatureSetDefaults__Output as _google_protobuf_FeatureSetDefaults__Output } from './google/protobuf/FeatureSetDefaults.js';
import type { FieldDescriptorProto as _google_protobuf_FieldDescriptorProto, FieldDescriptorProto__Output as _google_protobuf_FieldDescriptorProto__Output } from './google/protobuf/FieldDescriptorProto.js';
import type { FieldOptions as _google_protobuf_FieldOptions, FieldOptions__Output as _google_protobuf_FieldOptions__Output } from './google/protobuf/FieldOptions.js';
import type { FileDescriptorProto as _google_protobuf_FileDescriptorProto, FileDescriptorProto__Output as _google_protobuf_FileDescriptorProto__Output } from './google/protobuf/FileDescriptorProto.js';
import type { FileDescriptorSet as _google_protobuf_FileDescriptorSet, FileDescriptorSet__Output as _google_protobuf_FileDescriptorSet__Output } from './google/protobuf/FileDescriptorSet.js';
import type { FileOptions as _google_protobuf_FileOptions, FileOptions__Output as _google_protobuf_FileOptions__Output } from './google/protobuf/FileOptions.js';
import type { GeneratedCodeInfo as _google_protobuf_GeneratedCodeInfo, GeneratedCodeInfo__Output as _google_protobuf_GeneratedCodeInfo__Output } from './google/protobuf/GeneratedCodeInfo.js';
import type { MessageOptions as _google_protobuf_MessageOptions, MessageOptions__Output as _google_protobuf_MessageOptions__Output } from './google/protobuf/MessageOptions.js';
import type { MethodDescriptorProto as _google_protobuf_MethodDescriptorProto, MethodDescriptorProto__Output as _google_protobuf_MethodDescriptorProto__Output } from './google/protobuf/MethodDescriptorProto.js';
import type { MethodOptions as _google_protobuf_MethodOptions, MethodOptions__Output as _google_protobuf_MethodOptions__Output } from './google/protobuf/MethodOptions.js';
import type { OneofDescriptorProto as _google_protobuf_OneofDescriptorProto, OneofDescriptorProto__Output as _google_protobuf_OneofDescriptorProto__Output } from './google/protobuf/OneofDescriptorProto.js';
import type { OneofOptions as _google_protobuf_OneofOptions, OneofOptions__Output as _google_protobuf_OneofOptions__Output } from './google/protobuf/OneofOptions.js';
import type { ServiceDescriptorProto as _google_protobuf_ServiceDescriptorProto, ServiceDescriptorProto__Output as _google_protobuf_ServiceDescriptorProto__Output } from './google/protobuf/ServiceDescriptorProto.js';
import type { ServiceOptions as _google_protobuf_ServiceOptions, ServiceOptions__Output as _google_protobuf_ServiceOptions__Output } from './google/protobuf/ServiceOptions.js';
import type { SourceCodeInfo as _google_protobuf_SourceCodeInfo, SourceCodeInfo__Output as _google_protobuf_SourceCodeInfo__Output } from './google/protobuf/SourceCodeInfo.js';
import type { Timestamp as _google_protobuf_Timestamp, Timestamp__Output as _google_protobuf_Timestamp__Output } from './google/protobuf/Timestamp.js';
import type { UninterpretedOption as _google_protobuf_UninterpretedOption, UninterpretedOption__Output as _google_protobuf_UninterpretedOption__Output } from './google/protobuf/UninterpretedOption.js';
import type { AddOrderLineRequest as _shardwrite_v1_AddOrderLineRequest, AddOrderLineRequest__Output as _shardwrite_v1_AddOrderLineRequest__Output } from './shardwrite/v1/AddOrderLineRequest.js';
import type { AddOrderLinesRequest as _shardwrite_v1_AddOrderLinesRequest, AddOrderLinesRequest__Output as _shardwrite_v1_AddOrderLinesRequest__Output } from './shardwrite/v1/AddOrderLinesRequest.js';
import type { Address as _shardwrite_v1_Address, Address__Output as _shardwrite_v1_Address__Output } from './shardwrite/v1/Address.js';
import type { AuthorizePaymentRequest as _shardwrite_v1_AuthorizePaymentRequest, AuthorizePaymentRequest__Output as _shardwrite_v1_AuthorizePaymentRequest__Output } from './shardwrite/v1/AuthorizePaymentRequest.js';
import type { CancelOrderRequest as _shardwrite_v1_CancelOrderRequest, CancelOrderRequest__Output as _shardwrite_v1_CancelOrderRequest__Output } from './shardwrite/v1/CancelOrderRequest.js';
import type { CapturePaymentRequest as _shardwrite_v1_CapturePaymentRequest, CapturePaymentRequest__Output as _shardwrite_v1_CapturePaymentRequest__Output } from './shardwrite/v1/CapturePaymentRequest.js';
import type { CommandResult as _shardwrite_v1_CommandResult, CommandResult__Output as _shardwrite_v1_CommandResult__Output } from './shardwrite/v1/CommandResult.js';
import type { Event as _shardwrite_v1_Event, Event__Output as _shardwrite_v1_Event__Output } from './shardwrite/v1/Event.js';
import type { EventStoreServiceClient as _shardwrite_v1_EventStoreServiceClient, EventStoreServiceDefinition as _shardwrite_v1_EventStoreServiceDefinition } from './shardwrite/v1/EventStoreService.js';
import type { InventoryServiceClient as _shardwrite_v1_InventoryServiceClient, InventoryServiceDefinition as _shardwrite_v1_InventoryServiceDefinition } from './shardwrite/v1/InventoryService.js';
import type { MarkPaymentCapturedRequest as _shardwrite_v1_MarkPaymentCapturedRequest, MarkPaymentCapturedRequest__Output as _shardwrite_v1_MarkPaymentCapturedRequest__Output } from './shardwrite/v1/MarkPaymentCapturedRequest.js';
import type { NewOrderLine as _shardwrite_v1_NewOrderLine, NewOrderLine__Output as _shardwrite_v1_NewOrderLine__Output } from './shardwrite/v1/NewOrderLine.js';
import type { OrderServiceClient as _shardwrite_v1_OrderServiceClient, OrderServiceDefinition as _shardwrite_v1_OrderServiceDefinition } from './shardwrite/v1/OrderService.js';
import type { PlaceOrderRequest as _shardwrite_v1_PlaceOrderRequest, PlaceOrderRequest__Output as _shardwrite_v1_PlaceOrderRequest__Output } from './shardwrite/v1/PlaceOrderRequest.js';
import type { ReadStreamRequest as _shardwrite_v1_ReadStreamRequest, ReadStreamRequest__Output as _shardwrite_v1_ReadStreamRequest__Output } from './shardwrite/v1/ReadStreamRequest.js';
import type { ReceiveStockRequest as _shardwrite_v1_ReceiveStockRequest, ReceiveStockRequest__Output as _shardwrite_v1_ReceiveStockRequest__Output } from './shardwrite/v1/ReceiveStockRequest.js';
import type { RefundPaymentRequest as _shardwrite_v1_RefundPaymentRequest, RefundPaymentRequest__Output as _shardwrite_v1_RefundPaymentRequest__Output } from './shardwrite/v1/RefundPaymentRequest.js';
import type { ReleaseReservationRequest as _shardwrite_v1_ReleaseReservationRequest, ReleaseReservationRequest__Output as _shardwrite_v1_ReleaseReservationRequest__Output } from './shardwrite/v1/ReleaseReservationRequest.js';
import type { RemoveOrderLineRequest as _shardwrite_v1_RemoveOrderLineRequest, RemoveOrderLineRequest__Output as _shardwrite_v1_RemoveOrderLineRequest__Output } from './shardwrite/v1/RemoveOrderLineRequest.js';
import type { ReserveStockRequest as _shardwrite_v1_ReserveStockRequest, ReserveStockRequest__Output as _shardwrite_v1_ReserveStockRequest__Output } from './shardwrite/v1/ReserveStockRequest.js';
import type { ShipOrderRequest as _shardwrite_v1_ShipOrderRequest, ShipOrderRequest__Output as _shardwrite_v1_ShipOrderRequest__Output } from './shardwrite/v1/ShipOrderRequest.js';
import type { UpdateShippingAddressRequest as _shardwrite_v1_UpdateShippingAddressRequest, UpdateShippingAddressRequest__Output as _shardwrite_v1_UpdateShippingAddressRequest__Output } from './shardwrite/v1/UpdateShippingAddressRequest.js';

type SubtypeConstructor<Constructor extends new (...args: any) => any, Subtype> = {
  new(...args: ConstructorParameters<Constructor>): Subtype;
};

export interface ProtoGrpcType {
  google: {
    protobuf: {
      DescriptorProto: MessageTypeDefinition<_google_protobuf_DescriptorProto, _google_protobuf_DescriptorProto__Output>
      Edition: EnumTypeDefinition
      EnumDescriptorProto: MessageTypeDefinition<_google_protobuf_EnumDescriptorProto, _google_protobuf_EnumDescriptorProto__Output>
      EnumOptions: MessageTypeDefinition<_google_protobuf_EnumOptions, _google_protobuf_EnumOptions__Output>
      EnumValueDescriptorProto: MessageTypeDefinition<_google_protobuf_EnumValueDescriptorProto, _google_protobuf_EnumValueDescriptorProto__Output>
      EnumValueOptions: MessageTypeDefinition<_google_protobuf_EnumValueOptions, _google_protobuf_EnumValueOptions__Output>
      ExtensionRangeOptions: MessageTypeDefinition<_google_protobuf_ExtensionRangeOptions, _google_protobuf_ExtensionRangeOptions__Output>
      FeatureSet: MessageTypeDefinition<_google_protobuf_FeatureSet, _google_protobuf_FeatureSet__Output>
      FeatureSetDefaults: MessageTypeDefinition<_google_protobuf_FeatureSetDefaults, _google_protobuf_FeatureSetDefaults__Output>
      FieldDescriptorProto: MessageTypeDefinition<_google_protobuf_FieldDescriptorProto, _google_protobuf_FieldDescriptorProto__Output>
      FieldOptions: MessageTypeDefinition<_google_protobuf_FieldOptions, _google_protobuf_FieldOptions__Output>
      FileDescriptorProto: MessageTypeDefinition<_google_protobuf_FileDescriptorProto, _google_protobuf_FileDescriptorProto__Output>
      FileDescriptorSet: MessageTypeDefinition<_google_protobuf_FileDescriptorSet, _google_protobuf_FileDescriptorSet__Output>
      FileOptions: MessageTypeDefinition<_google_protobuf_FileOptions, _google_protobuf_FileOptions__Output>
      GeneratedCodeInfo: MessageTypeDefinition<_google_protobuf_GeneratedCodeInfo, _google_protobuf_GeneratedCodeInfo__Output>
      MessageOptions: MessageTypeDefinition<_google_protobuf_MessageOptions, _google_protobuf_MessageOptions__Output>
      MethodDescriptorProto: MessageTypeDefinition<_google_protobuf_MethodDescriptorProto, _google_protobuf_MethodDescriptorProto__Output>
      MethodOptions: MessageTypeDefinition<_google_protobuf_MethodOptions, _google_protobuf_MethodOptions__Output>
      OneofDescriptorProto: MessageTypeDefinition<_google_protobuf_OneofDescriptorProto, _google_protobuf_OneofDescriptorProto__Output>
      OneofOptions: MessageTypeDefinition<_google_protobuf_OneofOptions, _google_protobuf_OneofOptions__Output>
      ServiceDescriptorProto: MessageTypeDefinition<_google_protobuf_ServiceDescriptorProto, _google_protobuf_ServiceDescriptorProto__Output>
      ServiceOptions: MessageTypeDefinition<_google_protobuf_ServiceOptions, _google_protobuf_ServiceOptions__Output>
      SourceCodeInfo: MessageTypeDefinition<_google_protobuf_SourceCodeInfo, _google_protobuf_SourceCodeInfo__Output>
      SymbolVisibility: EnumTypeDefinition
      Timestamp: MessageTypeDefinition<_google_protobuf_Timestamp, _google_protobuf_Timestamp__Output>
      UninterpretedOption: MessageTypeDefinition<_google_protobuf_UninterpretedOption, _google_protobuf_UninterpretedOption__Output>
    }
  }
  shardwrite: {
    v1: {
      AddOrderLineRequest: MessageTypeDefinition<_shardwrite_v1_AddOrderLineRequest, _shardwrite_v1_AddOrderLineRequest__Output>
      AddOrderLinesRequest: MessageTypeDefinition<_shardwrite_v1_AddOrderLinesRequest, _shardwrite_v1_AddOrderLinesRequest__Output>
      Address: MessageTypeDefinition<_shardwrite_v1_Address, _shardwrite_v1_Address__Output>
      AuthorizePaymentRequest: MessageTypeDefinition<_shardwrite_v1_AuthorizePaymentRequest, _shardwrite_v1_AuthorizePaymentRequest__Output>
      CancelOrderRequest: MessageTypeDefinition<_shardwrite_v1_CancelOrderRequest, _shardwrite_v1_CancelOrderRequest__Output>
      CapturePaymentRequest: MessageTypeDefinition<_shardwrite_v1_CapturePaymentRequest, _shardwrite_v1_CapturePaymentRequest__Output>
      CommandResult: MessageTypeDefinition<_shardwrite_v1_CommandResult, _shardwrite_v1_CommandResult__Output>
      Event: MessageTypeDefinition<_shardwrite_v1_Event, _shardwrite_v1_Event__Output>
      /**
       * Reads the events of one stream from the shard that owns it.
       */
      EventStoreService: SubtypeConstructor<typeof grpc.Client, _shardwrite_v1_EventStoreServiceClient> & { service: _shardwrite_v1_EventStoreServiceDefinition }
      /**
       * Commands on the stock of one SKU (aggregate `inventory`, stream
       * `inventory-<sku>`), on the shard that owns `sku`. The available quantity
       * (received minus reserved) never goes below zero: a reservation it would
       * cross is refused with FAILED_PRECONDITION / BUSINESS_RULE.
       * 
       * `command_id` and `expected_version` mean what they mean on OrderService.
       * Streamed on CommandStreamService in its `packed` member
       * (type_url "type.googleapis.com/shardwrite.v1.ReserveStockRequest", …).
       */
      InventoryService: SubtypeConstructor<typeof grpc.Client, _shardwrite_v1_InventoryServiceClient> & { service: _shardwrite_v1_InventoryServiceDefinition }
      MarkPaymentCapturedRequest: MessageTypeDefinition<_shardwrite_v1_MarkPaymentCapturedRequest, _shardwrite_v1_MarkPaymentCapturedRequest__Output>
      NewOrderLine: MessageTypeDefinition<_shardwrite_v1_NewOrderLine, _shardwrite_v1_NewOrderLine__Output>
      /**
       * Commands on an order. An order is three aggregates with their own streams
       * (`order-header`, `order-lines`, `order-payment`); all three live on the shard
       * that owns `order_id`.
       * 
       * Every request carries:
       * - `order_id`: the order (1..128 characters from [A-Za-z0-9._:-]);
       * - `command_id`: an optional idempotency key (at most 128 characters). A
       * repeat on the same stream returns the original result with
       * `duplicate = true` and appends nothing;
       * - `expected_version`: if set, the command runs only when the stream is at
       * exactly this version (0 = the stream does not exist yet); otherwise it
       * fails with ABORTED / VERSION_CONFLICT carrying the current version.
       * 
       * Errors carry a `google.rpc.Status` with a `google.rpc.ErrorInfo` (domain
       * `shardwrite.dev`) in the `grpc-status-details-bin` trailer.
       */
      OrderService: SubtypeConstructor<typeof grpc.Client, _shardwrite_v1_OrderServiceClient> & { service: _shardwrite_v1_OrderServiceDefinition }
      PlaceOrderRequest: MessageTypeDefinition<_shardwrite_v1_PlaceOrderRequest, _shardwrite_v1_PlaceOrderRequest__Output>
      ReadStreamRequest: MessageTypeDefinition<_shardwrite_v1_ReadStreamRequest, _shardwrite_v1_ReadStreamRequest__Output>
      ReceiveStockRequest: MessageTypeDefinition<_shardwrite_v1_ReceiveStockRequest, _shardwrite_v1_ReceiveStockRequest__Output>
      RefundPaymentRequest: MessageTypeDefinition<_shardwrite_v1_RefundPaymentRequest, _shardwrite_v1_RefundPaymentRequest__Output>
      ReleaseReservationRequest: MessageTypeDefinition<_shardwrite_v1_ReleaseReservationRequest, _shardwrite_v1_ReleaseReservationRequest__Output>
      RemoveOrderLineRequest: MessageTypeDefinition<_shardwrite_v1_RemoveOrderLineRequest, _shardwrite_v1_RemoveOrderLineRequest__Output>
      ReserveStockRequest: MessageTypeDefinition<_shardwrite_v1_ReserveStockRequest, _shardwrite_v1_ReserveStockRequest__Output>
      ShipOrderRequest: MessageTypeDefinition<_shardwrite_v1_ShipOrderRequest, _shardwrite_v1_ShipOrderRequest__Output>
      UpdateShippingAddressRequest: MessageTypeDefinition<_shardwrite_v1_UpdateShippingAddressRequest, _shardwrite_v1_UpdateShippingAddressRequest__Output>
    }
  }
}

