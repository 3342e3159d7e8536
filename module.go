// Package mcpauth is a Caddy HTTP handler that makes an MCP server an OAuth
// 2.1 protected resource: it publishes Protected Resource Metadata (RFC 9728),
// challenges requests without a valid access token (RFC 6750), validates
// audience-bound JWT access tokens (RFC 9068, RFC 8707) against each trusted
// issuer's keys, and forwards what it verified to the backend.
package mcpauth

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/mcpauth/caddy-mcp-auth/introspect"
	"github.com/mcpauth/caddy-mcp-auth/metadata"
	"github.com/mcpauth/caddy-mcp-auth/policy"
	"github.com/mcpauth/caddy-mcp-auth/validator"
)

func init() {
	caddy.RegisterModule(Handler{})
}

// Handler implements an OAuth 2.1 resource server in front of an MCP server.
//
// It answers the metadata URL of its resource itself, without a token, and
// lets every other request through only with a valid access token issued for
// the resource by one of the configured issuers. Rejections are returned as
// HTTP errors with the challenge already set in WWW-Authenticate, so
// handle_errors routes can shape the response.
//
// On success it sets these placeholders:
//
// Placeholder | Description
// ------------|-------------
// `{http.auth.user.id}` | The token's `sub` claim; Caddy's access log shows it as `user_id`
// `{http.auth.user.client_id}` | `client_id`, else `azp`, else `cid`
// `{http.auth.user.scope}` | The granted scopes, space-separated
// `{http.auth.user.iss}` | The issuer that signed the token
// `{http.auth.user.<claim>}` | Any top-level claim whose value is a string
// `{http.auth.mcp.method}` | The JSON-RPC method (first of a batch), when a rule made the body be read
// `{http.auth.mcp.tool}` | The tool name of a tools/call, likewise
type Handler struct {
	// Resource is the URL of the MCP endpoint exactly as clients use it, for
	// example https://mcp.example.com/mcp. It is the `resource` of the
	// metadata document and the default accepted audience. Required; https,
	// or http on a loopback host; no fragment or query.
	Resource string `json:"resource,omitempty"`

	// ResourceName is a human-readable name published in the metadata.
	ResourceName string `json:"resource_name,omitempty"`

	// ResourceDocumentation is a URL of documentation for developers,
	// published in the metadata.
	ResourceDocumentation string `json:"resource_documentation,omitempty"`

	// Issuers are the trusted authorization servers, listed in the metadata's
	// authorization_servers in this order. At least one is required.
	Issuers []*IssuerConfig `json:"issuers,omitempty"`

	// ScopesSupported is published in the metadata. Default: every scope the
	// configuration names (require_scope, rules, scope_implies), without
	// offline_access.
	ScopesSupported []string `json:"scopes_supported,omitempty"`

	// RequireScope lists scopes every request needs. A valid token lacking
	// one gets 403 insufficient_scope.
	RequireScope []string `json:"require_scope,omitempty"`

	// AllowOrigins lists the browser origins (scheme://host[:port]) allowed
	// to call the resource: for CORS, and for the Origin check that guards
	// against DNS rebinding. "*" allows any origin. A request with an Origin
	// not in the list gets 403; a request without Origin (native clients) is
	// not affected. Default: the resource's own origin.
	AllowOrigins []string `json:"allow_origins,omitempty"`

	// ForwardToken keeps the Authorization header on requests passed to the
	// backend. Default: false, the header is removed, so a backend cannot
	// pass the user's token on to other services.
	ForwardToken bool `json:"forward_token,omitempty"`

	// ClockSkew is the leeway for exp, nbf and iat. Default: 60s.
	ClockSkew caddy.Duration `json:"clock_skew,omitempty"`

	// JWKSRefresh is how often issuer keys are refreshed in the background.
	// Unknown key IDs also trigger a refresh, at most once per 10s per
	// issuer. Default: 15m.
	JWKSRefresh caddy.Duration `json:"jwks_refresh,omitempty"`

	// TokenCache is how many verified tokens are remembered (by a hash,
	// never the token), so that a client reusing its token does not pay for
	// a signature check each time. 0 disables the cache. Default: 10000.
	TokenCache *int `json:"token_cache,omitempty"`

	// Methods are rules for JSON-RPC methods (e.g. resources/read).
	Methods []Rule `json:"methods,omitempty"`

	// Tools are rules for MCP tools, matched on params.name of tools/call.
	Tools []Rule `json:"tools,omitempty"`

	// ScopeImplies maps a scope to the scopes it includes, e.g. mcp:admin
	// to mcp:write and mcp:read; granted scopes are expanded before checks.
	ScopeImplies map[string][]string `json:"scope_implies,omitempty"`

	// MaxBody is the largest request body inspected for method and tool
	// rules; a larger one gets 413. Bodies are read only when a rule exists.
	// Default: 1MiB.
	MaxBody int64 `json:"max_body,omitempty"`

	// ChallengeScope chooses the scope parameter of a 403: "cumulative"
	// names require_scope, the operation's scopes and the scopes the token
	// already holds that this resource knows (clients that re-authorize with
	// exactly that scope keep working); "operation" names only what the
	// operation needs (MCP draft). Default: cumulative.
	ChallengeScope string `json:"challenge_scope,omitempty"`

	// BindSessions binds each Mcp-Session-Id the backend issues to the
	// issuer and subject of the token that created it; a request presenting
	// the session with another identity gets 404 and never reaches the
	// backend.
	BindSessions bool `json:"bind_sessions,omitempty"`

	// SessionKey is the secret that seals session IDs when bind_sessions is
	// on; {env.*} and {file.*} placeholders are resolved at load. Instances
	// behind one load balancer need the same key. Default: a random key per
	// process (sessions survive config reloads, not restarts).
	SessionKey string `json:"session_key,omitempty"`

	prmPath    string
	prmURL     string
	origin     string
	prmDoc     []byte
	allowAny   bool
	allowed    map[string]struct{}
	validator  *validator.Validator
	poolKeys   []string
	challenges challenges
	policy     *policy.Policy
	sessions   *sessionBinder
	// introspected lists the issuers with introspection, in order;
	// introspectAlways indexes those with `introspect always`.
	introspected     []introspectedIssuer
	introspectAlways map[string]*introspect.Introspector
	rootOrigin       string
	logger           *zap.Logger
}

