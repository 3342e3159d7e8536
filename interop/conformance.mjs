// Runs the server scenarios of the official conformance suite
// (@modelcontextprotocol/conformance) against a URL and turns its summary into
// "ok conformance/<scenario>" / "FAIL conformance/<scenario>: ..." lines.
// Needs Node >= 22 (the CLI uses fs.globSync): run this file with that node.
//
//   node conformance.mjs <mcp-url> [prefix] [suite]
//
// suite: all (default), active or pending — the CLI's --suite.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';

const [url, prefix = 'conformance', suite = 'all'] = process.argv.slice(2);
if (!url) {
  console.error('usage: node conformance.mjs <mcp-url> [prefix] [suite]');
  process.exit(2);
}
const require = createRequire(import.meta.url);
const pkgDir = path.dirname(require.resolve('@modelcontextprotocol/conformance/package.json'));
const cli = path.join(pkgDir, require('@modelcontextprotocol/conformance/package.json').bin.conformance);
const cwd = mkdtempSync(path.join(tmpdir(), 'conformance-')); // it may write results/ there

const child = spawn(process.execPath, [cli, 'server', '--url', url, '--suite', suite], { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
let out = '';
child.stdout.on('data', (d) => (out += d));
child.stderr.on('data', (d) => (out += d));
const timer = setTimeout(() => child.kill('SIGTERM'), Number(process.env.CONFORMANCE_TIMEOUT_MS || 180000));
const code = await new Promise((r) => child.on('close', r));
clearTimeout(timer);
rmSync(cwd, { recursive: true, force: true });

let failed = 0;
let seen = 0;
const summary = out.slice(out.lastIndexOf('=== SUMMARY ==='));
for (const m of summary.matchAll(/^([✓✗])\s+(\S+):\s+(\d+) passed, (\d+) failed/gmu)) {
  seen++;
  const [, mark, name, p, f] = m;
  if (mark === '✓' && f === '0') console.log(`ok ${prefix}/${name} (${p} checks${p === '0' ? ', warnings only' : ''})`);
  else {
    failed++;
    // Pull the failed-check messages for this scenario out of the verbose-less output, if any.
    console.log(`FAIL ${prefix}/${name}: ${p} passed, ${f} failed`);
  }
}
if (!seen) {
  console.log(`FAIL ${prefix}/run: conformance CLI exited ${code} without a summary: ${out.slice(-600).replace(/\s+/g, ' ')}`);
  process.exit(1);
}
process.exit(failed ? 1 : 0);
