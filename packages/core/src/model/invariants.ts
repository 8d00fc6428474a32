import type { LogEvent } from '../events/event.js';
import type { EventLog } from '../store/event-log.js';
import type { SnapshotStore } from '../store/snapshot-store.js';
import { foldBase } from './fold-base.js';
import { readMessage } from './log-damage.js';
import type { VmAggregate } from './vm-aggregate.js';

/**
 * What must never happen to a VM, whatever crashed when (ARCHITECTURE.md, issue 14 item 5): two
 * domains at once, or a domain left on one host while the VM belongs to another.
 */
export type InvariantRule = 'two-domains' | 'two-hosts';

export interface InvariantViolation {
  readonly seq: number;
  readonly vmId: string;
  readonly rule: InvariantRule;
  readonly detail: string;
}

/**
 * The invariant monitor: reads the log's events in order and records every message that breaks
 * a rule. It keeps, per VM, where its domain lives and who owns it, nothing else.
 */
export class InvariantMonitor {
  private readonly domains = new Map<string, string>();
  private readonly owners = new Map<string, string>();
  readonly violations: InvariantViolation[] = [];

  /** Starts from the VMs a snapshot holds (the log before it may be gone). */
  seed(vms: Iterable<VmAggregate>): void {
    for (const vm of vms) {
      if (vm.domain) this.domains.set(vm.id, vm.domain.host);
      if (vm.owner !== undefined) this.owners.set(vm.id, vm.owner);
    }
  }

  observe(events: readonly LogEvent[]): void {
    for (const { seq, body } of events) {
      switch (body.type) {
        case 'DomainCreated': {
          const existing = this.domains.get(body.vmId);
          if (existing !== undefined) this.violate(seq, body.vmId, 'two-domains', `a domain was created on host ${body.host} while its domain on host ${existing} still existed`);
          const owner = this.owners.get(body.vmId);
          if (owner !== undefined && owner !== body.host) this.violate(seq, body.vmId, 'two-hosts', `a domain was created on host ${body.host} but the VM belongs to host ${owner}`);
          this.domains.set(body.vmId, body.host);
          break;
        }
        case 'DomainDestroyed':
        case 'VmRemoved':
          this.domains.delete(body.vmId);
          break;
        case 'VmOwnerChanged': {
          const domainHost = this.domains.get(body.vmId);
          if (domainHost !== undefined && domainHost !== body.host) {
            this.violate(seq, body.vmId, 'two-hosts', `the VM passed to host ${body.host} while its domain on host ${domainHost} still existed`);
          }
          this.owners.set(body.vmId, body.host);
          break;
        }
        default:
          break;
      }
    }
  }

  private violate(seq: number, vmId: string, rule: InvariantRule, detail: string): void {
    this.violations.push({ seq, vmId, rule, detail });
  }
}

/** Reads the whole log (from the snapshot that covers what retention removed) through the monitor. */
export async function checkInvariants(log: EventLog, snapshots?: SnapshotStore, toSeq?: number): Promise<readonly InvariantViolation[]> {
  const base = await foldBase(log, snapshots, toSeq);
  const monitor = new InvariantMonitor();
  monitor.seed(base.vms.values());
  for await (const m of log.read(base.seq, toSeq)) {
    const read = readMessage(m);
    // Damaged messages are the replay's to report.
    if (read.events) monitor.observe(read.events);
  }
  return monitor.violations;
}