// IssuerConfig is one trusted authorization server.
type IssuerConfig struct {
	// Issuer is the issuer identifier, compared byte for byte with the
	// tokens' iss claim (mind trailing slashes: Auth0 has one).
	Issuer string `json:"issuer,omitempty"`

	// JWKSURI is the issuer's JWK Set URL. Default: discovered from the
	// issuer's metadata (RFC 8414, then OpenID Connect Discovery).
	JWKSURI string `json:"jwks_uri,omitempty"`

	// JWKSFile is a local JWK Set file used instead of fetching keys. It is
	// read when the configuration loads.
	JWKSFile string `json:"jwks_file,omitempty"`

	// Audiences are the accepted aud values. Default: the resource (and, for
	// a resource without a path, the same URL with a trailing slash).
	Audiences []string `json:"audiences,omitempty"`

	// Algorithms is the allow-list of JWS algorithms. Default: RS256, RS384,
	// RS512, PS256, PS384, PS512, ES256, ES384, ES512, EdDSA, Ed25519.
	// HMAC algorithms and none are never accepted.
	Algorithms []string `json:"algorithms,omitempty"`

	// ScopeClaim names the claim carrying scopes, a space-delimited string or
	// an array of strings. Default: "scope", falling back to "scp".
	ScopeClaim string `json:"scope_claim,omitempty"`

	// RequireTyp demands the RFC 9068 token type at+jwt. Default: false,
	// which also accepts typ JWT or no typ (most IdPs send those), and
	// refuses any other type.
	RequireTyp bool `json:"require_typ,omitempty"`

	// IntrospectionEndpoint is the issuer's RFC 7662 endpoint. Setting it
	// or ClientID turns introspection on for this issuer. Default: the
	// introspection_endpoint of the issuer's metadata.
	IntrospectionEndpoint string `json:"introspection_endpoint,omitempty"`

	// ClientID identifies the gateway to the introspection endpoint.
	ClientID string `json:"client_id,omitempty"`

	// ClientSecret authenticates the gateway to the introspection endpoint.
	// Use a placeholder such as {env.MCP_INTROSPECTION_SECRET} or
	// {file./run/secrets/introspection}; it is resolved at load.
	ClientSecret string `json:"client_secret,omitempty"`

	// ClientAuth is how the gateway authenticates: "basic"
	// (client_secret_basic) or "post" (client_secret_post). Default: basic.
	ClientAuth string `json:"client_auth,omitempty"`

	// IntrospectionCache bounds how long an active answer is reused (never
	// past the token's exp); revocation shows within this bound. Default: 60s.
	IntrospectionCache caddy.Duration `json:"introspection_cache,omitempty"`

	// Introspect is "opaque" (JWS-shaped tokens are validated locally, only
	// others are introspected) or "always" (this issuer's JWTs are
	// introspected too, for instant revocation). Default: opaque.
	Introspect string `json:"introspect,omitempty"`

	// AllowMissingAudience accepts introspection answers without aud, for
	// authorization servers that omit it. Off by default: a token minted for
	// another resource must not be accepted. JWTs always need aud.
	AllowMissingAudience bool `json:"allow_missing_audience,omitempty"`
}

// introspects reports whether introspection is configured for the issuer.
func (ic *IssuerConfig) introspects() bool {
	return ic.ClientID != "" || ic.IntrospectionEndpoint != ""
}

// CaddyModule returns the Caddy module information.
func (Handler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.mcp_auth",
		New: func() caddy.Module { return new(Handler) },
	}
}

// Defaults.
const (
	defaultClockSkew  = 60 * time.Second
	defaultTokenCache = 10000
	// metadataMaxAge is how long clients may cache the metadata document
	// (RFC 9728 §7.10 suggests letting them cache it).
	metadataMaxAge = "public, max-age=300"
	// retryAfter is sent with 503 when an issuer's keys are unavailable.
	retryAfter = "10"
)

// keySources holds the JWKS caches across config reloads, keyed by issuer
// and key location, so a reload neither refetches keys nor loses them.
var keySources = caddy.NewUsagePool()

