// Package policy decides which OAuth scopes and which authentication
// strength (RFC 9470 acr / max_age) one HTTP request to an MCP endpoint
// needs, by reading its JSON-RPC body, and checks a validated token's grant
// against that requirement.
//
// The package is plain Go with no Caddy imports and no I/O. A handler uses
// it in four steps:
//
//	p, err := policy.Compile(cfg)                   // once, when provisioning
//	req, err := p.Inspect(body, hdrMethod, hdrName) // per request, if p.NeedsBody()
//	need := p.Requirements(req)                     // scopes, acr, max_age
//	d := p.Check(need, grant, time.Now())           // after token validation
//
// Inspect errors map to 400 (ErrMalformed, ErrHeaderMismatch) or 413
// (ErrTooLarge); Check outcomes to 401 insufficient_user_authentication or
// 403 insufficient_scope. A compiled Policy is immutable and safe for
// concurrent use.
package policy

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// DefaultMaxBody is the largest request body inspected when Config.MaxBody
// is zero.
const DefaultMaxBody = 1 << 20

// offlineAccess is the scope that asks an authorization server for a refresh
// token. It is not a permission on the resource, and the MCP authorization
// spec says resource servers should not advertise it or put it in
// challenges.
const offlineAccess = "offline_access"

// Challenge scope modes; see Config.ChallengeScopeMode.
const (
	ChallengeScopeCumulative = "cumulative"
	ChallengeScopeOperation  = "operation"
)

// Rule gives the requirements for the JSON-RPC methods or tool names that
// match any of its patterns.
type Rule struct {
	// Patterns are exact names or globs. In a glob, * matches any run of
	// characters (including none) and ? exactly one character; \*, \? and
	// \\ stand for the literal character. Matching is case-sensitive.
	// Required; at least one pattern.
	Patterns []string `json:"patterns"`

	// Scopes are all required (in addition to require_scope). Each must be
	// an RFC 6749 scope-token. A rule needs at least one of scopes, acr or
	// max_age.
	Scopes []string `json:"scopes,omitempty"`

	// ACR lists the acceptable authentication context class references,
	// most preferred first; the token's acr claim must be one of them. When
	// a request matches several rules with acr lists, the token must satisfy
	// all of them (the lists are intersected). Default: any acr, or none.
	ACR []string `json:"acr,omitempty"`

	// MaxAge is the longest time allowed since the user last authenticated
	// (the token's auth_time claim). It must be a whole number of seconds,
	// because RFC 9470 carries it as integer seconds in the challenge. When
	// several matching rules set it, the smallest applies. In JSON it is an
	// integer number of nanoseconds (time.Duration); the Caddy handler
	// converts from caddy.Duration. Default: 0, no limit (so a limit of
	// zero cannot be expressed; reject "max_age 0" when parsing).
	MaxAge time.Duration `json:"max_age,omitempty"`
}

// Config is the uncompiled policy, as built by the Caddyfile parser or read
// from JSON.
type Config struct {
	// RequireScope lists scopes every request needs. Default: none.
	RequireScope []string `json:"require_scope,omitempty"`

	// Methods are rules keyed by JSON-RPC method name. For each message only
	// the most specific matching rule applies: an exact pattern beats any
	// glob, a glob with more literal characters beats one with fewer, and
	// ties go to the rule declared first. Default: none.
	Methods []Rule `json:"methods,omitempty"`

	// Tools are rules keyed by the tool name of tools/call requests
	// (params.name), selected the same way as Methods. A tools/call request
	// needs the union of the selected method rule (if any) and the selected
	// tool rule (if any). Default: none.
	Tools []Rule `json:"tools,omitempty"`

	// ScopeImplies maps a scope to scopes it grants implicitly, so that
	// mcp:admin can satisfy a rule asking for mcp:write. Implication is
	// transitive and cycles are allowed. It applies to the token's scopes
	// only; it never widens what a rule requires. Default: none.
	ScopeImplies map[string][]string `json:"scope_implies,omitempty"`

	// MaxBody is the largest request body, in bytes, that is inspected.
	// Larger bodies are rejected (Inspect returns ErrTooLarge). Default:
	// 1 MiB.
	MaxBody int64 `json:"max_body,omitempty"`

	// ChallengeScopeMode selects the scope value of insufficient_scope
	// challenges. "cumulative" (the default) asks for require_scope, the
	// scopes the denied operation needs, and the scopes the token already
	// holds that this policy knows: the MCP 2025-11-25 recommendation, and
	// what clients need when they re-authorize with exactly the challenged
	// scope (the official TypeScript SDK does) and would otherwise lose
	// scopes they hold. "operation" asks only for require_scope and the
	// operation's scopes, as the draft specification describes for clients
	// that union the challenge with what they hold. Default: "cumulative".
	ChallengeScopeMode string `json:"challenge_scope,omitempty"`
}

