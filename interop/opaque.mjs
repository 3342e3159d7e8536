// Opaque access tokens (RFC 7662 introspection) through the gateway: the second
// protected resource of the suite's Caddyfile, <origin>/opaque, whose mcp_auth asks
// oidc-provider's introspection endpoint about non-JWT tokens. Tokens come from the
// suite's AS (client_credentials grant of its confidential client; oidc-provider issues
// opaque tokens for resources whose path ends in /opaque), MCP traffic from the
// official TypeScript SDK client with a fixed bearer token. The full OAuth flow of the
// SDK client against /opaque is client.mjs (run.sh runs it as opaque/sdk-client/*).
//
//   node opaque.mjs <opaque-url> <jwt-mcp-url> <issuer> [introspection-cache-seconds]
//
// Prints "ok opaque/<name>" / "FAIL opaque/<name>: why" and "# info ..." lines.
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { createHash, randomBytes } from 'node:crypto';
import { CookieJar, followAuthorization } from './ua.mjs';

const [opaqueUrl, mcpUrl, issuer, cacheArg = '2'] = process.argv.slice(2);
if (!opaqueUrl || !mcpUrl || !issuer) {
  console.error('usage: node opaque.mjs <opaque-url> <jwt-mcp-url> <issuer> [introspection-cache-seconds]');
  process.exit(2);
}
const cacheMs = Number(cacheArg) * 1000;
const requiredScope = process.env.REQUIRED_SCOPE || 'mcp:read';
const ccId = process.env.AS_CC_CLIENT_ID || 'interop-cc';
const ccSecret = process.env.AS_CC_CLIENT_SECRET || 'interop-cc-secret';
const basic = `Basic ${Buffer.from(`${encodeURIComponent(ccId)}:${encodeURIComponent(ccSecret)}`).toString('base64')}`;

let failed = 0;
async function check(name, fn) {
  try {
    const d = await fn();
    console.log(`ok opaque/${name}${d ? ` (${d})` : ''}`);
  } catch (e) {
    failed++;
    console.log(`FAIL opaque/${name}: ${String(e?.message || e).replace(/\s+/g, ' ').slice(0, 600)}`);
  }
}
function assert(c, m) {
  if (!c) throw new Error(m);
}
const isJwtShaped = (t) => /^[\w-]+\.[\w-]+\.[\w-]*$/.test(t);

const meta = await (await fetch(`${issuer}/.well-known/oauth-authorization-server`)).json();
async function token(resource, scope = requiredScope) {
  const body = new URLSearchParams({ grant_type: 'client_credentials', resource, scope });
  const r = await fetch(meta.token_endpoint, { method: 'POST', headers: { authorization: basic }, body });
  const j = await r.json();
  if (!j.access_token) throw new Error(`AS refused a token for ${resource} ${scope}: ${JSON.stringify(j)}`);
  return j.access_token;
}
async function introspectAtAS(tok) {
  const r = await fetch(meta.introspection_endpoint, { method: 'POST', headers: { authorization: basic }, body: new URLSearchParams({ token: tok }) });
  return r.json();
}
async function revoke(tok) {
  const r = await fetch(meta.revocation_endpoint, {
    method: 'POST',
    headers: { authorization: basic },
    body: new URLSearchParams({ token: tok, token_type_hint: 'access_token' }),
  });
  await r.body?.cancel();
  return r.status;
}

const initialize = JSON.stringify({
  jsonrpc: '2.0',
  id: 1,
  method: 'initialize',
  params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'interop-opaque', version: '1' } },
});
async function post(url, tok) {
  const r = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...(tok ? { authorization: `Bearer ${tok}` } : {}) },
    body: initialize,
  });
  await r.body?.cancel();
  return r;
}
const params = (h) => Object.fromEntries([...String(h ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1], m[2]]));
const show = (r) => `HTTP ${r.status} WWW-Authenticate: ${r.headers.get('www-authenticate')}`;
function assertInvalidToken(r, description) {
  assert(r.status === 401, show(r));
  const p = params(r.headers.get('www-authenticate'));
  assert(p.error === 'invalid_token', show(r));
  assert(p.resource_metadata, `no resource_metadata: ${show(r)}`);
  if (description) assert(p.error_description === description, `error_description "${p.error_description}", expected "${description}"`);
  return `error_description="${p.error_description}"`;
}
const textOf = (r) => (r.content ?? []).filter((c) => c.type === 'text').map((c) => c.text).join('');
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const origin = new URL(opaqueUrl).origin;
const prmPath = `${origin}/.well-known/oauth-protected-resource${new URL(opaqueUrl).pathname}`;

