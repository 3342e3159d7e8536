// Token-adding forwarder: the conformance suite's server scenarios use a plain MCP
// client that sends no Authorization header, so this puts one in front of the gateway.
// It forwards every request unchanged (method, path, headers, body, streamed response)
// and sets `Authorization: Bearer <token>`. Like a port forward that the client does
// not know about, it presents the target's own origin: a Host or Origin header naming
// the forwarder itself is rewritten to the target's (any other value, e.g. the
// conformance suite's DNS-rebinding probe with Host: evil.example.com, passes as is).
//
//   node forwarder.mjs <listen-port|0> <target-origin> <token>
//
// Prints "FWD ready http://127.0.0.1:<port>" once listening.
import http from 'node:http';

const [listenPort, target, token] = process.argv.slice(2);
if (!target || !token) {
  console.error('usage: node forwarder.mjs <listen-port|0> <target-origin> <token>');
  process.exit(2);
}
const t = new URL(target);
const agent = new http.Agent({ keepAlive: true });

let self; // host:port of this forwarder, known once listening
const server = http.createServer((req, res) => {
  const headers = { ...req.headers, authorization: `Bearer ${token}` };
  if (headers.host === self) headers.host = t.host;
  if (headers.origin === `http://${self}`) headers.origin = t.origin;
  const up = http.request({ host: t.hostname, port: t.port, method: req.method, path: req.url, headers, agent }, (ur) => {
    res.writeHead(ur.statusCode, ur.statusMessage, ur.rawHeaders);
    res.flushHeaders();
    ur.pipe(res);
  });
  up.on('error', (err) => {
    if (!res.headersSent) res.writeHead(502, { 'content-type': 'text/plain' });
    res.end(`forwarder: ${err.message}`);
  });
  res.on('close', () => up.destroy());
  req.pipe(up);
});
server.listen(Number(listenPort || 0), '127.0.0.1', () => {
  self = `127.0.0.1:${server.address().port}`;
  console.log(`FWD ready http://${self}`);
});
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => process.exit(0));
