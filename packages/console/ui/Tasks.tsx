import { call } from './api.js';
import { Progress } from './Activity.js';
import { taskStatus } from './format.js';
import { useConsole } from './state.js';

/** Every task the service holds: running ones first, with progress and a cancel button. */
export function Tasks() {
  const s = useConsole();
  const tasks = [...s.tasks.values()].sort((a, b) => {
    const pa = a.state[0] === 'Pending' ? 0 : 1;
    const pb = b.state[0] === 'Pending' ? 0 : 1;
    return pa - pb || Number(b.id) - Number(a.id);
  });
  return (
    <section class="tasks">
      <p class="count">{tasks.length} tasks ({tasks.filter((t) => t.state[0] === 'Pending').length} running)</p>
      <table>
        <thead>
          <tr>
            <th>Task</th>
            <th>Caller (dbg)</th>
            <th>Created</th>
            <th>Progress</th>
            <th>Outcome</th>
            <th />
          </tr>
        </thead>
        <tbody>
          {tasks.map((t) => {
            const st = taskStatus(t);
            return (
              <tr key={t.id} data-task={t.id} class={st.word}>
                <td>{t.id}</td>
                <td class="dbg">{t.dbg.split('\n')[0]}</td>
                <td>{new Date(t.ctime * 1000).toLocaleTimeString()}</td>
                <td>
                  <Progress value={st.progress} word={st.word} />
                </td>
                <td class={st.word === 'failed' ? 'error' : ''}>{st.word === 'pending' ? `${Math.round(st.progress * 100)}%` : `${st.word} ${st.detail}`}</td>
                <td>
                  {st.word === 'pending' ? (
                    <button type="button" disabled={!t.cancellable} onClick={() => void call('Task.cancel', { id: t.id })}>
                      Cancel
                    </button>
                  ) : (
                    <button type="button" onClick={() => void call('Task.destroy', { id: t.id })}>
                      Destroy
                    </button>
                  )}
                </td>
              </tr>
            );
          })}
        </tbody>
      </table>
    </section>
  );
}
