/**
 * What the NATS store (@xenops/store-nats), the gateway and the clients share about NATS, without
 * depending on nats.js: the connection recipe takes the nats.js module as an argument.
 */
export { outboundWindowOf, OutboundWindow } from './outbound-window.js';
export { connectNatsWith, type NatsClientModule, type NatsSecurityOptions } from './nats-connection.js';
export { NatsAuthenticationError, NatsUnreachableError } from './nats-errors.js';