// effect is a precomputed, merged requirement: require_scope plus every
// rule that applies to one kind of message. Precomputing one effect per
// (method rule) and per (tools/call method rule, tool rule) pair means the
// common single-message request needs no allocation at all.
type effect struct {
	scopes      []string
	acr         []string
	maxAge      time.Duration
	hasMaxAge   bool
	acrConflict bool
	acrSet      bool // some merged rule constrained acr
}

// merge folds rule requirements into e: scopes are unioned, acr lists
// intersected (keeping e's order of preference), max_age minimised.
func (e *effect) merge(scopes, acr []string, maxAge time.Duration) {
	for _, sc := range scopes {
		if !slices.Contains(e.scopes, sc) {
			e.scopes = append(e.scopes, sc)
		}
	}
	if len(acr) > 0 {
		switch {
		case e.acrConflict:
		case !e.acrSet:
			e.acr = append([]string(nil), acr...)
		default:
			kept := e.acr[:0:0]
			for _, v := range e.acr {
				if slices.Contains(acr, v) {
					kept = append(kept, v)
				}
			}
			e.acr = kept
			if len(kept) == 0 {
				e.acrConflict = true
				e.acr = nil
			}
		}
		e.acrSet = true
	}
	if maxAge > 0 && (!e.hasMaxAge || maxAge < e.maxAge) {
		e.maxAge, e.hasMaxAge = maxAge, true
	}
}

func (e *effect) mergeEffect(o *effect) {
	e.merge(o.scopes, nil, 0)
	if o.acrConflict {
		e.acrConflict, e.acrSet, e.acr = true, true, nil
	} else if o.acrSet {
		e.merge(nil, o.acr, 0)
	}
	if o.hasMaxAge {
		e.merge(nil, nil, o.maxAge)
	}
}

// Policy is a compiled Config.
type Policy struct {
	maxBody      int64
	cumulative   bool
	requireScope []string
	allScopes    []string            // sorted, without offline_access
	known        map[string]struct{} // set of allScopes
	impliedBy    map[string][]string // scope -> scopes that imply it (transitively)

	methods   matcher
	tools     matcher
	methodEff []effect // per method rule: require_scope + the rule
	toolEff   []effect // per tool rule: require_scope + tools/call method rule + the rule
	base      effect   // require_scope only
	toolsCall *effect  // tools/call with no matching tool rule

	// Names Inspect can return without allocating a string.
	methodNames map[string]string
	toolNames   map[string]string
}

// Compile validates cfg and builds a Policy. Errors name the directive and
// pattern at fault, e.g. `tool "delete_*": ...`.
func Compile(cfg Config) (*Policy, error) {
	p := &Policy{maxBody: cfg.MaxBody}
	switch {
	case cfg.MaxBody < 0:
		return nil, fmt.Errorf("max_body: must not be negative, got %d", cfg.MaxBody)
	case cfg.MaxBody == 0:
		p.maxBody = DefaultMaxBody
	}
	switch cfg.ChallengeScopeMode {
	case "", ChallengeScopeCumulative:
		p.cumulative = true
	case ChallengeScopeOperation:
	default:
		return nil, fmt.Errorf("challenge_scope: unknown mode %q (want %q or %q)",
			cfg.ChallengeScopeMode, ChallengeScopeCumulative, ChallengeScopeOperation)
	}

	all := map[string]struct{}{}
	if err := checkScopes(cfg.RequireScope); err != nil {
		return nil, fmt.Errorf("require_scope: %w", err)
	}
	p.base.merge(cfg.RequireScope, nil, 0)
	p.requireScope = p.base.scopes
	for _, sc := range p.requireScope {
		all[sc] = struct{}{}
	}

	if err := compileRules("method", cfg.Methods, &p.methods, all); err != nil {
		return nil, err
	}
	if err := compileRules("tool", cfg.Tools, &p.tools, all); err != nil {
		return nil, err
	}

	impliedBy, err := closeImplies(cfg.ScopeImplies, all)
	if err != nil {
		return nil, err
	}
	p.impliedBy = impliedBy

	// Precompute effects. Slices are cut to len == cap so a caller that
	// appends to Requirement.Scopes gets a copy instead of corrupting them.
	p.methodEff = make([]effect, len(cfg.Methods))
	for i, r := range cfg.Methods {
		e := cloneEffect(&p.base)
		e.merge(r.Scopes, r.ACR, r.MaxAge)
		p.methodEff[i] = e
	}
	p.toolsCall = &p.base
	if i := p.methods.match("tools/call"); i >= 0 {
		p.toolsCall = &p.methodEff[i]
	}
	p.toolEff = make([]effect, len(cfg.Tools))
	for i, r := range cfg.Tools {
		e := cloneEffect(p.toolsCall)
		e.merge(r.Scopes, r.ACR, r.MaxAge)
		p.toolEff[i] = e
	}
	clip(&p.base)
	for i := range p.methodEff {
		clip(&p.methodEff[i])
	}
	for i := range p.toolEff {
		clip(&p.toolEff[i])
	}

	delete(all, offlineAccess) // cannot be present, but keep the invariant local
	p.known = all
	p.allScopes = make([]string, 0, len(all))
	for sc := range all {
		p.allScopes = append(p.allScopes, sc)
	}
	slices.Sort(p.allScopes)
	buildInterns(p)
	return p, nil
}

