package mcpauth

import (
	"fmt"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/mcpauth/caddy-mcp-auth/policy"
)

// Rule says what a JSON-RPC method or an MCP tool needs. A request matching
// the rule needs all of Scopes and, when ACR or MaxAge is set, a login that
// meets them (RFC 9470).
type Rule struct {
	// Patterns are exact names or globs (* any run, ? one character). For a
	// tool rule they match params.name of tools/call; for a method rule the
	// JSON-RPC method. The most specific matching rule wins: an exact name
	// beats any glob, then the glob with more literal characters, then the
	// rule written first.
	Patterns []string `json:"patterns,omitempty"`

	// Scopes are required in addition to require_scope.
	Scopes []string `json:"scopes,omitempty"`

	// ACR lists acceptable acr values, most preferred first; a token with
	// another acr gets 401 insufficient_user_authentication with acr_values.
	ACR []string `json:"acr,omitempty"`

	// MaxAge is the longest time since the user authenticated (auth_time);
	// an older or missing auth_time gets 401 insufficient_user_authentication
	// with max_age. Whole seconds.
	MaxAge caddy.Duration `json:"max_age,omitempty"`
}

func (h *Handler) compilePolicy() (*policy.Policy, error) {
	cfg := policy.Config{
		RequireScope:       h.RequireScope,
		ScopeImplies:       h.ScopeImplies,
		MaxBody:            h.MaxBody,
		ChallengeScopeMode: h.ChallengeScope,
	}
	conv := func(rules []Rule) []policy.Rule {
		out := make([]policy.Rule, 0, len(rules))
		for _, r := range rules {
			out = append(out, policy.Rule{Patterns: r.Patterns, Scopes: r.Scopes, ACR: r.ACR, MaxAge: time.Duration(r.MaxAge)})
		}
		return out
	}
	cfg.Methods = conv(h.Methods)
	cfg.Tools = conv(h.Tools)
	p, err := policy.Compile(cfg)
	if err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	}
	return p, nil
}
