/**
 * Raw HTTP/1.1 over a TCP socket, for requests node:http will not send as-is (no length at all,
 * oversized bodies the server cuts short).
 */
import net from 'node:net';

export interface RawReply {
  status: number;
  headers: Record<string, string>;
  body: string;
  /** The server closed the connection (observed end of stream). */
  closed: boolean;
  /** A socket error seen while writing/reading (EPIPE/ECONNRESET when the server cuts us off). */
  socketError?: string;
}

/**
 * Sends `head` (request line + headers, without the blank line) and `body`; reads until close.
 * `url` is `http://host:port`, or `unix:<path>` for a Unix socket.
 */
export function rawHttp(url: string, head: string, body: Buffer | string = '', timeoutMs = 30_000): Promise<RawReply> {
  const target: net.NetConnectOpts = url.startsWith('unix:') ? { path: url.slice(5) } : { host: new URL(url).hostname, port: Number(new URL(url).port) };
  return new Promise<RawReply>((resolve, reject) => {
    const sock = net.connect(target);
    const chunks: Buffer[] = [];
    let socketError: string | undefined;
    let settled = false;
    const finish = (closed: boolean) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      const text = Buffer.concat(chunks).toString('latin1');
      const sep = text.indexOf('\r\n\r\n');
      if (sep < 0) {
        reject(new Error(`no HTTP response head received (socket error: ${socketError ?? 'none'}): ${JSON.stringify(text.slice(0, 200))}`));
        return;
      }
      const [statusLine, ...lines] = text.slice(0, sep).split('\r\n');
      const headers: Record<string, string> = {};
      for (const l of lines) {
        const i = l.indexOf(':');
        headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
      }
      let rest = Buffer.from(text.slice(sep + 4), 'latin1');
      if (headers['content-length'] !== undefined) rest = rest.subarray(0, Number(headers['content-length']));
      resolve({
        status: Number(statusLine!.split(' ')[1]),
        headers,
        body: rest.toString('utf8'),
        closed,
        ...(socketError ? { socketError } : {}),
      });
    };
    const timer = setTimeout(() => {
      sock.destroy();
      // A keep-alive server may hold the connection open after a complete reply.
      finish(false);
    }, timeoutMs);
    sock.on('data', (c: Buffer) => {
      chunks.push(c);
    });
    sock.on('end', () => finish(true));
    sock.on('close', () => finish(true));
    sock.on('error', (e) => {
      socketError = (e as NodeJS.ErrnoException).code ?? e.message;
    });
    sock.on('connect', () => {
      sock.write(`${head}\r\n\r\n`);
      if (body.length > 0) sock.write(body, () => sock.end());
      else sock.end();
    });
  });
}
