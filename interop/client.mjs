// MCP client for the interop suite: the official TypeScript SDK client
// (@modelcontextprotocol/sdk) with its own OAuth machinery (auth() driven by
// StreamableHTTPClientTransport + an OAuthClientProvider). Our glue is only the
// OAuthClientProvider (in-memory storage) and a headless "browser" that follows the
// authorization URL through the AS's auto-login/auto-consent to the redirect URI.
//
//   node client.mjs <mcp-url> [--trace]
//
// Prints one line per scenario: "ok <name>" or "FAIL <name>: <why>". Exit 1 on any FAIL.
//
// Environment:
//   STEPUP=0          skip the step-up (403 insufficient_scope -> re-authorize) scenarios
//   EXPECT_USER=...   subject the gateway should forward as X-User (default alice)
//   STEPUP_TOOL=...   tool that needs more scope (default admin_action)
//   STEPUP_SCOPE=...  scope expected in the 403 challenge (default "mcp:admin")
//   CLIENT_TRACE=1    same as --trace: log every HTTP exchange to stderr
//   CLIENT_PREFIX=... scenario name prefix (default sdk-client)
//   EXPECT_TOKEN=opaque|jwt  fail the flow unless the AS issued that kind of access token
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';
import { randomBytes } from 'node:crypto';
import { CookieJar, followAuthorization } from './ua.mjs';

const args = process.argv.slice(2);
const serverUrl = args.find((a) => !a.startsWith('--'));
const trace = args.includes('--trace') || process.env.CLIENT_TRACE === '1';
const stepUp = process.env.STEPUP !== '0';
const expectUser = process.env.EXPECT_USER ?? 'alice';
const stepUpTool = process.env.STEPUP_TOOL || 'admin_action';
const stepUpScope = process.env.STEPUP_SCOPE || 'mcp:admin';
if (!serverUrl) {
  console.error('usage: node client.mjs <mcp-url> [--trace]');
  process.exit(2);
}
const PREFIX = process.env.CLIENT_PREFIX || 'sdk-client';
const expectToken = process.env.EXPECT_TOKEN;

// ---------------------------------------------------------------- reporting
let failed = 0;
function ok(name, detail) {
  console.log(`ok ${PREFIX}/${name}${detail ? ` (${detail})` : ''}`);
}
function fail(name, why) {
  failed++;
  console.log(`FAIL ${PREFIX}/${name}: ${String(why).replace(/\s+/g, ' ').slice(0, 600)}`);
}
async function step(name, fn) {
  try {
    const detail = await fn();
    ok(name, typeof detail === 'string' ? detail : undefined);
    return true;
  } catch (err) {
    fail(name, err?.stack && trace ? err.stack : err?.message || err);
    return false;
  }
}
function assert(cond, msg) {
  if (!cond) throw new Error(msg);
}

// ---------------------------------------------------------------- HTTP trace
// Every request the SDK makes (MCP, PRM, AS metadata, registration, token) goes
// through this fetch, so the scenarios can check what actually happened on the wire.
const exchanges = [];
const tracingFetch = async (input, init = {}) => {
  const url = String(input instanceof Request ? input.url : input);
  const method = init.method || (input instanceof Request ? input.method : 'GET');
  const res = await fetch(input, init);
  const rec = { method, url, status: res.status, wwwAuthenticate: res.headers.get('www-authenticate'), requestBody: typeof init.body === 'string' ? init.body : undefined };
  exchanges.push(rec);
  if (trace) console.error(`[http] ${method} ${url} -> ${res.status}${rec.wwwAuthenticate ? ` WWW-Authenticate: ${rec.wwwAuthenticate}` : ''}`);
  return res;
};

