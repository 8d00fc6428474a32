/** Options every command accepts (before or after the command name). */
import type { OptionSpec } from './command.js';

export const GLOBAL_OPTIONS: Record<string, OptionSpec> = {
  url: { type: 'string', value: 'URL', description: 'xenopsd over HTTP (env XENOPS_URL; default http://127.0.0.1:8440)' },
  socket: { type: 'string', value: 'PATH', description: 'xenopsd over its Unix socket (env XENOPS_SOCKET), e.g. ~/.local/state/xenops-ts/xenopsd.sock' },
  nats: { type: 'string', value: 'URL', description: 'JSON-RPC over NATS request/reply, e.g. nats://127.0.0.1:4222' },
  'nats-subject': { type: 'string', value: 'SUBJ', description: 'NATS subject (env XENOPS_NATS_SUBJECT; default org.xen.xapi.xenops.classic)' },
  'nats-creds': { type: 'string', value: 'FILE', description: 'NATS credentials file (user JWT and seed), as xenopsd --nats-creds' },
  'nats-nkey': { type: 'string', value: 'FILE', description: 'NATS user nkey seed file, as xenopsd --nats-nkey' },
  'nats-tls-ca': { type: 'string', value: 'FILE', description: 'CA certificate of a TLS NATS server' },
  'nats-tls-cert': { type: 'string', value: 'FILE', description: 'TLS client certificate for NATS (with --nats-tls-key)' },
  'nats-tls-key': { type: 'string', value: 'FILE', description: 'private key of --nats-tls-cert' },
  'token-file': { type: 'string', value: 'PATH', description: 'bearer token for HTTP on TCP: first line of PATH (env XENOPS_TOKEN_FILE)' },
  json: { type: 'boolean', description: 'machine-readable JSON on standard output' },
  'no-wait': { type: 'boolean', description: 'for operations: print the task id at once instead of waiting' },
  'no-color': { type: 'boolean', description: 'no colour (also: env NO_COLOR, or output not a terminal)' },
  help: { type: 'boolean', short: 'h', description: 'help (for a command: xenops COMMAND --help)' },
  version: { type: 'boolean', description: 'print the version of xenops' },
};
