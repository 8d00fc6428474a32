/**
 * Where a migration goes (API.md §7.8): `xenops_url` resolved to a host of the cluster.
 * `xenops://<host-id>`; an `http(s)://` URL whose host name is a host id, or whose `host:port` is
 * an address a host advertises; a `unix:` or `file:` URL naming a host's socket. In embedded mode
 * only this host resolves.
 */
import type { HostRecord } from '@xenops/core';
import { hostRecords, type HostView } from './host-records.js';

export async function resolveDestination(view: HostView & { readonly hostId: string; readonly mode: string }, url: string): Promise<string | undefined> {
  const hosts = await hostRecords(view);
  const found = matchHost(hosts, url);
  if (found === undefined) return undefined;
  return view.mode === 'embedded' && found !== view.hostId ? undefined : found;
}

/** The host `url` names among `hosts`, by the rules above. */
export function matchHost(hosts: readonly HostRecord[], url: string): string | undefined {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return undefined;
  }
  const byId = (id: string) => hosts.find((h) => h.id === id)?.id;
  const byAddress = (address: string) => hosts.find((h) => h.addresses.includes(address))?.id;
  switch (u.protocol) {
    case 'xenops:': {
      // A non-special scheme: the host name keeps its case; `xenops:h1` (no slashes) names it too.
      const name = u.host !== '' ? u.host : u.pathname.replace(/^\/+/, '');
      return name === '' ? undefined : byId(decodeURIComponent(name));
    }
    case 'http:':
    case 'https:': {
      const hostname = u.hostname.replace(/^\[|\]$/g, '');
      const port = u.port !== '' ? u.port : u.protocol === 'https:' ? '443' : '80';
      return byId(hostname) ?? byAddress(`${hostname}:${port}`) ?? byAddress(`${u.hostname}:${port}`);
    }
    case 'unix:':
    case 'file:':
      return u.pathname === '' ? undefined : byAddress(`unix:${decodeURIComponent(u.pathname)}`);
    default:
      return undefined;
  }
}
