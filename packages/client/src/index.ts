/**
 * @xenops/client: a typed client of xenopsd built on core's method table (API.md §5), over HTTP
 * (TCP or the Unix socket) or NATS (§2.7).
 */
export { XenopsClient, XenopsCallError, type ClientOptions, type CallOptions } from './client.js';
export { waitForTask, XenopsTaskFailedError, type TaskOutcome, type TaskWaitOptions } from './wait-for-task.js';
export { XenopsAuthError, XenopsConnectionError, XenopsProtocolError, type ConnectionProblem } from './errors.js';
export { HttpTransport, type HttpTarget } from './transport/http.js';
export { NatsTransport, type NatsTarget } from './transport/nats.js';
export type { Transport } from './transport/transport.js';
export { connectNats, type NatsConnection } from './nats/connect.js';
// The method table and the types of its arguments and results, and the service's error.
export { xenopsdMethods, XenopsError, type CallArgsOf, type ResultOf, type XenopsdMethodName, type XenopsdMethods } from '@xenops/core';