// Provision sets up the handler.
func (h *Handler) Provision(ctx caddy.Context) error {
	h.logger = ctx.Logger()
	if err := h.provision(); err != nil {
		return fmt.Errorf("mcp_auth: %w", err)
	}
	return nil
}

func (h *Handler) provision() error {
	if h.ClockSkew == 0 {
		h.ClockSkew = caddy.Duration(defaultClockSkew)
	}
	if h.JWKSRefresh == 0 {
		h.JWKSRefresh = caddy.Duration(validator.DefaultRefresh)
	}
	if h.ClockSkew < 0 || time.Duration(h.ClockSkew) > 10*time.Minute {
		return fmt.Errorf("clock_skew %s: must be between 0 and 10m", time.Duration(h.ClockSkew))
	}
	if time.Duration(h.JWKSRefresh) < time.Minute {
		return fmt.Errorf("jwks_refresh %s: must be at least 1m", time.Duration(h.JWKSRefresh))
	}
	if err := checkResource(h.Resource); err != nil {
		return err
	}
	var err error
	if h.prmPath, err = metadata.WellKnownPath(h.Resource); err != nil {
		return fmt.Errorf("resource: %w", err)
	}
	if h.prmURL, err = metadata.URL(h.Resource); err != nil {
		return fmt.Errorf("resource: %w", err)
	}
	if h.origin, err = metadata.Origin(h.Resource); err != nil {
		return fmt.Errorf("resource: %w", err)
	}
	if h.ResourceDocumentation != "" {
		if u, err := url.Parse(h.ResourceDocumentation); err != nil || u.Scheme == "" || u.Host == "" {
			return fmt.Errorf("resource_documentation %q: must be an absolute URL", h.ResourceDocumentation)
		}
	}
	for _, s := range h.RequireScope {
		if !metadata.ValidScopeToken(s) {
			return fmt.Errorf("require_scope %q: not a valid scope (printable ASCII without space, '\"' or '\\')", s)
		}
	}
	for _, s := range h.ScopesSupported {
		if !metadata.ValidScopeToken(s) {
			return fmt.Errorf("scopes_supported %q: not a valid scope", s)
		}
	}
	if err := h.provisionOrigins(); err != nil {
		return err
	}
	if h.policy, err = h.compilePolicy(); err != nil {
		return err
	}
	if h.BindSessions {
		b := newSessionBinder(caddy.NewReplacer().ReplaceAll(h.SessionKey, ""))
		h.sessions = &b
	} else if h.SessionKey != "" {
		return errors.New("session_key is set but bind_sessions is not; add bind_sessions or remove session_key")
	}
	// Last, since it starts fetching keys: a configuration with a mistake
	// must not reach out to any issuer.
	if err := h.provisionValidator(); err != nil {
		return err
	}
	if err := h.provisionMetadata(); err != nil {
		return err
	}
	h.challenges = newChallenges(h.prmURL, strings.Join(h.RequireScope, " "))
	h.rootOrigin = h.origin
	registerRoot(h.rootOrigin, h.Resource)
	return nil
}

// checkResource enforces what RFC 9728 §1.2 and RFC 8707 §2 ask of a
// resource identifier.
func checkResource(r string) error {
	if r == "" {
		return errors.New("resource is required: the URL of the MCP endpoint as clients use it, e.g. resource https://mcp.example.com/mcp")
	}
	u, err := url.Parse(r)
	if err != nil {
		return fmt.Errorf("resource %q: %v", r, err)
	}
	if u.Scheme == "" || u.Host == "" {
		return fmt.Errorf("resource %q: must be an absolute URL such as https://mcp.example.com/mcp", r)
	}
	if u.Fragment != "" || strings.Contains(r, "#") {
		return fmt.Errorf("resource %q: must not contain a fragment", r)
	}
	if u.RawQuery != "" || strings.Contains(r, "?") {
		return fmt.Errorf("resource %q: must not contain a query", r)
	}
	if u.User != nil {
		return fmt.Errorf("resource %q: must not contain user info", r)
	}
	if err := validator.CheckURL(r); err != nil {
		return fmt.Errorf("resource: %w", err)
	}
	return nil
}

func (h *Handler) provisionOrigins() error {
	h.allowed = make(map[string]struct{})
	if len(h.AllowOrigins) == 0 {
		h.allowed[h.origin] = struct{}{}
		return nil
	}
	for _, o := range h.AllowOrigins {
		if o == "*" {
			h.allowAny = true
			continue
		}
		u, err := url.Parse(o)
		if err != nil || u.Scheme == "" || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
			return fmt.Errorf("allow_origins %q: an origin is scheme://host[:port], e.g. https://app.example.com, or *", o)
		}
		n, _ := metadata.Origin(o)
		h.allowed[n] = struct{}{}
	}
	return nil
}

// sourceKey identifies a shared key source: the same issuer and key location
// share one cache across handlers and reloads.
func sourceKey(ic *IssuerConfig, refresh time.Duration) string {
	return "jwks|" + ic.Issuer + "|" + ic.JWKSURI + "|" + refresh.String()
}

