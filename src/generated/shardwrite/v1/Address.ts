// Original file: proto/shardwrite/v1/orders.proto


export interface Address {
  'name'?: (string);
  'line1'?: (string);
  'city'?: (string);
  'postalCode'?: (string);
  /**
   * ISO 3166-1 alpha-2 country code, e.g. "DE".
   */
  'country'?: (string);
}

export interface Address__Output {
  'name': (string);
  'line1': (string);
  'city': (string);
  'postalCode': (string);
  /**
   * ISO 3166-1 alpha-2 country code, e.g. "DE".
   */
  'country': (string);
}
