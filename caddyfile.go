package mcpauth

import (
	"strconv"
	"strings"
	"time"

	"github.com/dustin/go-humanize"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/mcpauth/caddy-mcp-auth/metadata"
)

func init() {
	httpcaddyfile.RegisterDirective("mcp_auth", parseCaddyfile)
	// After basic_auth: after rewrites and rate limits, before request_header
	// (which can then forward {http.auth.user.id}) and reverse_proxy.
	httpcaddyfile.RegisterDirectiveOrder("mcp_auth", httpcaddyfile.After, "basic_auth")
}

// parseCaddyfile sets up the handler from Caddyfile tokens. When the
// directive has a matcher, the route also matches the handler's metadata
// paths: `mcp_auth /mcp* {…}` must not hide /.well-known/oauth-protected-resource/mcp.
func parseCaddyfile(h httpcaddyfile.Helper) ([]httpcaddyfile.ConfigValue, error) {
	if !h.Next() {
		return nil, h.ArgErr()
	}
	matcherSet, err := h.ExtractMatcherSet()
	if err != nil {
		return nil, err
	}
	handler := new(Handler)
	if err := handler.UnmarshalCaddyfile(h.Dispenser); err != nil {
		return nil, err
	}
	routes := h.NewRoute(matcherSet, handler)
	if matcherSet != nil && len(routes) == 1 {
		// The whole well-known subtree: the handler answers its own document,
		// the root one, and 404 for paths no mcp_auth on this origin owns.
		paths := caddyhttp.MatchPath{metadata.WellKnownPrefix, metadata.WellKnownPrefix + "/*"}
		route := routes[0].Value.(caddyhttp.Route)
		route.MatcherSetsRaw = append(route.MatcherSetsRaw, caddy.ModuleMap{"path": h.JSON(paths)})
		routes[0].Value = route
	}
	return routes, nil
}