// ------------------------------------------------------------ metadata
await check('no-token-401-challenge', async () => {
  const r = await post(opaqueUrl);
  assert(r.status === 401, show(r));
  const p = params(r.headers.get('www-authenticate'));
  assert(!p.error, `no credentials, yet error="${p.error}"`);
  assert(p.resource_metadata === prmPath, `resource_metadata="${p.resource_metadata}", expected ${prmPath}`);
  assert((p.scope ?? '').split(' ').includes(requiredScope), `scope="${p.scope}"`);
});

await check('prm-document', async () => {
  const r = await fetch(prmPath);
  assert(r.status === 200, `GET ${prmPath}: HTTP ${r.status}`);
  const j = await r.json();
  assert(j.resource === opaqueUrl, `resource ${j.resource} != ${opaqueUrl}`);
  assert(j.authorization_servers?.some((a) => a.replace(/\/$/, '') === issuer), `authorization_servers ${JSON.stringify(j.authorization_servers)}`);
  return `scopes_supported=${JSON.stringify(j.scopes_supported)}`;
});

await check('prm-jwt-resource-still-served', async () => {
  const u = `${origin}/.well-known/oauth-protected-resource${new URL(mcpUrl).pathname}`;
  const r = await fetch(u);
  assert(r.status === 200, `GET ${u}: HTTP ${r.status}`);
  const j = await r.json();
  assert(j.resource === mcpUrl, `resource ${j.resource} != ${mcpUrl}`);
});

await check('prm-root-404-two-resources', async () => {
  const u = `${origin}/.well-known/oauth-protected-resource`;
  const r = await fetch(u);
  const body = await r.text();
  assert(r.status === 404, `GET ${u}: HTTP ${r.status} ${body.slice(0, 200)}`);
});

// ------------------------------------------------------------ accepted
await check('cc-token-tools', async () => {
  const tok = await token(opaqueUrl);
  assert(!isJwtShaped(tok), `the AS issued a JWT-shaped token for ${opaqueUrl}: not an opaque-token test`);
  const intro = await introspectAtAS(tok);
  assert(intro.active === true && intro.aud === opaqueUrl, `AS introspection: ${JSON.stringify(intro)}`);
  const client = new Client({ name: 'interop-opaque', version: '1' }, { capabilities: {} });
  const transport = new StreamableHTTPClientTransport(new URL(opaqueUrl), { requestInit: { headers: { authorization: `Bearer ${tok}` } } });
  await client.connect(transport);
  try {
    const { tools } = await client.listTools();
    assert(tools.some((t) => t.name === 'echo'), `tools/list: ${tools.map((t) => t.name).join(',')}`);
    const e = await client.callTool({ name: 'echo', arguments: { message: 'opaque hello' } });
    assert(!e.isError && textOf(e) === 'opaque hello', `echo: ${JSON.stringify(e)}`);
    // client_credentials tokens have no subject at oidc-provider (introspection has no
    // "sub"), so there is no user to forward.
    const w = textOf(await client.callTool({ name: 'whoami', arguments: {} }));
    const expected = intro.sub ?? '';
    assert(w === expected || (!intro.sub && w === '(no x-user header)'), `x-user seen upstream: "${w}", introspection sub: ${JSON.stringify(intro.sub)}`);
    return `${tools.length} tools; introspection sub=${intro.sub ?? '(none)'} client_id=${intro.client_id}; upstream x-user="${w}"`;
  } finally {
    await client.close().catch(() => {});
  }
});

// ------------------------------------------------------------ refused
await check('other-resource-401-invalid_token', async () => {
  // Confused deputy: an opaque token that oidc-provider minted for another resource.
  const other = `${origin}/other/opaque`;
  const tok = await token(other);
  assert(!isJwtShaped(tok), 'JWT-shaped token');
  const aud = (await introspectAtAS(tok)).aud;
  assert(aud === other, `AS introspection aud=${aud}`);
  return assertInvalidToken(await post(opaqueUrl, tok), 'The access token was not issued for this resource');
});

await check('missing-scope-403-insufficient_scope', async () => {
  const r = await post(opaqueUrl, await token(opaqueUrl, 'mcp:write'));
  assert(r.status === 403, show(r));
  const p = params(r.headers.get('www-authenticate'));
  assert(p.error === 'insufficient_scope' && (p.scope ?? '').split(' ').includes(requiredScope), show(r));
});

