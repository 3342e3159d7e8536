// Authorization server for the interop suite: oidc-provider (panva), configured
// for headless tests. Glue only: the OAuth/OIDC implementation is oidc-provider's.
//
//   node as.mjs [port]         (or AS_PORT=...; 0 = let the OS pick)
//
// Prints "AS ready <issuer>" once listening.
//
// Environment knobs (all optional):
//   AS_HOST               listen/issuer host (default 127.0.0.1)
//   AS_JWT_ALG            signing alg of JWT access tokens: RS256 (default) or ES256
//   AS_OPAQUE_RESOURCES   space/comma separated resource indicators that get
//                         *opaque* access tokens (introspect them at /token/introspection).
//                         Any resource whose URL path ends in "/opaque" is opaque too.
//                         Every other http(s) resource gets JWT (RFC 9068) tokens.
//   AS_RESOURCE_SCOPES    scopes grantable for every resource (default "mcp:read mcp:write mcp:admin")
//   AS_ACCESS_TOKEN_TTL   seconds (default 600)
//   AS_STRICT_CLIENT_SCOPE=1  keep oidc-provider's default behaviour of restricting a
//                         dynamically registered client to the `scope` it registered with
//                         (breaks MCP step-up, see README); default: widen it to all scopes.
//   AS_NO_REFRESH=1       never issue refresh tokens (even for offline_access)
//   AS_USER               the subject that the auto-login logs in (default "alice")
//   AS_CC_CLIENT_ID / AS_CC_CLIENT_SECRET
//                         a pre-registered confidential client allowed the client_credentials
//                         grant (default interop-cc / interop-cc-secret), used to mint tokens
//                         for tools that cannot do the browser flow themselves.
import http from 'node:http';
import crypto from 'node:crypto';
import Provider, { errors } from 'oidc-provider';

const host = process.env.AS_HOST || '127.0.0.1';
const port = Number(process.argv[2] ?? process.env.AS_PORT ?? 0);
const jwtAlg = process.env.AS_JWT_ALG || 'RS256';
const resourceScopes = (process.env.AS_RESOURCE_SCOPES || 'mcp:read mcp:write mcp:admin').split(/[\s,]+/).filter(Boolean);
const opaqueResources = new Set((process.env.AS_OPAQUE_RESOURCES || '').split(/[\s,]+/).filter(Boolean));
const accessTokenTTL = Number(process.env.AS_ACCESS_TOKEN_TTL || 600);
const strictClientScope = process.env.AS_STRICT_CLIENT_SCOPE === '1';
const user = process.env.AS_USER || 'alice';
const ccClientId = process.env.AS_CC_CLIENT_ID || 'interop-cc';
const ccClientSecret = process.env.AS_CC_CLIENT_SECRET || 'interop-cc-secret';

// Fresh signing keys per run (private JWKs, as oidc-provider's `jwks` option wants).
function jwk(type, opts, alg) {
  const { privateKey } = crypto.generateKeyPairSync(type, opts);
  const key = privateKey.export({ format: 'jwk' });
  key.kid = `${alg.toLowerCase()}-${crypto.randomBytes(4).toString('hex')}`;
  key.use = 'sig';
  key.alg = alg;
  return key;
}
const keys = [jwk('rsa', { modulusLength: 2048 }, 'RS256'), jwk('ec', { namedCurve: 'P-256' }, 'ES256')];
// oidc-provider signs with the first key that fits the alg; keep the chosen alg first.
keys.sort((a, b) => (a.alg === jwtAlg ? -1 : b.alg === jwtAlg ? 1 : 0));

function isOpaque(resource) {
  if (opaqueResources.has(resource)) return true;
  try {
    return new URL(resource).pathname.replace(/\/+$/, '').endsWith('/opaque');
  } catch {
    return false;
  }
}

