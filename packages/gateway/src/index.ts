export { Gateway, type FoldedGateway, type GatewayOptions, type GatewayStores } from './service/gateway.js';
export { isLoopbackAddress } from './http/server.js';
export { DEFAULT_LIMITS, MAX_HEADER_BYTES, type GatewayLimits, type LimitUsage } from './limits/limits.js';
export { Projection } from './read-model/projection.js';
export { appendLatencyHistogram, type MetricFamily } from './metrics/gateway-metrics.js';
export { createDispatcher, METHOD_COUNTS, type CallRecord } from './dispatch/dispatcher.js';
export * from './rpc/xmlrpc.js';
export { handleRpcBody } from './rpc/handler.js';
export { CLASSIC_QUEUE, GATEWAY_QUEUE_GROUP } from './nats-rpc/nats-rpc.js';
export { CHANGE_SUBJECT_ROOT } from './changes/records.js';
export { REFRESH_STREAM } from './updates/updates-service.js';
// The method tables (§5) live in core; the fuzz suite takes its method lists from here.
export { xenopsdMethodList as xenopsdMethods, seedMethodList as seedMethods } from '@xenops/core';
export type { AnyMethodDeclaration as MethodSpec, AnyArgDeclaration as ArgSpec } from '@xenops/core';
export { PLACEMENT_POLICIES, type PlacementPolicy } from './hosts/placement.js';
export { DEFAULT_HOST_DOWN_AFTER_MS } from './hosts/host-records.js';
