// Raw HTTP checks of the gateway's resource-server contract, with tokens minted by
// the suite's AS (oidc-provider, client_credentials grant). Complements the SDK
// client and the Inspector: these are the cases a well-behaved client never sends.
//
//   node checks.mjs <mcp-url> <issuer>
//
// Prints "ok http/<name>" / "FAIL http/<name>: why" and "# info ..." lines.
const [mcpUrl, issuer] = process.argv.slice(2);
if (!mcpUrl || !issuer) {
  console.error('usage: node checks.mjs <mcp-url> <issuer>');
  process.exit(2);
}
const requiredScope = process.env.REQUIRED_SCOPE || 'mcp:read';
let failed = 0;
async function check(name, fn) {
  try {
    const d = await fn();
    console.log(`ok http/${name}${d ? ` (${d})` : ''}`);
  } catch (e) {
    failed++;
    console.log(`FAIL http/${name}: ${String(e?.message || e).replace(/\s+/g, ' ').slice(0, 600)}`);
  }
}
function assert(c, m) {
  if (!c) throw new Error(m);
}

const meta = await (await fetch(`${issuer}/.well-known/oauth-authorization-server`)).json();
async function token(resource, scope) {
  const body = new URLSearchParams({ grant_type: 'client_credentials', resource, scope });
  const id = process.env.AS_CC_CLIENT_ID || 'interop-cc';
  const secret = process.env.AS_CC_CLIENT_SECRET || 'interop-cc-secret';
  const r = await fetch(meta.token_endpoint, {
    method: 'POST',
    headers: { authorization: `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}` },
    body,
  });
  const j = await r.json();
  if (!j.access_token) throw new Error(`AS refused token for ${resource} ${scope}: ${JSON.stringify(j)}`);
  return j.access_token;
}

const initialize = JSON.stringify({
  jsonrpc: '2.0',
  id: 1,
  method: 'initialize',
  params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'interop-checks', version: '1' } },
});
function post(tok, body = initialize, extra = {}) {
  return fetch(mcpUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...(tok ? { authorization: `Bearer ${tok}` } : {}), ...extra },
    body,
  });
}
const params = (h) => Object.fromEntries([...String(h ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1], m[2]]));
const show = (r) => `HTTP ${r.status} WWW-Authenticate: ${r.headers.get('www-authenticate')}`;

let prmUrl;
await check('no-token-401-challenge', async () => {
  const r = await post(undefined);
  const h = r.headers.get('www-authenticate');
  assert(r.status === 401, show(r));
  assert(/^Bearer\b/i.test(h ?? ''), `no Bearer challenge: ${show(r)}`);
  const p = params(h);
  assert(p.resource_metadata, `no resource_metadata: ${h}`);
  assert(!p.error, `RFC 6750 §3.1: no error code when the request had no credentials, got error="${p.error}"`);
  assert((p.scope ?? '').split(' ').includes(requiredScope), `scope="${p.scope}" lacks ${requiredScope}`);
  prmUrl = p.resource_metadata;
  return h;
});

await check('prm-document', async () => {
  assert(prmUrl, 'no resource_metadata URL from the 401');
  const r = await fetch(prmUrl);
  assert(r.status === 200, `GET ${prmUrl}: HTTP ${r.status}`);
  assert(/json/.test(r.headers.get('content-type') ?? ''), `content-type ${r.headers.get('content-type')}`);
  const j = await r.json();
  assert(j.resource === mcpUrl, `resource ${j.resource} != ${mcpUrl}`);
  assert(j.authorization_servers?.some((a) => a.replace(/\/$/, '') === issuer), `authorization_servers ${JSON.stringify(j.authorization_servers)} lacks ${issuer}`);
  return `scopes_supported=${JSON.stringify(j.scopes_supported)}`;
});

await check('prm-well-known-path', async () => {
  // RFC 9728 §3.1: /.well-known/oauth-protected-resource + resource path. Clients that
  // never saw a 401 (or ignore resource_metadata) probe this.
  const u = new URL(mcpUrl);
  const wk = `${u.origin}/.well-known/oauth-protected-resource${u.pathname === '/' ? '' : u.pathname}`;
  const r = await fetch(wk);
  assert(r.status === 200, `GET ${wk}: HTTP ${r.status}`);
  const j = await r.json();
  assert(j.resource === mcpUrl, `resource ${j.resource}`);
});

await check('valid-token-200', async () => {
  const r = await post(await token(mcpUrl, requiredScope));
  assert(r.status === 200, show(r));
  await r.body?.cancel();
});

await check('garbage-token-401-invalid_token', async () => {
  const r = await post('not-a-jwt');
  assert(r.status === 401, show(r));
  const p = params(r.headers.get('www-authenticate'));
  assert(p.error === 'invalid_token', show(r));
  assert(p.resource_metadata, `no resource_metadata: ${show(r)}`);
});

await check('wrong-audience-401', async () => {
  const other = new URL('/some-other-api', mcpUrl).toString();
  const r = await post(await token(other, requiredScope));
  assert(r.status === 401, `token with aud=${other}: ${show(r)}`);
  assert(params(r.headers.get('www-authenticate')).error === 'invalid_token', show(r));
});

await check('tampered-signature-401', async () => {
  const t = (await token(mcpUrl, requiredScope)).split('.');
  const sig = Buffer.from(t[2], 'base64url');
  sig[0] ^= 0xff;
  const r = await post(`${t[0]}.${t[1]}.${sig.toString('base64url')}`);
  assert(r.status === 401, show(r));
});

await check('missing-scope-403-insufficient_scope', async () => {
  const r = await post(await token(mcpUrl, 'mcp:write'));
  assert(r.status === 403, `token with scope mcp:write only: ${show(r)}`);
  const p = params(r.headers.get('www-authenticate'));
  assert(p.error === 'insufficient_scope', show(r));
  assert((p.scope ?? '').split(' ').includes(requiredScope), show(r));
});

await check('token-in-query-not-accepted', async () => {
  // RFC 6750 §2.3 URI query token: MCP forbids it (tokens only in the Authorization header).
  const tok = await token(mcpUrl, requiredScope);
  const r = await fetch(`${mcpUrl}?access_token=${tok}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
    body: initialize,
  });
  assert(r.status === 401, show(r));
});

// Informational: what the upstream MCP server receives.
try {
  const tok = await token(mcpUrl, requiredScope);
  const init = await post(tok);
  const sid = init.headers.get('mcp-session-id');
  await init.body?.cancel();
  const h = { 'mcp-protocol-version': '2025-06-18', ...(sid ? { 'mcp-session-id': sid } : {}) };
  await (await post(tok, JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }), h)).body?.cancel();
  const r = await post(tok, JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'headers', arguments: {} } }), h);
  const raw = await r.text();
  const m = /"text":"((?:[^"\\]|\\.)*)"/.exec(raw);
  const seen = m ? JSON.parse(JSON.parse(`"${m[1]}"`)) : {};
  console.log(`# info: upstream saw Authorization header: ${seen.authorization ? 'yes' : 'no'}; x-user: ${seen['x-user'] ?? '(none)'}; host: ${seen.host}`);
} catch (e) {
  console.log(`# info: could not read upstream headers: ${e.message}`);
}

process.exit(failed ? 1 : 0);
