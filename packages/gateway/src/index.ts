export { Gateway, type FoldedGateway, type GatewayOptions, type GatewayStores } from './service/gateway.js';
export { isLoopbackAddress } from './http/server.js';
export { DEFAULT_LIMITS, MAX_HEADER_BYTES, type GatewayLimits, type LimitUsage } from './limits/limits.js';
export { Projection } from './read-model/projection.js';
export { createDispatcher, METHOD_COUNTS, type CallRecord } from './dispatch/dispatcher.js';
export * from './rpc/xmlrpc.js';
export { handleRpcBody } from './rpc/handler.js';
export { CLASSIC_QUEUE, GATEWAY_QUEUE_GROUP } from './nats-rpc/nats-rpc.js';
export { CHANGE_SUBJECT_ROOT } from './changes/records.js';
export { REFRESH_STREAM } from './updates/updates-service.js';
// The method tables (§5): tools and the fuzz suite derive their method lists from these.
export { xenopsdMethods } from './methods/xenopsd.js';
export { seedMethods } from './methods/seed.js';
export type { MethodSpec } from './methods/method.js';
export type { ArgSpec } from './dispatch/args.js';