// UnmarshalCaddyfile sets up the handler from Caddyfile tokens. Syntax:
//
//	mcp_auth [<matcher>] {
//		resource <uri>
//		resource_name <text>
//		resource_documentation <url>
//		issuer <issuer-identifier> {
//			jwks_uri <url>
//			jwks_file <path>
//			audience <value...>
//			algorithms <alg...>
//			scope_claim <name>
//			require_typ
//			introspection_endpoint <url>
//			client_id <id>
//			client_secret <secret>
//			client_auth basic|post
//			introspection_cache <duration>
//			introspect always|opaque
//			allow_missing_audience
//		}
//		scopes_supported <scope...>
//		require_scope <scope...>
//		allow_origins <origin...>
//		forward_token
//		clock_skew <duration>
//		jwks_refresh <duration>
//		token_cache <entries>
//		method <jsonrpc-method-pattern> <scope...>
//		tool <tool-name-pattern> <scope...>
//		tool <tool-name-pattern...> {
//			scope <scope...>
//			acr <acr-value...>
//			max_age <duration>
//		}
//		scope_implies <scope> <implied-scope...>
//		max_body <size>
//		challenge_scope cumulative|operation
//		bind_sessions
//		session_key <secret>
//	}
//
// The issuer block is optional. Mistakes that can be seen without loading
// anything are reported here, with the file and line.
func (h *Handler) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // directive name
	if d.NextArg() {
		return d.Errf("mcp_auth takes no arguments other than a matcher; put settings in a block: mcp_auth { resource https://… }")
	}
	for d.NextBlock(0) {
		dir := d.Val()
		switch dir {
		case "resource":
			if !d.NextArg() {
				return d.Errf("resource: missing URL, e.g. resource https://mcp.example.com/mcp")
			}
			h.Resource = d.Val()
			if d.NextArg() {
				return d.Errf("resource: takes exactly one URL")
			}
			if err := checkResource(h.Resource); err != nil {
				return d.Errf("%v", err)
			}
		case "resource_name":
			args := d.RemainingArgs()
			if len(args) == 0 {
				return d.Errf("resource_name: missing text")
			}
			h.ResourceName = strings.Join(args, " ")
		case "resource_documentation":
			if !d.AllArgs(&h.ResourceDocumentation) {
				return d.Errf("resource_documentation: takes exactly one URL")
			}
		case "issuer":
			ic, err := parseIssuer(d)
			if err != nil {
				return err
			}
			h.Issuers = append(h.Issuers, ic)
		case "scopes_supported", "require_scope":
			args := d.RemainingArgs()
			if len(args) == 0 {
				return d.Errf("%s: missing scope", dir)
			}
			for _, s := range args {
				if !metadata.ValidScopeToken(s) {
					return d.Errf("%s: %q is not a valid scope (printable ASCII without space, '\"' or '\\')", dir, s)
				}
			}
			if dir == "require_scope" {
				h.RequireScope = append(h.RequireScope, args...)
			} else {
				h.ScopesSupported = append(h.ScopesSupported, args...)
			}
		case "allow_origins":
			args := d.RemainingArgs()
			if len(args) == 0 {
				return d.Errf("allow_origins: missing origin, e.g. allow_origins https://app.example.com (or *)")
			}
			h.AllowOrigins = append(h.AllowOrigins, args...)
		case "forward_token":
			if d.NextArg() {
				return d.Errf("forward_token: takes no arguments")
			}
			h.ForwardToken = true
		case "clock_skew", "jwks_refresh":
			var v string
			if !d.AllArgs(&v) {
				return d.Errf("%s: takes exactly one duration, e.g. %s 60s", dir, dir)
			}
			dur, err := caddy.ParseDuration(v)
			if err != nil {
				return d.Errf("%s: bad duration value %s: %v", dir, v, err)
			}
			if dir == "clock_skew" {
				h.ClockSkew = caddy.Duration(dur)
			} else {
				h.JWKSRefresh = caddy.Duration(dur)
			}
		case "token_cache":
			var v string
			if !d.AllArgs(&v) {
				return d.Errf("token_cache: takes one number of entries (0 turns the cache off)")
			}
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				return d.Errf("token_cache: %q is not a number of entries (0 turns the cache off)", v)
			}
			h.TokenCache = &n
		case "method", "tool":
			rule, err := parseRule(d, dir)
			if err != nil {
				return err
			}
			if dir == "method" {
				h.Methods = append(h.Methods, rule)
			} else {
				h.Tools = append(h.Tools, rule)
			}
		case "scope_implies":
			args := d.RemainingArgs()
			if len(args) < 2 {
				return d.Errf("scope_implies: takes a scope and the scopes it includes, e.g. scope_implies mcp:admin mcp:write mcp:read")
			}
			for _, sc := range args {
				if !metadata.ValidScopeToken(sc) {
					return d.Errf("scope_implies: %q is not a valid scope", sc)
				}
			}
			if h.ScopeImplies == nil {
				h.ScopeImplies = map[string][]string{}
			}
			h.ScopeImplies[args[0]] = append(h.ScopeImplies[args[0]], args[1:]...)
		case "max_body":
			var v string
			if !d.AllArgs(&v) {
				return d.Errf("max_body: takes one size, e.g. max_body 1MiB")
			}
			n, err := humanize.ParseBytes(v)
			if err != nil || n == 0 || n > 1<<30 {
				return d.Errf("max_body: %q is not a size between 1B and 1GiB (e.g. 512KiB, 1MiB)", v)
			}
			h.MaxBody = int64(n)
		case "challenge_scope":
			if !d.AllArgs(&h.ChallengeScope) || (h.ChallengeScope != "cumulative" && h.ChallengeScope != "operation") {
				return d.Errf("challenge_scope: takes cumulative or operation")
			}
		case "bind_sessions":
			if d.NextArg() {
				return d.Errf("bind_sessions: takes no arguments; set the key with session_key")
			}
			h.BindSessions = true
		case "session_key":
			if !d.AllArgs(&h.SessionKey) {
				return d.Errf("session_key: takes one secret, e.g. session_key {env.MCP_SESSION_KEY}")
			}
		default:
			return d.Errf("mcp_auth: unrecognized subdirective %q", dir)
		}
	}
	if h.Resource == "" {
		return d.Errf("mcp_auth: resource is required: the URL of the MCP endpoint as clients use it, e.g. resource https://mcp.example.com/mcp")
	}
	if len(h.Issuers) == 0 {
		return d.Errf("mcp_auth: at least one issuer is required, e.g. issuer https://idp.example.com")
	}
	return nil
}

// parseRule reads the one-line form `tool <pattern> <scope...>` or the
// block form, where every argument is a pattern:
//
//	tool <pattern...> {
//		scope <scope...>
//		acr <acr-value...>
//		max_age <duration>
//	}
func parseRule(d *caddyfile.Dispenser, dir string) (Rule, error) {
	var r Rule
	args := d.RemainingArgs()
	if len(args) == 0 {
		return r, d.Errf("%s: missing name pattern, e.g. %s delete_* mcp:admin", dir, dir)
	}
	block := false
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		block = true
		sub := d.Val()
		switch sub {
		case "scope":
			sc := d.RemainingArgs()
			if len(sc) == 0 {
				return r, d.Errf("%s: scope: missing scope", dir)
			}
			r.Scopes = append(r.Scopes, sc...)
		case "acr":
			acr := d.RemainingArgs()
			if len(acr) == 0 {
				return r, d.Errf("%s: acr: missing acr value, e.g. acr urn:example:mfa", dir)
			}
			for _, a := range acr {
				if !metadata.ValidScopeToken(a) {
					return r, d.Errf("%s: acr: %q has characters an acr_values challenge cannot carry", dir, a)
				}
			}
			r.ACR = append(r.ACR, acr...)
		case "max_age":
			var v string
			if !d.AllArgs(&v) {
				return r, d.Errf("%s: max_age: takes one duration, e.g. max_age 10m", dir)
			}
			dur, err := caddy.ParseDuration(v)
			if err != nil || dur <= 0 || dur%time.Second != 0 {
				return r, d.Errf("%s: max_age: %q must be a positive whole number of seconds, e.g. 300s or 10m", dir, v)
			}
			r.MaxAge = caddy.Duration(dur)
		default:
			return r, d.Errf("%s: unrecognized subdirective %q (scope, acr, max_age)", dir, sub)
		}
	}
	// An empty block ends on its closing brace without an iteration.
	if !block && d.Val() == "}" {
		block = true
	}
	if block {
		r.Patterns = args
		if len(r.Scopes) == 0 && len(r.ACR) == 0 && r.MaxAge == 0 {
			return r, d.Errf("%s %s: the block sets no scope, acr or max_age", dir, strings.Join(args, " "))
		}
	} else {
		if len(args) < 2 {
			return r, d.Errf("%s %s: name the scopes it needs, e.g. %s %s mcp:admin (or use a block for acr/max_age)", dir, args[0], dir, args[0])
		}
		r.Patterns, r.Scopes = args[:1], args[1:]
	}
	for _, sc := range r.Scopes {
		if !metadata.ValidScopeToken(sc) {
			return r, d.Errf("%s: %q is not a valid scope", dir, sc)
		}
	}
	return r, nil
}

