import { it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { startHttpServer } from './server.js';
it('curl', async () => {
  const svc = await startHttpServer({ listen: { host: '127.0.0.1', port: 0 }, dispatch: async () => ({ ok: true, value: 1 }) });
  const port = svc.tcpAddress!.port;
  const py = `
import socket,sys
s=socket.create_connection(('127.0.0.1',${port}))
body=b'{'+b' '*(17*1024*1024)
s.sendall(b'POST / HTTP/1.1\\r\\nHost: x\\r\\nContent-Length: %d\\r\\n\\r\\n'%len(body))
try:
  s.sendall(body)
  print('sent all')
except Exception as e: print('send err',e)
try:
  print(s.recv(65536)[:60])
except Exception as e: print('recv err', e)
`;
  for (let i = 0; i < 3; i++) console.log(execFileSync('python3', ['-c', py], { encoding: 'utf8' }));
  await svc.close(100);
});