const configuration = {
  jwks: { keys },
  cookies: { keys: [crypto.randomBytes(32).toString('hex')] },
  // Resource scopes are also listed as AS scopes so that RFC 7591 registration
  // requests carrying `scope` (the MCP SDK sends the scope it is about to request)
  // pass oidc-provider's client-metadata validation.
  scopes: ['openid', 'offline_access', ...resourceScopes],
  claims: { openid: ['sub'] },
  async findAccount(ctx, sub) {
    return { accountId: sub, async claims() { return { sub }; } };
  },
  clients: [
    {
      client_id: ccClientId,
      client_secret: ccClientSecret,
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
      token_endpoint_auth_method: 'client_secret_basic',
    },
  ],
  // OAuth 2.1: PKCE for everyone (oidc-provider only supports S256).
  pkce: { required: () => true },
  responseTypes: ['code'],
  ...(process.env.AS_NO_REFRESH === '1' ? { issueRefreshToken: async () => false } : {}),
  ttl: {
    AccessToken: (ctx, token) => token.resourceServer?.accessTokenTTL || accessTokenTTL,
    ClientCredentials: (ctx, token) => token.resourceServer?.accessTokenTTL || accessTokenTTL,
    AuthorizationCode: 60,
    Grant: 3600,
    IdToken: 3600,
    Interaction: 600,
    Session: 3600,
    RefreshToken: 3600,
  },
  extraClientMetadata: {
    properties: ['scope'],
    validator(ctx, key, value, metadata) {
      // RFC 7591 lets the AS adjust requested metadata. The MCP SDK registers with the
      // scope of its *first* authorization request; oidc-provider would then refuse
      // every later request for more (step-up). Register clients for all scopes instead.
      if (key === 'scope' && ctx && !strictClientScope && value !== undefined) {
        const all = new Set([...String(value).split(' ').filter(Boolean), 'openid', 'offline_access', ...resourceScopes]);
        metadata.scope = [...all].join(' ');
      }
    },
  },
  clientBasedCORS: () => true,
  interactions: {
    url: (ctx, interaction) => `/interaction/${interaction.uid}`,
  },
  features: {
    devInteractions: { enabled: false },
    registration: { enabled: true, initialAccessToken: false },
    registrationManagement: { enabled: false },
    introspection: {
      enabled: true,
      // Let any authenticated client (incl. the resource server's credentials) introspect.
      allowedPolicy: async () => true,
    },
    revocation: { enabled: true },
    clientCredentials: { enabled: true },
    userinfo: { enabled: true },
    resourceIndicators: {
      enabled: true,
      // When a single resource was granted, use it at the token endpoint even without
      // an explicit `resource` parameter there.
      useGrantedResource: async () => true,
      defaultResource: async (ctx, client, oneOf) => oneOf,
      async getResourceServerInfo(ctx, resourceIndicator, client) {
        let url;
        try {
          url = new URL(resourceIndicator);
        } catch {
          throw new errors.InvalidTarget();
        }
        if (!['http:', 'https:'].includes(url.protocol)) throw new errors.InvalidTarget();
        if (isOpaque(resourceIndicator)) {
          return { scope: resourceScopes.join(' '), accessTokenFormat: 'opaque', accessTokenTTL };
        }
        return {
          scope: resourceScopes.join(' '),
          audience: resourceIndicator,
          accessTokenFormat: 'jwt',
          accessTokenTTL,
          jwt: { sign: { alg: jwtAlg } },
        };
      },
    },
  },
  async renderError(ctx, out, error) {
    ctx.type = 'json';
    ctx.body = out;
  },
};

const issuer = () => `http://${host}:${server.address().port}`;
let provider;
let handler;

// Headless "user": logs in a fixed account and consents to whatever is asked, using
// oidc-provider's interaction API (interactionDetails / Grant / interactionFinished),
// the same way as its example/routes do, minus the HTML forms.
async function interaction(req, res) {
  const details = await provider.interactionDetails(req, res);
  const { prompt, params, session } = details;
  let result;
  if (prompt.name === 'login') {
    result = { login: { accountId: user, amr: ['test'], remember: true } };
  } else if (prompt.name === 'consent') {
    const grant = details.grantId
      ? await provider.Grant.find(details.grantId)
      : new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
    const d = prompt.details;
    if (d.missingOIDCScope) grant.addOIDCScope(d.missingOIDCScope.join(' '));
    if (d.missingOIDCClaims) grant.addOIDCClaims(d.missingOIDCClaims);
    if (d.missingResourceScopes) {
      for (const [indicator, scopes] of Object.entries(d.missingResourceScopes)) {
        grant.addResourceScope(indicator, scopes.join(' '));
      }
    }
    const grantId = await grant.save();
    result = { consent: details.grantId ? {} : { grantId } };
  } else {
    result = { error: 'access_denied', error_description: `unsupported prompt ${prompt.name}` };
  }
  await provider.interactionFinished(req, res, result, { mergeWithLastSubmission: true });
}

const server = http.createServer((req, res) => {
  if (req.url.startsWith('/interaction/')) {
    interaction(req, res).catch((err) => {
      res.statusCode = 400;
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ error: 'interaction_failed', error_description: String(err?.message || err) }));
    });
    return;
  }
  handler(req, res);
});

server.listen(port, host, () => {
  provider = new Provider(issuer(), configuration);
  handler = provider.callback();
  // Plain-http loopback issuer: nothing to trust, no proxy in front.
  provider.on('server_error', (ctx, err) => console.error('AS server_error', err));
  if (process.env.AS_DEBUG) {
    for (const ev of ['grant.error', 'authorization.error', 'registration_create.error', 'introspection.error']) {
      provider.on(ev, (ctx, err) => console.error('AS', ev, err?.message, err?.error_description || ''));
    }
  }
  console.log(`AS ready ${issuer()}`);
});

for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => process.exit(0));
