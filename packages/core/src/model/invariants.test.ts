/**
 * The invariant monitor (issue 14 item 5): a VM never has two domains and never belongs to two
 * hosts. Each rule is broken once on purpose; a migration's own history passes.
 */
import { describe, expect, it } from 'vitest';
import type { EventBody, LogEvent } from '../events/event.js';
import { testDomainCreated, testVm } from '../testing/vms.js';
import { InvariantMonitor } from './invariants.js';

const audit = { dbg: 't', timeMs: 0, host: 'h', actor: 'a' };
const at = (seq: number, ...bodies: EventBody[]): LogEvent[] => bodies.map((body) => ({ seq, audit, body }));
const owner = (host: string, previousHost = '', migration?: { taskId: string; progress: number }): EventBody => ({
  type: 'VmOwnerChanged',
  vmId: 'v',
  host,
  previousHost,
  ...(migration ? { migration } : {}),
});

describe('InvariantMonitor', () => {
  it('a migration\u2019s history is clean: domain on h1, destroyed, switch-over to h2, domain on h2', () => {
    const m = new InvariantMonitor();
    m.observe(at(1, owner('h1'), testDomainCreated('v', 'h1', 1)));
    m.observe(at(2, { type: 'DomainDestroyed', vmId: 'v' }, owner('h2', 'h1', { taskId: '5', progress: 0.5 })));
    m.observe(at(3, testDomainCreated('v', 'h2', 1)));
    expect(m.violations).toEqual([]);
  });

  it('a second domain while the first lives is two-domains; a switch-over that leaves the domain behind is two-hosts', () => {
    const m = new InvariantMonitor();
    m.observe(at(1, owner('h1'), testDomainCreated('v', 'h1', 1)));
    m.observe(at(2, testDomainCreated('v', 'h1', 2)));
    m.observe(at(3, owner('h2', 'h1')));
    expect(m.violations.map((v) => [v.seq, v.rule])).toEqual([
      [2, 'two-domains'],
      [3, 'two-hosts'],
    ]);
  });

  it('a domain created on a host the VM does not belong to is two-hosts; the state of a snapshot counts', () => {
    const m = new InvariantMonitor();
    m.seed([testVm('v', [owner('h1'), testDomainCreated('v', 'h1', 1)])]);
    m.observe(at(9, testDomainCreated('v', 'h3', 1)));
    expect(m.violations.map((v) => v.rule).sort()).toEqual(['two-domains', 'two-hosts']);
  });
});
