package mcpauth

import (
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
