package mcpauth

import (
	"context"
	"errors"

	"github.com/mcpauth/caddy-mcp-auth/introspect"
	"github.com/mcpauth/caddy-mcp-auth/validator"
)

// introspectedIssuer is an issuer whose tokens may be checked by RFC 7662
// introspection.
type introspectedIssuer struct {
	issuer string
	always bool
	in     *introspect.Introspector
}

// authenticate checks a bearer token. A JWS-shaped token is validated
// locally, unless its issuer is configured with `introspect always`; any
// other (opaque) token goes to introspection, trying the issuers that have
// it in configuration order. Errors are *validator.Error; a temporary one
// (an endpoint or key set that could not be reached) means 503.
func (h *Handler) authenticate(ctx context.Context, tok string) (*validator.Claims, error) {
	// Without introspection every token is a JWT or nothing: the validator's
	// own cache lookup comes first, so a repeated token is not scanned again.
	if len(h.introspected) == 0 {
		return h.validator.Validate(ctx, tok)
	}
	if validator.PreCheck(tok) == nil {
		if h.introspectAlways != nil {
			if iss, ok := validator.PeekIssuer(tok); ok {
				if in := h.introspectAlways[iss]; in != nil {
					return in.Introspect(ctx, tok)
				}
			}
		}
		return h.validator.Validate(ctx, tok)
	}
	var refused, temporary error
	for _, ii := range h.introspected {
		c, err := ii.in.Introspect(ctx, tok)
		if err == nil {
			return c, nil
		}
		var ve *validator.Error
		if errors.As(err, &ve) && ve.Temporary {
			temporary = err
		} else if refused == nil {
			refused = err
		}
	}
	// If an issuer that could not be asked might have vouched for the
	// token, the answer is "try again", not "invalid".
	if temporary != nil {
		return nil, temporary
	}
	return nil, refused
}