func cloneEffect(e *effect) effect {
	c := *e
	c.scopes = slices.Clone(e.scopes)
	c.acr = slices.Clone(e.acr)
	return c
}

func clip(e *effect) {
	e.scopes = slices.Clip(e.scopes)
	e.acr = slices.Clip(e.acr)
}

func compileRules(directive string, rules []Rule, m *matcher, all map[string]struct{}) error {
	for i, r := range rules {
		name := ruleName(directive, r.Patterns)
		if len(r.Patterns) == 0 {
			return fmt.Errorf("%s rule %d: no patterns", directive, i+1)
		}
		for _, pat := range r.Patterns {
			g, err := parseGlob(pat)
			if err != nil {
				return fmt.Errorf("%s: bad pattern %s: %w", name, quote(pat), err)
			}
			if err := m.add(g, i); err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
		}
		if len(r.Scopes) == 0 && len(r.ACR) == 0 && r.MaxAge == 0 {
			return fmt.Errorf("%s: needs at least one of scope, acr or max_age", name)
		}
		if err := checkScopes(r.Scopes); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		for _, v := range r.ACR {
			if !isToken(v) {
				return fmt.Errorf("%s: invalid acr value %s: must be non-empty printable ASCII without space, '\"' or '\\'", name, quote(v))
			}
		}
		if r.MaxAge < 0 {
			return fmt.Errorf("%s: max_age must not be negative, got %v", name, r.MaxAge)
		}
		if r.MaxAge%time.Second != 0 {
			return fmt.Errorf("%s: max_age must be a whole number of seconds, got %v", name, r.MaxAge)
		}
		for _, sc := range r.Scopes {
			all[sc] = struct{}{}
		}
	}
	m.finish()
	return nil
}

// ruleName renders a rule the way it is written in a Caddyfile, for errors.
func ruleName(directive string, patterns []string) string {
	var b strings.Builder
	b.WriteString(directive)
	for _, pat := range patterns {
		b.WriteByte(' ')
		b.WriteString(quote(pat))
	}
	return b.String()
}

func quote(s string) string { return strconv.Quote(s) }

// isToken reports whether s is an RFC 6749 scope-token:
// 1*( %x21 / %x23-5B / %x5D-7E ), i.e. printable ASCII except space, '"'
// and '\'. The same set is safe inside a quoted-string challenge parameter
// without escaping, which is why acr values are held to it too.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x21 || c > 0x7e || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

func checkScopes(scopes []string) error {
	for _, sc := range scopes {
		if !isToken(sc) {
			return fmt.Errorf("invalid scope %s: must be non-empty printable ASCII without space, '\"' or '\\' (RFC 6749 scope-token)", quote(sc))
		}
		if sc == offlineAccess {
			return errors.New("offline_access asks for a refresh token, it is not a permission a request can require")
		}
	}
	return nil
}

// closeImplies validates scope_implies, adds its scopes to all and returns,
// for every scope, the scopes that imply it directly or transitively.
func closeImplies(implies map[string][]string, all map[string]struct{}) (map[string][]string, error) {
	keys := make([]string, 0, len(implies))
	for k := range implies {
		keys = append(keys, k)
	}
	slices.Sort(keys) // deterministic errors and output
	for _, k := range keys {
		name := "scope_implies " + quote(k)
		if err := checkScopes([]string{k}); err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		if len(implies[k]) == 0 {
			return nil, fmt.Errorf("%s: needs at least one implied scope", name)
		}
		if err := checkScopes(implies[k]); err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		all[k] = struct{}{}
		for _, v := range implies[k] {
			all[v] = struct{}{}
		}
	}
	impliedBy := map[string][]string{}
	for _, k := range keys {
		// Depth-first walk from k; the seen set makes cycles terminate.
		seen := map[string]bool{k: true}
		stack := []string{k}
		for len(stack) > 0 {
			cur := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			for _, next := range implies[cur] {
				if !seen[next] {
					seen[next] = true
					stack = append(stack, next)
					impliedBy[next] = append(impliedBy[next], k)
				}
			}
		}
	}
	for k := range impliedBy {
		slices.Sort(impliedBy[k])
	}
	return impliedBy, nil
}

