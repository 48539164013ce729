// Original file: proto/shardwrite/v1/data_subjects.proto


export interface ReenableSubjectRequest {
  'subjectId'?: (string);
}

export interface ReenableSubjectRequest__Output {
  'subjectId': (string);
}
