package mcpauth

import (
	"strings"

	"github.com/mcpauth/caddy-mcp-auth/metadata"
	"github.com/mcpauth/caddy-mcp-auth/validator"
)

// challenges holds the WWW-Authenticate values that do not depend on the
// request, built once at provision time.
type challenges struct {
	prmURL string
	// noToken: no credentials, or a non-Bearer scheme. No error code
	// (RFC 6750 §3.1); scope says what to ask for (MCP 2025-11-25).
	noToken        string
	invalidRequest string
	invalid        []string // by validator.Reason
}

func newChallenges(prmURL, scope string) challenges {
	c := challenges{prmURL: prmURL}
	c.noToken = metadata.Challenge{Scope: scope, ResourceMetadata: prmURL}.String()
	c.invalidRequest = metadata.Challenge{
		Error:            metadata.ErrInvalidRequest,
		ErrorDescription: "The request carries more than one access token",
		ResourceMetadata: prmURL,
	}.String()
	reasons := validator.Reasons()
	c.invalid = make([]string, int(reasons[len(reasons)-1])+1)
	for _, r := range reasons {
		c.invalid[r] = metadata.Challenge{
			Error:            metadata.ErrInvalidToken,
			ErrorDescription: r.Description(),
			ResourceMetadata: prmURL,
		}.String()
	}
	return c
}

// insufficientScope builds the 403 challenge. Its scope names every scope
// the client needs to keep working, not only the missing one: the official
// TypeScript SDK client re-authorizes with exactly the challenge's scope,
// so a challenge naming only the missing scope would cost the client the
// scopes it already had. Held scopes are included only when this resource
// knows them (known), and never offline_access.
func (c challenges) insufficientScope(required []string, claims *validator.Claims, known []string) string {
	seen := map[string]bool{"offline_access": true}
	var scopes []string
	add := func(s string) {
		if !seen[s] {
			seen[s] = true
			scopes = append(scopes, s)
		}
	}
	for _, s := range required {
		add(s)
	}
	for _, s := range claims.Scopes {
		if contains(known, s) || contains(required, s) {
			add(s)
		}
	}
	return metadata.Challenge{
		Error:            metadata.ErrInsufficientScope,
		ErrorDescription: "The access token lacks a scope this request needs",
		Scope:            strings.Join(scopes, " "),
		ResourceMetadata: c.prmURL,
	}.String()
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