// NeedsBody reports whether any method or tool rule exists. Only then does
// the decision depend on the body; otherwise the caller can skip reading it
// (and Requirements of a zero Request gives require_scope alone).
func (p *Policy) NeedsBody() bool { return !p.methods.empty() || !p.tools.empty() }

// MaxBody returns the largest body Inspect accepts, in bytes.
func (p *Policy) MaxBody() int64 { return p.maxBody }

// AllScopes returns every scope named by require_scope, a rule or
// scope_implies, sorted and deduplicated; suitable for scopes_supported in
// protected resource metadata. offline_access is never included.
func (p *Policy) AllScopes() []string { return slices.Clone(p.allScopes) }

// Requirement is what one request needs. The slices may be shared with the
// Policy and must not be modified.
type Requirement struct {
	// Scopes lists require_scope first, then the scopes of every matching
	// rule, deduplicated.
	Scopes []string
	// ACR lists the acceptable acr values, most preferred first; empty means
	// any (unless ACRConflict).
	ACR []string
	// ACRConflict is set when the request matched rules whose acr lists have
	// nothing in common (possible in a batch), so no token can satisfy it.
	ACRConflict bool
	// MaxAge is the longest allowed time since authentication, valid when
	// HasMaxAge.
	MaxAge    time.Duration
	HasMaxAge bool
	// Method and Tool are those of the first message, for placeholders and
	// logs. Tool is set only for tools/call.
	Method, Tool string
}

// effectFor returns the precomputed requirement of one message.
func (p *Policy) effectFor(m *Message) *effect {
	switch {
	case m.Response:
		return &p.base
	case m.Method == "tools/call":
		if i := p.tools.match(m.Tool); i >= 0 {
			return &p.toolEff[i]
		}
		return p.toolsCall
	}
	if i := p.methods.match(m.Method); i >= 0 {
		return &p.methodEff[i]
	}
	return &p.base
}

// Requirements returns the union of require_scope and every rule matching
// any message of req. A zero Request (body not inspected) yields
// require_scope alone. It does not allocate for single-message requests.
func (p *Policy) Requirements(req Request) Requirement {
	var e *effect
	switch req.n {
	case 0:
		e = &p.base
	case 1:
		e = p.effectFor(&req.first)
	default:
		merged := cloneEffect(p.effectFor(&req.first))
		for i := range req.more {
			merged.mergeEffect(p.effectFor(&req.more[i]))
		}
		e = &merged
	}
	return Requirement{
		Scopes:      e.scopes,
		ACR:         e.acr,
		ACRConflict: e.acrConflict,
		MaxAge:      e.maxAge,
		HasMaxAge:   e.hasMaxAge,
		Method:      req.first.Method,
		Tool:        req.first.Tool,
	}
}

// Grant is what a validated access token carries.
type Grant struct {
	// Scopes from the token (scope claim split on spaces, or the configured
	// alternative claim), as granted; scope_implies is applied by Check.
	Scopes []string
	// ACR is the token's acr claim; empty if absent.
	ACR string
	// AuthTime is the token's auth_time claim; the zero Time if absent.
	AuthTime time.Time
}

// Outcome is the result of Check.
type Outcome uint8

const (
	// Allow: the token satisfies the requirement.
	Allow Outcome = iota
	// InsufficientUserAuthentication: the acr or auth_time requirement is
	// not met. Respond 401 with error="insufficient_user_authentication"
	// (RFC 9470), acr_values and max_age.
	InsufficientUserAuthentication
	// InsufficientScope: a required scope is missing. Respond 403 with
	// error="insufficient_scope" and scope.
	InsufficientScope
)

// String returns the OAuth error code of the outcome ("" for Allow).
func (o Outcome) String() string {
	switch o {
	case InsufficientUserAuthentication:
		return "insufficient_user_authentication"
	case InsufficientScope:
		return "insufficient_scope"
	}
	return ""
}