// ---------------------------------------------------------------- OAuthClientProvider
class HeadlessOAuthProvider {
  constructor() {
    this.redirect = 'http://127.0.0.1:8976/callback';
    this.jar = new CookieJar(); // one "browser" for the whole run: the second flow reuses the AS session
    this.pendingCode = undefined;
    this.authorizationUrls = [];
  }
  get redirectUrl() {
    return this.redirect;
  }
  get clientMetadata() {
    return {
      client_name: 'caddy-mcp-auth interop client (MCP TypeScript SDK)',
      redirect_uris: [this.redirect],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
    };
  }
  state() {
    this._state = randomBytes(16).toString('base64url');
    return this._state;
  }
  clientInformation() {
    return this._clientInformation;
  }
  saveClientInformation(info) {
    this._clientInformation = info;
  }
  tokens() {
    return this._tokens;
  }
  saveTokens(tokens) {
    this._tokens = tokens;
  }
  saveCodeVerifier(v) {
    this._codeVerifier = v;
  }
  codeVerifier() {
    return this._codeVerifier;
  }
  async invalidateCredentials(scope) {
    if (scope === 'all' || scope === 'client') this._clientInformation = undefined;
    if (scope === 'all' || scope === 'tokens') this._tokens = undefined;
    if (scope === 'all' || scope === 'verifier') this._codeVerifier = undefined;
  }
  async redirectToAuthorization(authorizationUrl) {
    this.authorizationUrls.push(new URL(authorizationUrl));
    const back = await followAuthorization(authorizationUrl, this.redirect, this.jar, trace);
    const err = back.searchParams.get('error');
    if (err) throw new Error(`authorization error ${err}: ${back.searchParams.get('error_description') ?? ''}`);
    if (back.searchParams.get('state') !== this._state) throw new Error('state mismatch on redirect');
    this.pendingCode = back.searchParams.get('code');
    if (!this.pendingCode) throw new Error(`no code in redirect ${back}`);
  }
  takeCode() {
    const c = this.pendingCode;
    this.pendingCode = undefined;
    return c;
  }
}

function jwtPayload(token) {
  const parts = String(token).split('.');
  if (parts.length !== 3) return undefined;
  try {
    return JSON.parse(Buffer.from(parts[1], 'base64url').toString());
  } catch {
    return undefined;
  }
}
const textOf = (r) => (r.content ?? []).filter((c) => c.type === 'text').map((c) => c.text).join('');

// ---------------------------------------------------------------- scenarios
const provider = new HeadlessOAuthProvider();
const newClient = () => new Client({ name: 'caddy-mcp-auth-interop-client', version: '1.0.0' }, { capabilities: {} });
let client = newClient();
let transport = new StreamableHTTPClientTransport(new URL(serverUrl), { authProvider: provider, fetch: tracingFetch });
let prm;

const authorized = await step('oauth-flow', async () => {
  // 1. Unauthenticated connect: the gateway must answer 401, the SDK then runs
  //    PRM discovery, AS metadata discovery, DCR and starts authorization (PKCE + resource);
  //    our provider completes it headlessly and the SDK surfaces UnauthorizedError.
  let connected = false;
  try {
    await client.connect(transport);
    connected = true;
  } catch (err) {
    if (!(err instanceof UnauthorizedError)) throw err;
  }
  assert(!connected, 'connected without any token: is the endpoint protected?');
  const first = exchanges.find((e) => e.url === serverUrl || e.url.startsWith(serverUrl));
  assert(first && first.status === 401, `first MCP request should get 401, got ${first?.status}`);
  assert(/^Bearer\b/i.test(first.wwwAuthenticate ?? ''), `401 without Bearer challenge: ${first.wwwAuthenticate}`);
  const rm = /resource_metadata="([^"]+)"/.exec(first.wwwAuthenticate)?.[1];
  assert(rm, `401 challenge has no resource_metadata: ${first.wwwAuthenticate}`);
  const prmFetch = exchanges.find((e) => e.url === rm);
  assert(prmFetch?.status === 200, `PRM ${rm} not fetched with 200 (got ${prmFetch?.status})`);
  prm = await (await fetch(rm)).json();
  assert(Array.isArray(prm.authorization_servers) && prm.authorization_servers.length, 'PRM lacks authorization_servers');
  const as = prm.authorization_servers[0].replace(/\/$/, '');
  assert(exchanges.some((e) => e.url.startsWith(`${as}/.well-known/`) && e.status === 200), 'AS metadata was not discovered');
  const reg = exchanges.find((e) => e.method === 'POST' && e.status === 201);
  assert(reg, 'no dynamic client registration (201) seen');
  const authUrl = provider.authorizationUrls[0];
  assert(authUrl, 'SDK never started the authorization (redirectToAuthorization not called)');
  assert(authUrl.searchParams.get('code_challenge_method') === 'S256', 'authorization request without PKCE S256');
  assert(authUrl.searchParams.get('resource') === prm.resource, `authorization resource=${authUrl.searchParams.get('resource')} != PRM resource ${prm.resource}`);
  const code = provider.takeCode();
  assert(code, 'no authorization code');
  await transport.finishAuth(code);
  const tok = provider.tokens();
  assert(tok?.access_token, 'no access token after finishAuth');
  const p = jwtPayload(tok.access_token);
  if (expectToken) assert((p ? 'jwt' : 'opaque') === expectToken, `the AS issued a ${p ? 'JWT' : 'non-JWT'} access token, expected ${expectToken}`);
  const aud = p && [p.aud].flat();
  const alg = p && JSON.parse(Buffer.from(tok.access_token.split('.')[0], 'base64url').toString()).alg;
  return `scope=${authUrl.searchParams.get('scope')} token=${p ? `JWT ${alg} aud=${aud} scope=${p.scope}` : 'opaque'}`;
});