func (h *Handler) provisionValidator() error {
	if len(h.Issuers) == 0 {
		return errors.New("no issuer: add at least one, e.g. issuer https://idp.example.com")
	}
	seen := map[string]bool{}
	for _, ic := range h.Issuers {
		if ic == nil || ic.Issuer == "" {
			return errors.New("issuer: identifier is empty")
		}
		if seen[ic.Issuer] {
			return fmt.Errorf("issuer %q: configured twice", ic.Issuer)
		}
		seen[ic.Issuer] = true
		if err := checkIssuer(ic); err != nil {
			return err
		}
		for _, a := range ic.Algorithms {
			if err := checkAlgorithm(a); err != nil {
				return fmt.Errorf("issuer %q: algorithms: %w", ic.Issuer, err)
			}
		}
		if err := checkIntrospection(ic); err != nil {
			return fmt.Errorf("issuer %q: %w", ic.Issuer, err)
		}
	}
	entries := defaultTokenCache
	if h.TokenCache != nil {
		entries = *h.TokenCache
	}
	if entries < 0 {
		return fmt.Errorf("token_cache %d: must be 0 (off) or more", entries)
	}
	var issuers []*validator.Issuer
	for _, ic := range h.Issuers {
		auds := ic.Audiences
		if len(auds) == 0 {
			auds = defaultAudiences(h.Resource)
		}
		algs := ic.Algorithms
		kp, err := h.keySource(ic)
		if err != nil {
			return fmt.Errorf("issuer %q: %w", ic.Issuer, err)
		}
		issuers = append(issuers, &validator.Issuer{
			ID:         ic.Issuer,
			Audiences:  auds,
			Algorithms: algs,
			ScopeClaim: ic.ScopeClaim,
			RequireTyp: ic.RequireTyp,
			Keys:       kp,
		})
		if ic.introspects() {
			in, err := introspect.New(introspect.Config{
				Issuer:               ic.Issuer,
				Endpoint:             ic.IntrospectionEndpoint,
				ClientID:             ic.ClientID,
				ClientSecret:         caddy.NewReplacer().ReplaceAll(ic.ClientSecret, ""),
				ClientAuth:           ic.ClientAuth,
				Audiences:            auds,
				AllowMissingAudience: ic.AllowMissingAudience,
				ScopeClaim:           ic.ScopeClaim,
				CacheTTL:             time.Duration(ic.IntrospectionCache),
				ClockSkew:            time.Duration(h.ClockSkew),
				Logger:               h.logger.Named("introspection"),
				Now:                  now,
				Keys:                 kp,
			})
			if err != nil {
				return fmt.Errorf("issuer %q: %w", ic.Issuer, err)
			}
			h.introspected = append(h.introspected, introspectedIssuer{issuer: ic.Issuer, always: ic.Introspect == "always", in: in})
			if ic.Introspect == "always" {
				if h.introspectAlways == nil {
					h.introspectAlways = map[string]*introspect.Introspector{}
				}
				h.introspectAlways[ic.Issuer] = in
			}
		}
	}
	v, err := validator.New(validator.Config{
		Issuers:      issuers,
		ClockSkew:    time.Duration(h.ClockSkew),
		CacheEntries: entries,
		Now:          now,
	})
	if err != nil {
		return err
	}
	h.validator = v
	return nil
}

func checkIssuer(ic *IssuerConfig) error {
	u, err := url.Parse(ic.Issuer)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return fmt.Errorf("issuer %q: must be an absolute URL (the exact iss value of its tokens)", ic.Issuer)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("issuer %q: an issuer identifier has no query or fragment (RFC 8414 §2)", ic.Issuer)
	}
	if err := validator.CheckURL(ic.Issuer); err != nil {
		return fmt.Errorf("issuer: %w", err)
	}
	if ic.JWKSURI != "" && ic.JWKSFile != "" {
		return fmt.Errorf("issuer %q: use jwks_uri or jwks_file, not both", ic.Issuer)
	}
	if ic.JWKSURI != "" {
		if err := validator.CheckURL(ic.JWKSURI); err != nil {
			return fmt.Errorf("issuer %q: jwks_uri: %w", ic.Issuer, err)
		}
	}
	if ic.ScopeClaim != "" && !metadata.ValidScopeToken(ic.ScopeClaim) {
		return fmt.Errorf("issuer %q: scope_claim %q: not a claim name", ic.Issuer, ic.ScopeClaim)
	}
	return nil
}

func checkIntrospection(ic *IssuerConfig) error {
	if !ic.introspects() {
		if ic.ClientSecret != "" || ic.ClientAuth != "" || ic.Introspect != "" || ic.IntrospectionCache != 0 || ic.AllowMissingAudience {
			return errors.New("introspection settings need client_id (the gateway's client at the introspection endpoint)")
		}
		return nil
	}
	if ic.ClientID == "" {
		return errors.New("introspection_endpoint needs client_id and client_secret: the endpoint authenticates the gateway (RFC 7662 §2.1)")
	}
	if ic.ClientSecret == "" {
		return errors.New("client_id needs client_secret, e.g. client_secret {env.MCP_INTROSPECTION_SECRET}")
	}
	if ic.IntrospectionEndpoint != "" {
		if err := validator.CheckURL(ic.IntrospectionEndpoint); err != nil {
			return fmt.Errorf("introspection_endpoint: %w", err)
		}
	}
	switch ic.ClientAuth {
	case "", "basic", "post":
	default:
		return fmt.Errorf("client_auth %q: use basic or post", ic.ClientAuth)
	}
	switch ic.Introspect {
	case "", "opaque", "always":
	default:
		return fmt.Errorf("introspect %q: use opaque or always", ic.Introspect)
	}
	if ic.IntrospectionCache < 0 || time.Duration(ic.IntrospectionCache) > time.Hour {
		return fmt.Errorf("introspection_cache %s: must be between 0 and 1h", time.Duration(ic.IntrospectionCache))
	}
	return nil
}

