/**
 * The console's calls: JSON-RPC v1 over `fetch` to the gateway that served the page (API.md §2.1,
 * §2.4), with the bearer token when the gateway asks for one (§2.1: `--token-file`).
 */
import { describeError, type ErrorValue } from './wire.js';

const TOKEN_KEY = 'xenops-console-token';
const DBG = 'xenops-console';

/** The service refused a call: its error value, in its words. */
export class RpcError extends Error {
  override readonly name = 'RpcError';
  constructor(
    readonly method: string,
    readonly value: ErrorValue,
  ) {
    super(describeError(value));
  }
}

/** The gateway wants a token (401) and the page has none, or a wrong one. */
export class UnauthorizedError extends Error {
  override readonly name = 'UnauthorizedError';
  constructor() {
    super('the gateway needs a token (xenopsd --token-file)');
  }
}

export const token = {
  get: (): string | undefined => sessionStorage.getItem(TOKEN_KEY) ?? undefined,
  set: (t: string): void => sessionStorage.setItem(TOKEN_KEY, t),
  clear: (): void => sessionStorage.removeItem(TOKEN_KEY),
};

export function authHeaders(): Record<string, string> {
  const t = token.get();
  return t ? { authorization: `Bearer ${t}` } : {};
}

let nextId = 1;

/** Calls `method` with named arguments (xenopsd dialect); resolves with the result. */
export async function call<T>(method: string, args: Record<string, unknown> = {}): Promise<T> {
  const res = await fetch('/', {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...authHeaders() },
    body: JSON.stringify({ method, params: [{ debug_info: DBG, ...args }], id: nextId++ }),
  });
  if (res.status === 401) throw new UnauthorizedError();
  if (!res.ok) throw new Error(`${method}: HTTP ${res.status}`);
  const body = (await res.json()) as { result: T; error: ErrorValue | null };
  if (body.error !== null) throw new RpcError(method, body.error);
  return body.result;
}

/** `GET path` as JSON (or JSON lines), with the token. */
export async function getText(path: string): Promise<string> {
  const res = await fetch(path, { headers: authHeaders() });
  if (res.status === 401) throw new UnauthorizedError();
  if (!res.ok) throw new Error(`GET ${path}: HTTP ${res.status}`);
  return res.text();
}
