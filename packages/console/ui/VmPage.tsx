import { useEffect, useMemo, useState } from 'preact/hooks';
import { ACTIONS, migrateAction, runAction } from './actions.js';
import { call, getText, RpcError } from './api.js';
import { consolesOf, domidOf, mib, timeOf } from './format.js';
import { useConsole } from './state.js';
import { PowerState } from './VmTable.js';
import type { AuditEntry, VmConfig, VmState } from './wire.js';

const DEVICE_KINDS = ['VBD', 'VIF', 'PCI'] as const;
type Devices = Record<(typeof DEVICE_KINDS)[number], ReadonlyArray<readonly [Record<string, unknown>, Record<string, unknown>]>>;

interface View {
  readonly config: VmConfig;
  readonly state: VmState;
  readonly devices: Devices;
}

async function viewAt(id: string, asOf: number | undefined): Promise<View | string> {
  const at = asOf === undefined ? {} : { as_of: asOf };
  try {
    const [[config, state], ...lists] = await Promise.all([
      call<[VmConfig, VmState]>('VM.stat', { id, ...at }),
      ...DEVICE_KINDS.map((k) => call<Devices['VBD']>(`${k}.list`, { id, ...at })),
    ]);
    return { config, state, devices: Object.fromEntries(DEVICE_KINDS.map((k, i) => [k, lists[i]!])) as Devices };
  } catch (e) {
    return e instanceof RpcError ? e.message : (e as Error).message;
  }
}

/** One VM: configuration, devices and state, live or as of a seq of its history (API.md §9.6). */
export function VmPage({ id }: { id: string }) {
  const s = useConsole();
  const live = s.vms.get(id);
  const [history, setHistory] = useState<readonly AuditEntry[]>([]);
  const [position, setPosition] = useState<number | undefined>(undefined);
  const [view, setView] = useState<View | string | undefined>();
  const [image, setImage] = useState('');
  const [hosts, setHosts] = useState<readonly string[]>([]);
  const [target, setTarget] = useState('');

  // Where the VM can be migrated to: the Up hosts (its own too: a new domain there).
  useEffect(() => {
    call<Array<{ id: string; state: string }>>('HOST.list')
      .then((list) => setHosts(list.filter((h) => h.state === 'Up').map((h) => h.id)))
      .catch(() => setHosts([]));
  }, [id]);

  // The history grows as the VM changes: reload it with each change of the VM.
  useEffect(() => {
    void getText(`/log?vm=${encodeURIComponent(id)}`).then((text) =>
      setHistory(
        text
          .split('\n')
          .filter((l) => l.trim())
          .map((l) => JSON.parse(l) as AuditEntry),
      ),
    );
  }, [id, live?.seq]);

  const seqs = useMemo(() => [...new Set(history.map((e) => e.seq))], [history]);
  const asOf = position === undefined || position >= seqs.length - 1 ? undefined : seqs[position];

  useEffect(() => {
    let current = true;
    void viewAt(id, asOf).then((v) => current && setView(v));
    return () => {
      current = false;
    };
  }, [id, asOf, asOf === undefined ? live?.seq : 0]);

  const name = live?.config.name ?? (typeof view === 'object' ? view.config.name : id);
  const when = asOf === undefined ? undefined : history.find((e) => e.seq === asOf);
  return (
    <section class="vm-page" data-vm={id}>
      <p>
        <a href="#/vms">← VMs</a>
      </p>
      <h2>
        {name} {typeof view === 'object' && <PowerState state={view.state.power_state} />}
      </h2>
      <p class="uuid">{id}</p>

      <div class="time-travel">
        <label for="as-of">History</label>
        <input
          id="as-of"
          name="as-of"
          type="range"
          min={0}
          max={Math.max(0, seqs.length - 1)}
          value={position ?? seqs.length - 1}
          disabled={seqs.length < 2}
          onInput={(e) => setPosition(Number((e.target as HTMLInputElement).value))}
        />
        <span class="as-of" data-as-of={asOf ?? 'live'}>
          {asOf === undefined ? 'now (live)' : `as of seq ${asOf}, ${timeOf(when?.time ?? '')}`}
        </span>
        {asOf !== undefined && (
          <button type="button" onClick={() => setPosition(undefined)}>
            Back to now
          </button>
        )}
      </div>

      {asOf === undefined && live && (
        <div class="vm-actions">
          {ACTIONS.map((a) => (
            <button type="button" data-action={a.key} disabled={a.needsImage && !image} onClick={() => void runAction(a, id, name, image)}>
              {a.label}
            </button>
          ))}
          <input name="image" placeholder="suspend image path (suspend, resume)" value={image} onInput={(e) => setImage((e.target as HTMLInputElement).value)} />
          <select name="migrate-to" value={target} onChange={(e) => setTarget((e.target as HTMLSelectElement).value)}>
            <option value="">migrate to host…</option>
            {hosts.map((h) => (
              <option value={h}>
                {h}
                {h === live.host ? ' (its host: a new domain)' : ''}
              </option>
            ))}
          </select>
          <button type="button" data-action="migrate" disabled={!target} onClick={() => void runAction(migrateAction(target), id, name)}>
            Migrate
          </button>
        </div>
      )}

      {typeof view === 'string' && <p class="error">{view}</p>}
      {typeof view === 'object' && <Details view={view} />}

      <h3>History</h3>
      <ol class="timeline">
        {[...history].reverse().map((e) => (
          <li key={`${e.seq}-${e.event}`} class={asOf !== undefined && e.seq > asOf ? 'future' : ''} data-seq={e.seq}>
            <span class="seq">#{e.seq}</span>
            <time>{timeOf(e.time)}</time>
            <span class="event">{e.event}</span>
            <span class="text">{e.text}</span>
            <span class="who">
              {e.dbg.split('\n')[0]} · {e.host} · {e.actor}
            </span>
          </li>
        ))}
      </ol>
    </section>
  );
}

function Details({ view }: { view: View }) {
  const { config, state, devices } = view;
  return (
    <div class="details">
      <dl class="state">
        <dt>Power state</dt>
        <dd data-field="power_state">{state.power_state}</dd>
        <dt>Domid</dt>
        <dd>{domidOf(state)}</dd>
        <dt>vCPUs</dt>
        <dd>
          {state.vcpu_target || config.vcpus} of {config.vcpu_max}
        </dd>
        <dt>Memory</dt>
        <dd>
          {mib(state.memory_actual)} (static max {mib(config.memory_static_max)})
        </dd>
        <dt>Consoles</dt>
        <dd>{consolesOf(state)}</dd>
      </dl>
      <h3>Devices</h3>
      {DEVICE_KINDS.map((k) => (
        <div class="devices" data-kind={k}>
          <h4>
            {k} ({devices[k].length})
          </h4>
          <ul>
            {devices[k].map(([cfg, st]) => (
              <li>
                <code>{JSON.stringify(cfg.id)}</code> {st.plugged ? 'plugged' : 'unplugged'}
              </li>
            ))}
          </ul>
        </div>
      ))}
      <details>
        <summary>Configuration</summary>
        <pre>{JSON.stringify(config, null, 2)}</pre>
      </details>
    </div>
  );
}