func checkAlgorithm(a string) error {
	switch {
	case strings.HasPrefix(strings.ToUpper(a), "HS"):
		return fmt.Errorf("%q is an HMAC algorithm: a resource server must not share a secret with its issuer, and accepting HS* enables key-confusion forgeries; use an asymmetric algorithm such as RS256 or ES256", a)
	case strings.EqualFold(a, "none"):
		return errors.New(`"none" means unsigned tokens and is never accepted`)
	}
	for _, d := range validator.DefaultAlgorithms {
		if a == d {
			return nil
		}
	}
	return fmt.Errorf("unknown algorithm %q; accepted: %s", a, strings.Join(validator.DefaultAlgorithms, " "))
}

// defaultAudiences is the resource, and for a resource without a path both
// spellings: Claude clients send https://host/ for https://host.
func defaultAudiences(resource string) []string {
	u, _ := url.Parse(resource)
	switch u.Path {
	case "":
		return []string{resource, resource + "/"}
	case "/":
		return []string{resource, strings.TrimSuffix(resource, "/")}
	}
	return []string{resource}
}

func (h *Handler) keySource(ic *IssuerConfig) (validator.KeyProvider, error) {
	cfg := validator.KeySourceConfig{
		Issuer:   ic.Issuer,
		JWKSURI:  ic.JWKSURI,
		JWKSFile: ic.JWKSFile,
		Refresh:  time.Duration(h.JWKSRefresh),
		Logger:   h.logger.Named("jwks"),
	}
	if ic.JWKSFile != "" {
		// A file is read now, on every load, so an edited file takes effect
		// on reload; there is nothing to share.
		s, err := validator.NewKeySource(cfg)
		if err != nil {
			return nil, err
		}
		return s, nil
	}
	key := sourceKey(ic, time.Duration(h.JWKSRefresh))
	v, _, err := keySources.LoadOrNew(key, func() (caddy.Destructor, error) {
		return validator.NewKeySource(cfg)
	})
	if err != nil {
		return nil, err
	}
	h.poolKeys = append(h.poolKeys, key)
	return v.(*validator.KeySource), nil
}

func (h *Handler) provisionMetadata() error {
	doc := metadata.Document{
		Resource:               h.Resource,
		BearerMethodsSupported: []string{"header"},
		ResourceName:           h.ResourceName,
		ResourceDocumentation:  h.ResourceDocumentation,
		ScopesSupported:        h.ScopesSupported,
	}
	for _, ic := range h.Issuers {
		doc.AuthorizationServers = append(doc.AuthorizationServers, ic.Issuer)
	}
	if len(doc.ScopesSupported) == 0 {
		doc.ScopesSupported = advertisedScopes(h.RequireScope, h.policy.AllScopes())
	}
	b, err := doc.Marshal()
	if err != nil {
		return err
	}
	h.prmDoc = b
	return nil
}

// advertisedScopes dedupes scopes in order, leaving out offline_access, which
// MCP says a resource should not advertise (clients add it themselves when
// the authorization server supports refresh).
func advertisedScopes(lists ...[]string) []string {
	var out []string
	seen := map[string]bool{"offline_access": true}
	for _, l := range lists {
		for _, s := range l {
			if !seen[s] {
				seen[s] = true
				out = append(out, s)
			}
		}
	}
	return out
}

// Cleanup releases shared key sources. It tolerates a failed Provision.
func (h *Handler) Cleanup() error {
	for _, k := range h.poolKeys {
		_, _ = keySources.Delete(k)
	}
	h.poolKeys = nil
	if h.rootOrigin != "" {
		unregisterRoot(h.rootOrigin, h.Resource)
		h.rootOrigin = ""
	}
	return nil
}

// Validate checks the configuration; the real checks happen in Provision,
// which has to build everything anyway.
func (h *Handler) Validate() error {
	if h.validator == nil {
		return errors.New("mcp_auth: not provisioned")
	}
	return nil
}

// now is the clock; tests replace it.
var now = time.Now

// maxFormPeek bounds how much of a form-encoded body is read to look for an
// access_token parameter.
const maxFormPeek = 64 << 10

