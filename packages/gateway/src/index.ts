export { Gateway, type GatewayOptions } from './service/gateway.js';
export { isLoopbackAddress } from './http/server.js';
export { Projection } from './read-model/projection.js';
export { createDispatcher, METHOD_COUNTS, type CallRecord } from './dispatch/dispatcher.js';
export * from './rpc/xmlrpc.js';
export { handleRpcBody } from './rpc/handler.js';
export { CLASSIC_QUEUE, GATEWAY_QUEUE_GROUP } from './nats-rpc/nats-rpc.js';
export { CHANGE_SUBJECT_ROOT } from './changes/records.js';
export { REFRESH_STREAM } from './updates/updates-service.js';
