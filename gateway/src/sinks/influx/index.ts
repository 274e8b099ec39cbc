export { InfluxWriter } from './writer.js';
export type { LineTransport, WriteResponse } from './transport.js';
export { classify, serverMessage, type Verdict } from './verdict.js';