// ServeHTTP implements caddyhttp.MiddlewareHandler. Checks run in the order
// that gives the most useful answer (SPEC D38): metadata and CORS first,
// then the credential's shape, the request body (400/413), the token (401,
// or 503 when keys are unavailable), the authentication strength (401 step
// up), the scopes (403), and the session binding (404).
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	if p := r.URL.Path; strings.HasPrefix(p, metadata.WellKnownPrefix) &&
		(len(p) == len(metadata.WellKnownPrefix) || p[len(metadata.WellKnownPrefix)] == '/') {
		return h.serveMetadata(w, r, next)
	}

	hdr := w.Header()
	if origin := r.Header.Get("Origin"); origin != "" {
		if !h.originAllowed(origin) {
			return h.reject(w, r, rejection{status: http.StatusForbidden, desc: "Origin not allowed", rpcCode: rpcInvalidRequest, logReason: "origin not allowed"})
		}
		hdr.Set("Access-Control-Allow-Origin", origin)
		hdr.Add("Vary", "Origin")
		if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
			// A preflight never carries credentials (Fetch standard), so it
			// is answered here, without a token.
			setPreflightHeaders(hdr)
			w.WriteHeader(http.StatusNoContent)
			return nil
		}
		hdr.Set("Access-Control-Expose-Headers", exposedHeaders)
	}

	// Tokens in the query string are never accepted (OAuth 2.1 §5.1);
	// they are also removed so they reach neither the backend nor logs.
	if strings.Contains(r.URL.RawQuery, "access_token") {
		stripQueryToken(r)
	}

	authz := r.Header.Values("Authorization")
	if len(authz) > 1 {
		return h.reject(w, r, h.invalidRequest("The request carries more than one access token", "more than one Authorization header"))
	}
	if formHasToken(r) {
		if len(authz) > 0 {
			return h.reject(w, r, h.invalidRequest("The request carries more than one access token", "token in both header and body"))
		}
		return h.reject(w, r, h.noToken("token in form body is not supported"))
	}
	if len(authz) == 0 {
		return h.reject(w, r, h.noToken("no token"))
	}
	tok, kind := validator.ParseAuthorization(authz[0])
	switch kind {
	case validator.NoBearer:
		return h.reject(w, r, h.noToken("not a Bearer credential"))
	case validator.BearerMalformed:
		return h.reject(w, r, h.invalidToken(validator.ReasonMalformed))
	}

	// The body is read only when a method or tool rule needs it.
	var inspected policy.Request
	var body []byte
	if h.policy.NeedsBody() && r.Method == http.MethodPost {
		buf := bodyPool.Get().(*bodyBuf)
		defer putBody(buf)
		var rj *rejection
		inspected, body, rj = h.inspectBody(r, buf)
		if rj != nil {
			return h.reject(w, r, *rj)
		}
	}

	claims, err := h.authenticate(r.Context(), tok)
	if err != nil {
		var ve *validator.Error
		if !errors.As(err, &ve) {
			return caddyhttp.Error(http.StatusInternalServerError, err)
		}
		if ve.Temporary {
			// The key source and the introspector warn once per outage;
			// a warning per request would flood the log under load.
			hdr.Set("Retry-After", retryAfter)
			return h.reject(w, r, rejection{status: http.StatusServiceUnavailable, desc: ve.Reason.Description(), rpcCode: rpcServiceUnavailable, logReason: ve.Reason.String()})
		}
		return h.reject(w, r, h.invalidToken(ve.Reason))
	}

	req := h.policy.Requirements(inspected)
	grant := policy.Grant{Scopes: claims.Scopes, ACR: claims.ACR}
	if claims.AuthTime > 0 {
		grant.AuthTime = time.Unix(claims.AuthTime, 0)
	}
	if d := h.policy.Check(req, grant, now()); d.Outcome != policy.Allow {
		return h.reject(w, r, h.stepUp(d, body, inspected))
	}

	if h.sessions != nil {
		if sealed := r.Header.Get(sessionHeader); sealed != "" {
			id, ok := h.sessions.open(claims.Issuer, claims.Subject, sealed)
			if !ok {
				return h.reject(w, r, rejection{status: http.StatusNotFound, desc: "Session not found", rpcCode: rpcInvalidRequest, logReason: "session bound to another identity"})
			}
			r.Header.Set(sessionHeader, id)
		}
		iss, sub, b := claims.Issuer, claims.Subject, h.sessions
		w = &sealingWriter{
			ResponseWriterWrapper: &caddyhttp.ResponseWriterWrapper{ResponseWriter: w},
			seal:                  func(id string) string { return b.seal(iss, sub, id) },
		}
	}

	setPlaceholders(r, claims, req.Method, req.Tool)
	if !h.ForwardToken {
		r.Header.Del("Authorization")
	}
	if ce := h.logger.Check(zapcore.DebugLevel, "token accepted"); ce != nil {
		ce.Write(zap.String("sub", claims.Subject), zap.String("iss", claims.Issuer), zap.String("client_id", claims.ClientID),
			zap.String("mcp_method", req.Method), zap.String("mcp_tool", req.Tool), zap.String("method", r.Method), zap.String("uri", r.URL.Path))
	}
	return next.ServeHTTP(w, r)
}

// maxPooledBody is the largest buffer kept for reuse: room for the default
// max_body and the reader's slack.
const maxPooledBody = 2<<20 + 4096

// bodyBuf holds an inspected request body and is the request's new Body,
// so re-reading it for the backend allocates nothing.
type bodyBuf struct {
	buf bytes.Buffer
	rd  bytes.Reader
}

func (b *bodyBuf) Read(p []byte) (int, error) { return b.rd.Read(p) }
func (b *bodyBuf) Close() error               { return nil }

var bodyPool = sync.Pool{New: func() any { return new(bodyBuf) }}

func putBody(b *bodyBuf) {
	if b.buf.Cap() <= maxPooledBody {
		b.buf.Reset()
		b.rd.Reset(nil)
		bodyPool.Put(b)
	}
}

