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

/** The loopback names are one address: a URL may say `localhost` where a host advertises 127.0.0.1. */
function aliasesOf(hostname: string): string[] {
  const loopback = ['localhost', '127.0.0.1', '::1'];
  return loopback.includes(hostname) ? loopback : [hostname];
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
      const byId_ = byId(hostname);
      if (byId_ !== undefined) return byId_;
      for (const name of aliasesOf(hostname)) {
        const found = byAddress(`${name}:${port}`) ?? byAddress(`[${name}]:${port}`);
        if (found !== undefined) return found;
      }
      // A host listening on every address answers on any of them: when only one host does so on
      // this port, a URL with that port names it.
      const wildcard = hosts.filter((h) => h.addresses.includes(`0.0.0.0:${port}`) || h.addresses.includes(`[::]:${port}`));
      return wildcard.length === 1 ? wildcard[0]!.id : undefined;
    }
    case 'unix:':
    case 'file:':
      return u.pathname === '' ? undefined : byAddress(`unix:${decodeURIComponent(u.pathname)}`);
    default:
      return undefined;
  }
}
