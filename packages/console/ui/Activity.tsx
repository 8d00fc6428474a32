import { call } from './api.js';
import { taskStatus } from './format.js';
import { consoleState, useConsole, type Action } from './state.js';

/** A task's progress bar, moving as its atoms complete. */
export function Progress({ value, word }: { value: number; word: string }) {
  return (
    <div class={`progress ${word}`} role="progressbar" aria-valuenow={Math.round(value * 100)} aria-valuemin={0} aria-valuemax={100}>
      <div style={{ width: `${Math.round(value * 100)}%` }} />
    </div>
  );
}

/** The actions started from this page: each one's task to its end, or its error in the service's words. */
export function Activity() {
  const s = useConsole();
  if (s.actions.length === 0) return null;
  return (
    <section class="activity" aria-label="activity">
      {s.actions.map((a) => (
        <ActionRow key={`${a.started}-${a.taskId ?? a.error}`} a={a} />
      ))}
    </section>
  );
}

function ActionRow({ a }: { a: Action }) {
  const s = useConsole();
  const task = a.taskId ? (s.tasks.get(a.taskId) ?? s.destroyed.get(a.taskId)) : undefined;
  // A task not seen on the change stream yet is pending at 0 %.
  const status = task ? taskStatus(task) : a.error ? { word: 'failed' as const, progress: 1, detail: a.error } : { word: 'pending' as const, progress: 0, detail: '' };
  return (
    <div class={`action ${status.word}`} data-task={a.taskId ?? ''}>
      <span class="what">
        {a.label} {a.vmName}
      </span>
      <Progress value={status.progress} word={status.word} />
      <span class="outcome">{status.word === 'pending' ? `${Math.round(status.progress * 100)}%` : status.word}</span>
      {status.word === 'failed' && <span class="error">{status.detail}</span>}
      {status.word === 'pending' && task?.cancellable && (
        <button type="button" onClick={() => void call('Task.cancel', { id: a.taskId })}>
          Cancel
        </button>
      )}
      {status.word !== 'pending' && (
        <button type="button" class="dismiss" aria-label="dismiss" onClick={() => consoleState.dismiss(a)}>
          ×
        </button>
      )}
    </div>
  );
}