// inspectBody reads the body (at most MaxBody bytes) into b, checks it with
// the policy inspector and puts the identical bytes back for the backend.
func (h *Handler) inspectBody(r *http.Request, b *bodyBuf) (policy.Request, []byte, *rejection) {
	limit := h.policy.MaxBody()
	if r.ContentLength > limit {
		return policy.Request{}, nil, h.tooLarge(limit)
	}
	b.buf.Reset()
	if r.ContentLength > 0 {
		// ReadFrom wants bytes.MinRead spare bytes before each read; with
		// them reserved the buffer is allocated once.
		b.buf.Grow(int(r.ContentLength) + bytes.MinRead)
	}
	_, err := b.buf.ReadFrom(io.LimitReader(r.Body, limit+1))
	if err != nil {
		rj := h.invalidRequest("The request body could not be read", "reading body: "+err.Error())
		return policy.Request{}, nil, &rj
	}
	if int64(b.buf.Len()) > limit {
		return policy.Request{}, nil, h.tooLarge(limit)
	}
	body := b.buf.Bytes()
	b.rd.Reset(body)
	r.Body = b
	req, err := h.policy.Inspect(body, r.Header.Get("Mcp-Method"), r.Header.Get("Mcp-Name"))
	if err != nil {
		rj := h.invalidRequest("The request is not a valid JSON-RPC message", err.Error())
		if errors.Is(err, policy.ErrHeaderMismatch) {
			rj.desc = "The Mcp-Method or Mcp-Name header does not match the request body"
			rj.rpcCode = rpcHeaderMismatch
		}
		return policy.Request{}, nil, &rj
	}
	return req, body, nil
}

func (h *Handler) tooLarge(limit int64) *rejection {
	return &rejection{status: http.StatusRequestEntityTooLarge, desc: fmt.Sprintf("The request body is larger than %d bytes", limit), rpcCode: rpcInvalidRequest, logReason: "body too large"}
}

func (h *Handler) noToken(why string) rejection {
	return rejection{status: http.StatusUnauthorized, challenge: h.challenges.noToken, desc: "An access token is required", rpcCode: rpcUnauthorized, logReason: why}
}

func (h *Handler) invalidToken(reason validator.Reason) rejection {
	return rejection{status: http.StatusUnauthorized, challenge: h.challenges.invalid[reason], oauthErr: metadata.ErrInvalidToken, desc: reason.Description(), rpcCode: rpcUnauthorized, logReason: reason.String()}
}

func (h *Handler) invalidRequest(desc, why string) rejection {
	return rejection{status: http.StatusBadRequest, challenge: h.challenges.invalidRequest, oauthErr: metadata.ErrInvalidRequest, desc: desc, rpcCode: rpcInvalidRequest, logReason: why}
}

// stepUp builds the RFC 9470 401 or the RFC 6750 403 for a policy refusal.
func (h *Handler) stepUp(d policy.Decision, body []byte, req policy.Request) rejection {
	c := metadata.Challenge{
		Error:            d.Outcome.String(),
		ErrorDescription: d.Description,
		Scope:            d.ChallengeScope,
		ResourceMetadata: h.prmURL,
	}
	rj := rejection{status: http.StatusForbidden, oauthErr: d.Outcome.String(), desc: d.Description, rpcCode: rpcInsufficientScope,
		logReason: d.Outcome.String() + ": missing " + strings.Join(d.Missing, " ")}
	if d.Outcome == policy.InsufficientUserAuthentication {
		rj.status = http.StatusUnauthorized
		rj.rpcCode = rpcInsufficientAuthN
		rj.logReason = d.Outcome.String()
		c.ACRValues = d.ACRValues
		c.MaxAge, c.HasMaxAge = d.MaxAge, d.MaxAge >= 0
	}
	rj.challenge = c.String()
	if req.Len() == 1 && !req.Batch() {
		rj.id = requestID(body)
	}
	return rj
}

const exposedHeaders = "WWW-Authenticate, Mcp-Session-Id, MCP-Protocol-Version"

func setPreflightHeaders(hdr http.Header) {
	hdr.Set("Access-Control-Allow-Methods", "GET, POST, DELETE, OPTIONS")
	hdr.Set("Access-Control-Allow-Headers", "Authorization, Content-Type, Accept, Mcp-Session-Id, MCP-Protocol-Version, Last-Event-ID, Mcp-Method, Mcp-Name")
	hdr.Set("Access-Control-Max-Age", "86400")
}

func (h *Handler) originAllowed(origin string) bool {
	if h.allowAny {
		return true
	}
	if _, ok := h.allowed[origin]; ok {
		return true
	}
	// Browsers serialise origins in lower case without default ports, but
	// be tolerant of other clients.
	n, err := metadata.Origin(origin)
	if err != nil {
		return false
	}
	_, ok := h.allowed[n]
	return ok
}

// stripQueryToken removes access_token query parameters from the request.
func stripQueryToken(r *http.Request) {
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil || !q.Has("access_token") {
		return
	}
	q.Del("access_token")
	r.URL.RawQuery = q.Encode()
	r.RequestURI = r.URL.RequestURI()
}

