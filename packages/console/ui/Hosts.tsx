import { useEffect, useState } from 'preact/hooks';
import { call, RpcError } from './api.js';
import { mib } from './format.js';
import { useConsole } from './state.js';

interface HostRecord {
  readonly id: string;
  readonly state: string;
  readonly backend?: string;
  readonly cpus?: number;
  readonly memory_total?: number;
  readonly memory_free?: number;
  readonly running?: number;
  readonly vms?: readonly string[];
}

/**
 * The cluster's hosts and their load (`HOST.list`, API.md §9.7). A service without it (before
 * hosts exist) is one host: the VMs the page knows, by the host that wrote their last change.
 */
export function Hosts() {
  const s = useConsole();
  const [hosts, setHosts] = useState<readonly HostRecord[] | undefined>();
  const [note, setNote] = useState('');
  useEffect(() => {
    call<HostRecord[]>('HOST.list')
      .then(setHosts)
      .catch((e: unknown) => {
        setNote(e instanceof RpcError && e.message.startsWith('Unimplemented') ? 'HOST.list is not available on this service: hosts as the VMs show them.' : (e as Error).message);
        setHosts(undefined);
      });
  }, [s.revision > 0]);
  const derived: HostRecord[] = [...new Set([...s.vms.values()].map((v) => v.host ?? 'this host'))].map((id) => {
    const vms = [...s.vms.values()].filter((v) => (v.host ?? 'this host') === id);
    return { id, state: 'Up', running: vms.filter((v) => v.state.power_state === 'Running').length, vms: vms.map((v) => v.config.id) };
  });
  const shown = hosts ?? derived;
  return (
    <section class="hosts">
      {note && <p class="note">{note}</p>}
      <table>
        <thead>
          <tr>
            <th>Host</th>
            <th>State</th>
            <th>Backend</th>
            <th>CPUs</th>
            <th>Memory free / total</th>
            <th>VMs</th>
            <th>Running</th>
          </tr>
        </thead>
        <tbody>
          {shown.map((h) => (
            <tr key={h.id} data-host={h.id}>
              <td>{h.id}</td>
              <td class={`host-state ${h.state.toLowerCase()}`}>{h.state}</td>
              <td>{h.backend ?? '—'}</td>
              <td>{h.cpus ?? '—'}</td>
              <td>{h.memory_total !== undefined ? `${mib(h.memory_free ?? 0)} / ${mib(h.memory_total)}` : '—'}</td>
              <td>{h.vms?.length ?? 0}</td>
              <td>{h.running ?? 0}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}
