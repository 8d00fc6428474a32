/** @xenops/client: what a program needs to talk to xenopsd (the typed client comes with issue 12 item 5). */
export { connectNats, type NatsConnection } from './nats/connect.js';
