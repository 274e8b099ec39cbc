export { InfluxWriter } from './writer.js';
export type { LineTransport, WriteResponse } from './transport.js';
export {
  classify,
  parseRetryAfter,
  backoffMs,
  retryDelayMs,
  serverMessage,
  type Verdict,
} from './verdict.js';
