/**
 * Files served as they are (the web console's page, script and stylesheet): read once at start,
 * answered from memory with an ETag, revalidated by the browser on every load (`no-cache`) so a
 * rebuilt console is picked up by a reload. Only the files present at start exist: no path is
 * ever joined onto the directory, so nothing outside it can be asked for.
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { extname, join } from 'node:path';
import type { RouteHandler } from './server.js';

const CONTENT_TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
};

/** The console's directory has no `index.html`: it was not built. */
export class StaticAssetsMissingError extends Error {
  override readonly name = 'StaticAssetsMissingError';
  readonly code = 'STATIC_ASSETS_MISSING';
  constructor(readonly dir: string) {
    super(`no index.html in ${dir} (run npm run build)`);
  }
}

/**
 * `GET` routes for the files of `dir` under `mount` (e.g. `/ui`): `<mount>` and `<mount>/` are its
 * `index.html`, `<mount>/<name>` each file of a type above.
 */
export function staticAssetRoutes(dir: string, mount: string): Record<string, RouteHandler> {
  const routes: Record<string, RouteHandler> = {};
  for (const name of readdirSync(dir)) {
    const type = CONTENT_TYPES[extname(name)];
    if (!type || !statSync(join(dir, name)).isFile()) continue;
    routes[`${mount}/${name}`] = fileRoute(readFileSync(join(dir, name)), type);
  }
  const index = routes[`${mount}/index.html`];
  if (!index) throw new StaticAssetsMissingError(dir);
  routes[mount] = index;
  routes[`${mount}/`] = index;
  return routes;
}

function fileRoute(body: Buffer, contentType: string): RouteHandler {
  const etag = `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"`;
  return (req, res) => {
    const headers = { ETag: etag, 'Cache-Control': 'no-cache', 'X-Content-Type-Options': 'nosniff' };
    if (req.headers['if-none-match'] === etag) {
      res.writeHead(304, headers);
      res.end();
      return;
    }
    res.writeHead(200, { ...headers, 'Content-Type': contentType, 'Content-Length': body.length });
    res.end(body);
  };
}
