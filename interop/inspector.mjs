// Drives the MCP Inspector CLI (@modelcontextprotocol/inspector, `--cli` mode) against
// an MCP URL. Run it with Node >= 22.19 (the Inspector's engines field).
//
//   node inspector.mjs header <mcp-url> <access-token>
//       Inspector with --header "Authorization: Bearer <token>": tools/list, tools/call echo
//   node inspector.mjs oauth <mcp-url>
//       Inspector's *own* OAuth client: it discovers PRM/AS, registers, prints the
//       authorization URL and waits on its loopback callback listener. Our headless
//       user agent (ua.mjs) plays the browser: follows the URL through the AS's
//       auto-consent and delivers the redirect to the Inspector's listener.
//       tools/list, then (unless STEPUP=0) tools/call admin_action, where the Inspector
//       meets the 403 insufficient_scope challenge and asks on stdin whether to step up.
//
// Prints "ok inspector/<name>" / "FAIL inspector/<name>: why" lines; exit 1 on failure.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';
import { CookieJar, followAuthorization } from './ua.mjs';

const [mode, url, token] = process.argv.slice(2);
const trace = process.env.CLIENT_TRACE === '1';
const stepUp = process.env.STEPUP !== '0';
const timeoutMs = Number(process.env.INSPECTOR_TIMEOUT_MS || 45000);
if (!['header', 'oauth'].includes(mode) || !url || (mode === 'header' && !token)) {
  console.error('usage: node inspector.mjs header <mcp-url> <token> | oauth <mcp-url>');
  process.exit(2);
}

const require = createRequire(import.meta.url);
const pkgDir = path.dirname(require.resolve('@modelcontextprotocol/inspector/package.json'));
const pkg = require('@modelcontextprotocol/inspector/package.json');
const launcher = path.join(pkgDir, pkg.bin['mcp-inspector']);
const home = mkdtempSync(path.join(tmpdir(), 'inspector-home-'));
process.on('exit', () => rmSync(home, { recursive: true, force: true }));

let failed = 0;
const ok = (name, d) => console.log(`ok inspector/${name}${d ? ` (${d})` : ''}`);
const fail = (name, why) => {
  failed++;
  console.log(`FAIL inspector/${name}: ${String(why).replace(/\s+/g, ' ').slice(0, 600)}`);
};

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

// Runs the Inspector CLI once. onStderr(text, child) sees its stderr as it arrives.
function runInspector(args, { stdin, onStderr } = {}) {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [launcher, '--cli', ...args], {
      env: {
        ...process.env,
        HOME: home, // catalog / client config / OAuth state files go to a throwaway dir
        MCP_INSPECTOR_SECRET_STORE: 'memory',
        NO_COLOR: '1',
        ...(mode === 'oauth' ? { MCP_AUTO_OPEN_ENABLED: 'true' } : {}),
      },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    const timer = setTimeout(() => child.kill('SIGTERM'), timeoutMs);
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => {
      err += d;
      if (trace) process.stderr.write(`[inspector] ${d}`);
      onStderr?.(err, child);
    });
    if (stdin !== undefined) child.stdin.end(stdin);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, out, err });
    });
  });
}

function parseJson(s) {
  try {
    return JSON.parse(s.trim().split('\n').filter(Boolean).pop());
  } catch {
    return undefined;
  }
}
const textOf = (r) => (r?.content ?? []).filter((c) => c.type === 'text').map((c) => c.text).join('');

if (mode === 'header') {
  const common = [url, '--transport', 'http', '--header', `Authorization: Bearer ${token}`, '--format', 'json'];
  let r = await runInspector([...common, '--method', 'tools/list']);
  let j = parseJson(r.out);
  const names = j?.result?.tools?.map((t) => t.name) ?? j?.tools?.map((t) => t.name);
  if (r.code === 0 && names?.includes('echo')) ok('header-tools-list', `${names.length} tools`);
  else fail('header-tools-list', `exit ${r.code}: ${r.out.slice(0, 300)} ${r.err.slice(-300)}`);

  r = await runInspector([...common, '--method', 'tools/call', '--tool-name', 'echo', '--tool-arg', 'message=inspector-was-here']);
  j = parseJson(r.out);
  const t = textOf(j?.result ?? j);
  if (r.code === 0 && t === 'inspector-was-here') ok('header-tools-call-echo');
  else fail('header-tools-call-echo', `exit ${r.code}: ${r.out.slice(0, 300)} ${r.err.slice(-300)}`);
} else {
  const jar = new CookieJar(); // one browser for the run
  // Each Inspector run keeps its secrets in memory, so each one does a full OAuth flow.
  async function oauthRun(name, args, { stdin, check }) {
    const port = await freePort();
    const callback = `http://127.0.0.1:${port}/oauth/callback`;
    const seen = new Set();
    const browserErrors = [];
    const r = await runInspector([url, '--transport', 'http', '--format', 'json', '--callback-url', callback, ...args], {
      stdin,
      onStderr(text) {
        for (const m of text.matchAll(/Please navigate to: (\S+)/g)) {
          if (seen.has(m[1])) continue;
          seen.add(m[1]);
          followAuthorization(m[1], callback, jar, trace)
            .then((back) => fetch(back)) // deliver the redirect to the Inspector's own listener
            .then((res) => res.text())
            .catch((e) => browserErrors.push(e.message));
        }
      },
    });
    const j = parseJson(r.out);
    const why = check(j, seen.size);
    if (r.code === 0 && !why) ok(name, `${seen.size} authorization${seen.size === 1 ? '' : 's'}`);
    else fail(name, `${why || ''} exit ${r.code}${r.signal ? ` (${r.signal})` : ''}; browser: ${browserErrors.join('; ') || 'ok'}; stdout: ${r.out.slice(0, 300)}; stderr: ${r.err.replace(/\[mcp-inspector\][^\n]*\n/g, '').slice(-500)}`);
  }

  await oauthRun('oauth-tools-list', ['--method', 'tools/list'], {
    check: (j, auths) => {
      const names = j?.result?.tools?.map((t) => t.name);
      if (!names?.includes('echo')) return 'no echo tool in result';
      if (auths < 1) return 'no authorization happened';
      return '';
    },
  });

  if (stepUp) {
    // admin_action needs mcp:admin. Whether the Inspector needs to step up depends on
    // the scope it asked for in the first place (it asks for PRM scopes_supported).
    await oauthRun('oauth-tools-call-admin_action', ['--method', 'tools/call', '--tool-name', 'admin_action'], {
      stdin: 'y\n',
      check: (j) => (textOf(j?.result ?? j) === 'admin action done' ? '' : 'admin_action did not succeed'),
    });
  }
}

process.exit(failed ? 1 : 0);
