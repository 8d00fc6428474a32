/**
 * @xenops/console: the operators' web console. The page itself is built by `npm run build`
 * (build.mjs bundles ui/ into dist/ui/); a gateway serves that directory at `GET /ui`.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** Where the built console lives (index.html, app.js, app.css). */
export const CONSOLE_ASSETS_DIR: string = fileURLToPath(new URL('./ui/', import.meta.url));

/** Whether the console has been built (a checkout before `npm run build` has no page to serve). */
export function consoleIsBuilt(dir: string = CONSOLE_ASSETS_DIR): boolean {
  return existsSync(`${dir}index.html`) && existsSync(`${dir}app.js`);
}