// formHasToken reports whether a form-encoded body carries access_token
// (RFC 6750 §2.2). The body is restored for the backend.
func formHasToken(r *http.Request) bool {
	if r.Body == nil || r.Body == http.NoBody {
		return false
	}
	ct := r.Header.Get("Content-Type")
	if ct == "" || !strings.Contains(strings.ToLower(ct), "x-www-form-urlencoded") {
		return false
	}
	if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/x-www-form-urlencoded" {
		return false
	}
	buf, err := io.ReadAll(io.LimitReader(r.Body, maxFormPeek+1))
	r.Body = struct {
		io.Reader
		io.Closer
	}{io.MultiReader(bytes.NewReader(buf), r.Body), r.Body}
	if err != nil || len(buf) > maxFormPeek {
		return false
	}
	q, err := url.ParseQuery(string(buf))
	return err == nil && q.Has("access_token")
}

// serveMetadata answers requests under the well-known prefix: its own
// document, the root document when this origin has one resource, and 404
// for other paths, unless another mcp_auth handler of this origin owns the
// path, in which case the request goes on to reach it.
func (h *Handler) serveMetadata(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	p := r.URL.Path
	switch {
	case p == h.prmPath:
	case p == metadata.WellKnownPrefix || p == metadata.WellKnownPrefix+"/":
		// With several resources on one origin no single answer is right.
		if !rootUnambiguous(h.rootOrigin) {
			return caddyhttp.Error(http.StatusNotFound, errors.New("several resources on this host; use the path-specific metadata URL"))
		}
	case ownedElsewhere(h.rootOrigin, p):
		return next.ServeHTTP(w, r)
	default:
		return caddyhttp.Error(http.StatusNotFound, errors.New("no such protected resource"))
	}
	hdr := w.Header()
	hdr.Set("Access-Control-Allow-Origin", "*")
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		hdr.Set("Content-Type", "application/json")
		hdr.Set("Cache-Control", metadataMaxAge)
		hdr.Set("Content-Length", strconv.Itoa(len(h.prmDoc)))
		w.WriteHeader(http.StatusOK)
		if r.Method == http.MethodGet {
			_, _ = w.Write(h.prmDoc)
		}
		return nil
	case http.MethodOptions:
		hdr.Set("Access-Control-Allow-Methods", "GET, HEAD, OPTIONS")
		hdr.Set("Access-Control-Allow-Headers", "MCP-Protocol-Version, Content-Type")
		hdr.Set("Access-Control-Max-Age", "86400")
		w.WriteHeader(http.StatusNoContent)
		return nil
	default:
		hdr.Set("Allow", "GET, HEAD, OPTIONS")
		return caddyhttp.Error(http.StatusMethodNotAllowed, errors.New("metadata is read with GET"))
	}
}

// setPlaceholders publishes the verified identity for later handlers and
// the access log. One lazy provider serves every http.auth.user.* name, so
// a request pays for a placeholder only when something reads it.
func setPlaceholders(r *http.Request, c *validator.Claims, mcpMethod, mcpTool string) {
	repl, ok := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)
	if !ok {
		return
	}
	repl.Map(func(key string) (any, bool) {
		name, ok := strings.CutPrefix(key, "http.auth.user.")
		if !ok {
			switch key {
			case "http.auth.mcp.method":
				return mcpMethod, true
			case "http.auth.mcp.tool":
				return mcpTool, true
			}
			return nil, false
		}
		switch name {
		case "id":
			return c.Subject, true
		case "client_id":
			return c.ClientID, true
		case "scope":
			return c.Scope, true
		case "iss":
			return c.Issuer, true
		}
		return c.StringClaim(name)
	})
}

// Root-document bookkeeping: which resources each origin has, across all
// loaded handlers, so the root metadata URL is answered only when it names
// exactly one resource.
var roots = struct {
	sync.Mutex
	m map[string]map[string]int
}{m: map[string]map[string]int{}}

func registerRoot(origin, resource string) {
	roots.Lock()
	defer roots.Unlock()
	if roots.m[origin] == nil {
		roots.m[origin] = map[string]int{}
	}
	roots.m[origin][resource]++
}

func unregisterRoot(origin, resource string) {
	roots.Lock()
	defer roots.Unlock()
	if n := roots.m[origin][resource]; n > 1 {
		roots.m[origin][resource] = n - 1
		return
	}
	delete(roots.m[origin], resource)
	if len(roots.m[origin]) == 0 {
		delete(roots.m, origin)
	}
}

// ownedElsewhere reports whether some loaded handler of this origin serves
// its metadata at path p.
func ownedElsewhere(origin, p string) bool {
	roots.Lock()
	defer roots.Unlock()
	for res := range roots.m[origin] {
		if wk, err := metadata.WellKnownPath(res); err == nil && wk == p {
			return true
		}
	}
	return false
}

func rootUnambiguous(origin string) bool {
	roots.Lock()
	defer roots.Unlock()
	return len(roots.m[origin]) <= 1
}

// Interface guards
var (
	_ caddy.Provisioner           = (*Handler)(nil)
	_ caddy.Validator             = (*Handler)(nil)
	_ caddy.CleanerUpper          = (*Handler)(nil)
	_ caddyhttp.MiddlewareHandler = (*Handler)(nil)
)
