/** Errors are values with a stable code and whether retrying can help. */
export type GatewayErrorCode =
  | 'GW_ERR_CONFIG'
  | 'GW_ERR_INFLUX_RETRYABLE'
  | 'GW_ERR_INFLUX_REJECTED'
  | 'GW_ERR_OUTBOX_FULL'
  | 'GW_ERR_MQTT'
  | 'GW_ERR_INTERNAL';

export class GatewayError extends Error {
  constructor(
    readonly code: GatewayErrorCode,
    message: string,
    readonly retryable = false,
    readonly retryAfterMs?: number,
  ) {
    super(message);
    this.name = 'GatewayError';
  }
}
