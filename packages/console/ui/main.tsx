/** The operators' console: VMs, tasks, hosts and a VM's history, live from one gateway. */
import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { Activity } from './Activity.js';
import { Hosts } from './Hosts.js';
import { consoleState, useConsole } from './state.js';
import { Tasks } from './Tasks.js';
import { TokenForm } from './Token.js';
import { VmPage } from './VmPage.js';
import { VmTable } from './VmTable.js';

function useHash(): string {
  const [hash, setHash] = useState(location.hash);
  useEffect(() => {
    const on = () => setHash(location.hash);
    addEventListener('hashchange', on);
    return () => removeEventListener('hashchange', on);
  }, []);
  return hash;
}

function App() {
  const s = useConsole();
  const hash = useHash();
  if (s.load === 'unauthorized') return <TokenForm />;
  const vm = /^#\/vm\/(.+)$/.exec(hash);
  const tab = vm ? 'vms' : hash.slice(2) || 'vms';
  const running = [...s.tasks.values()].filter((t) => t.state[0] === 'Pending').length;
  return (
    <>
      <header>
        <h1>xenops</h1>
        <nav>
          <a href="#/vms" class={tab === 'vms' ? 'active' : ''}>
            VMs ({s.vms.size})
          </a>
          <a href="#/tasks" class={tab === 'tasks' ? 'active' : ''}>
            Tasks ({running} running)
          </a>
          <a href="#/hosts" class={tab === 'hosts' ? 'active' : ''}>
            Hosts
          </a>
        </nav>
        <span class={`feed ${s.feed}`} data-feed={s.feed} data-seq={s.seq}>
          {s.feed === 'live' ? `live · seq ${s.seq}` : s.feed}
        </span>
      </header>
      <main data-load={s.load} data-load-ms={Math.round(s.loadMs)}>
        {s.load === 'loading' && <p>Loading…</p>}
        {s.load === 'failed' && <p class="error">Cannot load: {s.loadError}</p>}
        {s.load === 'ready' && (vm ? <VmPage id={decodeURIComponent(vm[1]!)} /> : tab === 'tasks' ? <Tasks /> : tab === 'hosts' ? <Hosts /> : <VmTable />)}
      </main>
      <Activity />
    </>
  );
}

render(<App />, document.getElementById('app')!);
void consoleState.start();