// Decision is the result of Check, with the challenge parameters ready to
// be quoted into WWW-Authenticate.
type Decision struct {
	Outcome Outcome
	// Missing lists the required scopes the token lacks after scope_implies
	// expansion, in requirement order. Set on every non-Allow outcome.
	Missing []string
	// ChallengeScope is the space-separated scope parameter for the
	// challenge (see Config.ChallengeScopeMode). Never contains
	// offline_access. Set on every non-Allow outcome; RFC 9470 allows scope
	// in an insufficient_user_authentication challenge, and sending it lets
	// the client fix both problems in one authorization.
	ChallengeScope string
	// ACRValues is the space-separated acr_values parameter, most preferred
	// first. Set only for InsufficientUserAuthentication with an acr
	// requirement.
	ACRValues string
	// MaxAge is the max_age parameter in seconds, or -1 when there is none.
	// Set only for InsufficientUserAuthentication.
	MaxAge int64
	// Description is a short English error_description. It only contains
	// characters allowed there (%x20-21 / %x23-5B / %x5D-7E).
	Description string
}

// Check decides whether grant satisfies req at time now. Per RFC 9470 the
// authentication-strength requirement is checked first: a token from a weak
// or stale login gets a 401 step-up challenge even if its scopes are also
// short, because the scopes are requested again in that authorization
// anyway. The allow path does not allocate.
func (p *Policy) Check(req Requirement, granted Grant, now time.Time) Decision {
	d := Decision{Outcome: Allow, MaxAge: -1}
	switch {
	case req.ACRConflict:
		d.Outcome = InsufficientUserAuthentication
		d.Description = "The operations in this request need incompatible authentication levels; send them separately"
	case len(req.ACR) > 0 && !slices.Contains(req.ACR, granted.ACR):
		d.Outcome = InsufficientUserAuthentication
		d.Description = "A different authentication level is required"
	case req.HasMaxAge && (granted.AuthTime.IsZero() || now.Sub(granted.AuthTime) > req.MaxAge):
		d.Outcome = InsufficientUserAuthentication
		d.Description = "A more recent authentication is required"
	}
	if d.Outcome == InsufficientUserAuthentication {
		d.ACRValues = strings.Join(req.ACR, " ")
		if req.HasMaxAge {
			d.MaxAge = int64(req.MaxAge / time.Second)
		}
		d.Missing = p.missing(req.Scopes, granted.Scopes)
		d.ChallengeScope = p.ChallengeScope(req, granted.Scopes)
		return d
	}
	if !p.hasAll(req.Scopes, granted.Scopes) {
		d.Outcome = InsufficientScope
		d.Missing = p.missing(req.Scopes, granted.Scopes)
		d.ChallengeScope = p.ChallengeScope(req, granted.Scopes)
		label := "Missing required scope: "
		if len(d.Missing) > 1 {
			label = "Missing required scopes: "
		}
		d.Description = label + strings.Join(d.Missing, " ")
	}
	return d
}

// satisfied reports whether the granted scopes, expanded by scope_implies,
// include want. Comparing against the precomputed list of scopes that imply
// want keeps this allocation-free.
func (p *Policy) satisfied(want string, granted []string) bool {
	implying := p.impliedBy[want]
	for _, g := range granted {
		if g == want || slices.Contains(implying, g) {
			return true
		}
	}
	return false
}

func (p *Policy) hasAll(required, granted []string) bool {
	for _, want := range required {
		if !p.satisfied(want, granted) {
			return false
		}
	}
	return true
}

func (p *Policy) missing(required, granted []string) []string {
	var out []string
	for _, want := range required {
		if !p.satisfied(want, granted) {
			out = append(out, want)
		}
	}
	return out
}

// ChallengeScope returns the scope parameter for a challenge about req to a
// client holding granted (nil for a request without a token):
// require_scope, then req.Scopes, then — in cumulative mode — the granted
// scopes this policy knows, in granted order. Deduplicated, never
// offline_access, and only scope-token characters, so it can be placed in a
// quoted-string as is.
func (p *Policy) ChallengeScope(req Requirement, granted []string) string {
	out := make([]string, 0, len(p.requireScope)+len(req.Scopes)+len(granted))
	add := func(sc string) {
		if sc != offlineAccess && isToken(sc) && !slices.Contains(out, sc) {
			out = append(out, sc)
		}
	}
	for _, sc := range p.requireScope {
		add(sc)
	}
	for _, sc := range req.Scopes {
		add(sc)
	}
	if p.cumulative {
		for _, sc := range granted {
			if _, ok := p.known[sc]; ok {
				add(sc)
			}
		}
	}
	return strings.Join(out, " ")
}
