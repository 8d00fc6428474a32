import { useState } from 'preact/hooks';
import { token } from './api.js';
import { consoleState } from './state.js';

/**
 * The gateway runs with --token-file: ask for the token once per browser session. Shown again
 * after a token was refused, saying so (the page keeps the token it sent until one works).
 */
export function TokenForm() {
  const [value, setValue] = useState('');
  const refused = Boolean(token.get());
  return (
    <form
      class="token"
      onSubmit={(e) => {
        e.preventDefault();
        token.set(value.trim());
        void consoleState.start();
      }}
    >
      <h2>This gateway needs a token</h2>
      <p>It runs with <code>--token-file</code>: paste the file's first line. It is kept for this browser tab only.</p>
      {refused && <p class="error">The gateway refused that token.</p>}
      <input name="token" type="password" autocomplete="off" value={value} onInput={(e) => setValue((e.target as HTMLInputElement).value)} />
      <button type="submit">Connect</button>
    </form>
  );
}
