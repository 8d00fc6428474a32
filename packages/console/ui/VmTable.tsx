import { useMemo, useState } from 'preact/hooks';
import { ACTIONS, runAction } from './actions.js';
import { consolesOf, domidOf, mib } from './format.js';
import { useConsole, type VmEntry } from './state.js';

/** Row height in pixels: fixed, so the visible window is arithmetic (the table stays fast at 10,000 VMs). */
export const ROW_HEIGHT = 34;
/** Rows rendered above and below the visible ones. */
const OVERSCAN = 8;
const POWER_STATES = ['Running', 'Paused', 'Suspended', 'Halted'];

export function PowerState({ state }: { state: string }) {
  return <span class={`power ${state.toLowerCase()}`}>{state}</span>;
}

export function VmTable() {
  const s = useConsole();
  const [name, setName] = useState('');
  const [power, setPower] = useState('');
  const [host, setHost] = useState('');
  const [scrollTop, setScrollTop] = useState(0);
  const [viewport, setViewport] = useState(600);

  const rows = useMemo(() => {
    const needle = name.trim().toLowerCase();
    const out: VmEntry[] = [];
    for (const vm of s.vms.values()) {
      if (needle && !vm.config.name.toLowerCase().includes(needle) && !vm.config.id.startsWith(needle)) continue;
      if (power && vm.state.power_state !== power) continue;
      if (host && vm.host !== host) continue;
      out.push(vm);
    }
    return out.sort((a, b) => a.config.name.localeCompare(b.config.name) || a.config.id.localeCompare(b.config.id));
  }, [s.revision, name, power, host]);
  const hosts = useMemo(() => [...new Set([...s.vms.values()].map((v) => v.host).filter((h): h is string => !!h))].sort(), [s.revision]);

  const first = Math.max(0, Math.floor(scrollTop / ROW_HEIGHT) - OVERSCAN);
  const last = Math.min(rows.length, Math.ceil((scrollTop + viewport) / ROW_HEIGHT) + OVERSCAN);

  return (
    <section class="vms">
      <div class="filters">
        <input name="filter-name" placeholder="Filter by name or uuid" value={name} onInput={(e) => setName((e.target as HTMLInputElement).value)} />
        <select name="filter-state" value={power} onChange={(e) => setPower((e.target as HTMLSelectElement).value)}>
          <option value="">any state</option>
          {POWER_STATES.map((p) => (
            <option value={p}>{p}</option>
          ))}
        </select>
        <select name="filter-host" value={host} onChange={(e) => setHost((e.target as HTMLSelectElement).value)}>
          <option value="">any host</option>
          {hosts.map((h) => (
            <option value={h}>{h}</option>
          ))}
        </select>
        <span class="count" data-count={rows.length}>
          {rows.length === s.vms.size ? `${rows.length} VMs` : `${rows.length} of ${s.vms.size} VMs`}
        </span>
      </div>
      <div class="table-head row">
        <span>Name</span>
        <span>State</span>
        <span>Host</span>
        <span>vCPUs</span>
        <span>Memory</span>
        <span>Domid</span>
        <span>Consoles</span>
        <span>Actions</span>
      </div>
      <div
        class="table-body"
        ref={(el) => {
          if (el && el.clientHeight !== viewport && el.clientHeight > 0) setViewport(el.clientHeight);
        }}
        onScroll={(e) => setScrollTop((e.target as HTMLElement).scrollTop)}
      >
        <div style={{ height: `${rows.length * ROW_HEIGHT}px`, position: 'relative' }}>
          {rows.slice(first, last).map((vm, i) => (
            <VmRow key={vm.config.id} vm={vm} top={(first + i) * ROW_HEIGHT} />
          ))}
        </div>
      </div>
    </section>
  );
}

function VmRow({ vm, top }: { vm: VmEntry; top: number }) {
  const { config, state } = vm;
  const power = state.power_state;
  return (
    <div class="row vm" data-vm={config.id} data-power={power} style={{ top: `${top}px`, height: `${ROW_HEIGHT}px` }}>
      <a href={`#/vm/${encodeURIComponent(config.id)}`} class="name" title={config.id}>
        {config.name || config.id}
      </a>
      <PowerState state={power} />
      <span class="host">{vm.host ?? '—'}</span>
      <span>{power === 'Halted' ? config.vcpus : state.vcpu_target}</span>
      <span>{mib(power === 'Halted' ? config.memory_static_max : state.memory_actual)}</span>
      <span>{domidOf(state)}</span>
      <span class="consoles">{consolesOf(state)}</span>
      <span class="actions">
        {ACTIONS.filter((a) => a.when.includes(power) && !a.needsImage).map((a) => (
          <button type="button" data-action={a.key} onClick={() => void runAction(a, config.id, config.name)}>
            {a.label}
          </button>
        ))}
      </span>
    </div>
  );
}