await check('unknown-token-401-inactive', async () => {
  return assertInvalidToken(await post(opaqueUrl, 'IhaveNeverBeenIssuedByAnyoneAtAll0123456789'), 'The access token is not active');
});

await check('revoked-401-after-cache-bound', async () => {
  const tok = await token(opaqueUrl);
  const first = await post(opaqueUrl, tok);
  assert(first.status === 200, `before revocation: ${show(first)}`);
  const t0 = Date.now();
  const rs = await revoke(tok);
  assert(rs === 200, `revocation endpoint: HTTP ${rs}`);
  const intro = await introspectAtAS(tok);
  assert(intro.active === false, `AS still says active after revocation: ${JSON.stringify(intro)}`);
  // Within the cache bound the gateway may still accept it: not asserted.
  const within = await post(opaqueUrl, tok);
  await sleep(Math.max(0, cacheMs + 500 - (Date.now() - t0)));
  const after = await post(opaqueUrl, tok);
  const d = assertInvalidToken(after, 'The access token is not active');
  return `right after revocation: HTTP ${within.status}; after ${((Date.now() - t0) / 1000).toFixed(1)}s: 401 ${d}`;
});

await check('refresh-token-401', async () => {
  // A refresh token is opaque too, and oidc-provider introspects it as active — without
  // token_type and without aud (its answer for an access token has both). Presented as
  // an access token, it must be refused: here by the missing aud.
  const redirect = 'http://127.0.0.1:8976/callback';
  const scope = `${requiredScope} offline_access`;
  const reg = await (
    await fetch(meta.registration_endpoint, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ redirect_uris: [redirect], grant_types: ['authorization_code', 'refresh_token'], response_types: ['code'], token_endpoint_auth_method: 'none', scope }),
    })
  ).json();
  assert(reg.client_id, `registration: ${JSON.stringify(reg)}`);
  const verifier = randomBytes(32).toString('base64url');
  const state = randomBytes(8).toString('hex');
  const u = new URL(meta.authorization_endpoint);
  for (const [k, v] of Object.entries({
    client_id: reg.client_id,
    response_type: 'code',
    redirect_uri: redirect,
    scope,
    resource: opaqueUrl,
    code_challenge: createHash('sha256').update(verifier).digest('base64url'),
    code_challenge_method: 'S256',
    state,
    prompt: 'consent',
  })) u.searchParams.set(k, v);
  const back = await followAuthorization(u.toString(), redirect, new CookieJar(), false);
  assert(back.searchParams.get('state') === state && back.searchParams.get('code'), `authorization: ${back}`);
  const tr = await fetch(meta.token_endpoint, {
    method: 'POST',
    body: new URLSearchParams({ grant_type: 'authorization_code', code: back.searchParams.get('code'), redirect_uri: redirect, code_verifier: verifier, client_id: reg.client_id, resource: opaqueUrl }),
  });
  const t = await tr.json();
  assert(t.access_token && t.refresh_token, `token response: HTTP ${tr.status} ${JSON.stringify(t)}`);
  const at = await post(opaqueUrl, t.access_token);
  assert(at.status === 200, `its access token: ${show(at)}`);
  const intro = await introspectAtAS(t.refresh_token);
  assert(intro.active === true, `AS introspection of the refresh token: ${JSON.stringify(intro)}`);
  const d = assertInvalidToken(await post(opaqueUrl, t.refresh_token));
  return `AS answer for it: token_type=${intro.token_type ?? '(none)'} aud=${intro.aud ?? '(none)'}; gateway: ${d}`;
});

await check('jwt-for-mcp-at-opaque-401', async () => {
  const tok = await token(mcpUrl);
  assert(isJwtShaped(tok), 'expected a JWT for the /mcp resource');
  return assertInvalidToken(await post(opaqueUrl, tok), 'The access token was not issued for this resource');
});

await check('opaque-at-mcp-401', async () => {
  // /mcp has no introspection configured: an opaque token there is just malformed.
  const tok = await token(opaqueUrl);
  const okThere = await post(opaqueUrl, tok);
  assert(okThere.status === 200, `the same token at ${opaqueUrl}: ${show(okThere)}`);
  return assertInvalidToken(await post(mcpUrl, tok));
});

process.exit(failed ? 1 : 0);