if (!authorized) {
  console.log(`${failed ? 'client done with failures' : 'client done'}`);
  process.exit(1);
}

const connected = await step('connect-with-token', async () => {
  client = newClient();
  transport = new StreamableHTTPClientTransport(new URL(serverUrl), { authProvider: provider, fetch: tracingFetch });
  await client.connect(transport);
  return `session ${transport.sessionId ?? '(stateless)'}`;
});

if (connected) {
  await step('tools-list', async () => {
    const { tools } = await client.listTools();
    const names = tools.map((t) => t.name);
    for (const n of ['echo', 'whoami', 'admin_action', 'stream']) assert(names.includes(n), `tool ${n} missing from ${names.join(',')}`);
    return `${names.length} tools`;
  });

  await step('call-echo', async () => {
    const r = await client.callTool({ name: 'echo', arguments: { message: 'hello through the gateway' } });
    assert(!r.isError && textOf(r) === 'hello through the gateway', `unexpected result ${JSON.stringify(r)}`);
  });

  await step('call-whoami', async () => {
    const r = await client.callTool({ name: 'whoami', arguments: {} });
    assert(textOf(r) === expectUser, `x-user seen by the server: ${textOf(r)} (expected ${expectUser})`);
    return `x-user=${textOf(r)}`;
  });

  await step('call-stream-sse-progress', async () => {
    const progress = [];
    const r = await client.callTool({ name: 'stream', arguments: { count: 5, delayMs: 50 } }, undefined, {
      onprogress: (p) => progress.push(p.progress),
    });
    assert(textOf(r) === 'streamed 5', `unexpected result ${JSON.stringify(r)}`);
    assert(progress.length === 5, `got ${progress.length} progress notifications, expected 5`);
    return `progress ${progress.join(',')}`;
  });

  if (!stepUp) {
    console.log(`skip ${PREFIX}/step-up (STEPUP=0)`);
  } else {
    const before = exchanges.length;
    const authsBefore = provider.authorizationUrls.length;
    const stepped = await step('step-up-insufficient-scope', async () => {
      let r;
      try {
        r = await client.callTool({ name: stepUpTool, arguments: {} });
        throw new Error(`${stepUpTool} succeeded with scope "${jwtPayload(provider.tokens().access_token)?.scope}" — expected 403 insufficient_scope first`);
      } catch (err) {
        if (!(err instanceof UnauthorizedError)) throw err;
      }
      const denied = exchanges.slice(before).find((e) => e.status === 403);
      assert(denied, 'no 403 seen');
      assert(/error="insufficient_scope"/.test(denied.wwwAuthenticate ?? ''), `403 challenge: ${denied.wwwAuthenticate}`);
      const scope = /scope="([^"]*)"/.exec(denied.wwwAuthenticate)?.[1] ?? '';
      assert(scope.split(' ').includes(stepUpScope), `403 challenge scope="${scope}" lacks ${stepUpScope}`);
      assert(/resource_metadata="/.test(denied.wwwAuthenticate), `403 challenge lacks resource_metadata: ${denied.wwwAuthenticate}`);
      const authUrl = provider.authorizationUrls[authsBefore];
      assert(authUrl, 'SDK did not re-authorize after 403');
      assert(authUrl.searchParams.get('scope') === scope, `re-authorization scope=${authUrl.searchParams.get('scope')} != challenge scope=${scope}`);
      const code = provider.takeCode();
      await transport.finishAuth(code);
      const p = jwtPayload(provider.tokens().access_token);
      if (p) assert(String(p.scope).split(' ').includes(stepUpScope), `new token scope=${p.scope}`);
      r = await client.callTool({ name: stepUpTool, arguments: {} });
      assert(!r.isError && textOf(r) === 'admin action done', `unexpected result ${JSON.stringify(r)}`);
      return `challenge scope="${scope}"`;
    });
    if (stepped) {
      await step('echo-after-step-up', async () => {
        const r = await client.callTool({ name: 'echo', arguments: { message: 'still here' } });
        assert(textOf(r) === 'still here', `unexpected result ${JSON.stringify(r)}`);
      });
    }
  }
  await client.close().catch(() => {});
}

process.exit(failed ? 1 : 0);