func parseIssuer(d *caddyfile.Dispenser) (*IssuerConfig, error) {
	ic := new(IssuerConfig)
	if !d.NextArg() {
		return nil, d.Errf("issuer: missing issuer identifier, e.g. issuer https://idp.example.com")
	}
	ic.Issuer = d.Val()
	if d.NextArg() {
		return nil, d.Errf("issuer: takes one issuer identifier; repeat issuer for several authorization servers")
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		dir := d.Val()
		switch dir {
		case "jwks_uri":
			if !d.AllArgs(&ic.JWKSURI) {
				return nil, d.Errf("jwks_uri: takes exactly one URL")
			}
		case "jwks_file":
			if !d.AllArgs(&ic.JWKSFile) {
				return nil, d.Errf("jwks_file: takes exactly one path")
			}
		case "audience":
			args := d.RemainingArgs()
			if len(args) == 0 {
				return nil, d.Errf("audience: missing value")
			}
			ic.Audiences = append(ic.Audiences, args...)
		case "algorithms":
			args := d.RemainingArgs()
			if len(args) == 0 {
				return nil, d.Errf("algorithms: missing algorithm, e.g. algorithms RS256 ES256")
			}
			for _, a := range args {
				if err := checkAlgorithm(a); err != nil {
					return nil, d.Errf("algorithms: %v", err)
				}
			}
			ic.Algorithms = append(ic.Algorithms, args...)
		case "scope_claim":
			if !d.AllArgs(&ic.ScopeClaim) {
				return nil, d.Errf("scope_claim: takes one claim name, e.g. scope_claim scp")
			}
		case "require_typ":
			if d.NextArg() {
				return nil, d.Errf("require_typ: takes no arguments")
			}
			ic.RequireTyp = true
		case "introspection_endpoint":
			if !d.AllArgs(&ic.IntrospectionEndpoint) {
				return nil, d.Errf("introspection_endpoint: takes exactly one URL")
			}
		case "client_id":
			if !d.AllArgs(&ic.ClientID) {
				return nil, d.Errf("client_id: takes exactly one value")
			}
		case "client_secret":
			if !d.AllArgs(&ic.ClientSecret) {
				return nil, d.Errf("client_secret: takes exactly one value, e.g. client_secret {env.MCP_INTROSPECTION_SECRET}")
			}
		case "client_auth":
			if !d.AllArgs(&ic.ClientAuth) || (ic.ClientAuth != "basic" && ic.ClientAuth != "post") {
				return nil, d.Errf("client_auth: takes basic (client_secret_basic) or post (client_secret_post)")
			}
		case "introspection_cache":
			var v string
			if !d.AllArgs(&v) {
				return nil, d.Errf("introspection_cache: takes one duration, e.g. introspection_cache 60s")
			}
			dur, err := caddy.ParseDuration(v)
			if err != nil {
				return nil, d.Errf("introspection_cache: bad duration value %s: %v", v, err)
			}
			ic.IntrospectionCache = caddy.Duration(dur)
		case "introspect":
			if !d.AllArgs(&ic.Introspect) || (ic.Introspect != "always" && ic.Introspect != "opaque") {
				return nil, d.Errf("introspect: takes always or opaque")
			}
		case "allow_missing_audience":
			if d.NextArg() {
				return nil, d.Errf("allow_missing_audience: takes no arguments")
			}
			ic.AllowMissingAudience = true
		default:
			return nil, d.Errf("issuer: unrecognized subdirective %q", dir)
		}
	}
	if err := checkIssuer(ic); err != nil {
		return nil, d.Errf("%v", err)
	}
	if err := checkIntrospection(ic); err != nil {
		return nil, d.Errf("issuer %q: %v", ic.Issuer, err)
	}
	return ic, nil
}

// Interface guard
var _ caddyfile.Unmarshaler = (*Handler)(nil)
