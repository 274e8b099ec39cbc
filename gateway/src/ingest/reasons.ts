/** Why a message was rejected. Stable codes: they label metrics and the republished payload. */
export const REJECT_REASONS = [
  'topic_invalid',
  'id_invalid',
  'kind_unknown',
  'kind_mismatch',
  'payload_too_large',
  'payload_empty',
  'json_invalid',
  'payload_not_object',
  'values_not_object',
  'ts_invalid',
  'ts_future',
  'ts_too_old',
  'metric_name_invalid',
  'metric_reserved',
  'value_type',
  'value_not_finite',
  'value_out_of_range',
  'field_type_conflict',
  'too_many_fields',
  'no_values',
  'quality_invalid',
] as const;

export type RejectReason = (typeof REJECT_REASONS)[number];

export class Rejection {
  constructor(
    readonly reason: RejectReason,
    readonly detail: string,
  ) {}
}
