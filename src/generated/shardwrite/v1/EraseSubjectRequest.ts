// Original file: proto/shardwrite/v1/data_subjects.proto


export interface EraseSubjectRequest {
  /**
   * The data subject: for orders, the customer id (1..128 characters from [A-Za-z0-9._:-]).
   */
  'subjectId'?: (string);
}

export interface EraseSubjectRequest__Output {
  /**
   * The data subject: for orders, the customer id (1..128 characters from [A-Za-z0-9._:-]).
   */
  'subjectId': (string);
}
