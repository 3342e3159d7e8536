// Mints an access token from the suite's AS (as.mjs) with the client_credentials
// grant of its pre-registered confidential client, for tools that cannot run an
// OAuth flow themselves (or should not have to: Inspector --header, the conformance
// forwarder, raw HTTP checks).
//
//   node token.mjs <issuer> <resource> [scope]      -> prints the access token
//
// AS_CC_CLIENT_ID / AS_CC_CLIENT_SECRET as for as.mjs.
const [issuer, resource, scope = 'mcp:read'] = process.argv.slice(2);
if (!issuer || !resource) {
  console.error('usage: node token.mjs <issuer> <resource> [scope]');
  process.exit(2);
}
const id = process.env.AS_CC_CLIENT_ID || 'interop-cc';
const secret = process.env.AS_CC_CLIENT_SECRET || 'interop-cc-secret';
const meta = await (await fetch(`${issuer}/.well-known/oauth-authorization-server`)).json();
const body = new URLSearchParams({ grant_type: 'client_credentials', resource });
if (scope) body.set('scope', scope);
const res = await fetch(meta.token_endpoint, {
  method: 'POST',
  headers: { authorization: `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}` },
  body,
});
const json = await res.json();
if (!res.ok || !json.access_token) {
  console.error(`token request failed: HTTP ${res.status} ${JSON.stringify(json)}`);
  process.exit(1);
}
process.stdout.write(json.access_token + '\n');
