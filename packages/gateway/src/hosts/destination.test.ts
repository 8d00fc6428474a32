/** Where `xenops_url` points (API.md §7.8): each form of URL, and what names no host. */
import type { HostRecord } from '@xenops/core';
import { describe, expect, it } from 'vitest';
import { matchHost } from './destination.js';

const host = (id: string, addresses: string[]): HostRecord => ({
  id,
  backend: 'simulator',
  version: '0.1.0',
  state: 'Up',
  started_at: 0,
  last_seen: 0,
  addresses,
  cpus: 0,
  memory_total: 0,
  memory_free: 0,
  vms: [],
  running: 0,
});
const hosts = [host('h1', ['127.0.0.1:8440', 'unix:/run/xenopsd/h1.sock']), host('H2', ['10.0.0.2:80']), host('h3', ['0.0.0.0:9000'])];

describe('matchHost', () => {
  it('xenops://<id> (the id keeps its case), xenops:<id>', () => {
    expect(matchHost(hosts, 'xenops://h1')).toBe('h1');
    expect(matchHost(hosts, 'xenops://H2')).toBe('H2');
    expect(matchHost(hosts, 'xenops:h1')).toBe('h1');
    expect(matchHost(hosts, 'xenops://nowhere')).toBeUndefined();
  });

  it('http(s): a host name that is a host id, or an advertised host:port (default ports, loopback names, a wildcard listener)', () => {
    expect(matchHost(hosts, 'http://h1/services/xenops')).toBe('h1');
    expect(matchHost(hosts, 'http://127.0.0.1:8440/')).toBe('h1');
    expect(matchHost(hosts, 'http://localhost:8440')).toBe('h1');
    expect(matchHost(hosts, 'http://10.0.0.2/')).toBe('H2');
    expect(matchHost(hosts, 'https://10.0.0.2/')).toBeUndefined();
    expect(matchHost(hosts, 'http://192.168.1.9:9000/')).toBe('h3');
    expect(matchHost(hosts, 'http://127.0.0.1:1/')).toBeUndefined();
  });

  it('unix: and file: URLs naming a host\u2019s socket; anything else names no host', () => {
    expect(matchHost(hosts, 'unix:/run/xenopsd/h1.sock')).toBe('h1');
    expect(matchHost(hosts, 'file:///run/xenopsd/h1.sock')).toBe('h1');
    expect(matchHost(hosts, 'unix:/run/other.sock')).toBeUndefined();
    for (const bad of ['', 'not a url', 'ftp://h1/', 'xenops://', 'http://']) expect(matchHost(hosts, bad), bad).toBeUndefined();
  });
});
