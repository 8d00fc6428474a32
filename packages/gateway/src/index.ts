export { Gateway, type GatewayOptions } from './service/gateway.js';
export { isLoopbackAddress } from './http/server.js';
export { DEFAULT_LIMITS, MAX_HEADER_BYTES, type GatewayLimits, type LimitUsage } from './limits/limits.js';
export { Projection } from './read-model/projection.js';
export { createDispatcher, METHOD_COUNTS, type CallRecord } from './dispatch/dispatcher.js';
export * from './rpc/xmlrpc.js';
export { handleRpcBody } from './rpc/handler.js';
