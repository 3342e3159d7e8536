package metadata

import "strings"

// Error codes used in Bearer challenges (RFC 6750 §3.1, RFC 9470 §3).
const (
	ErrInvalidRequest                 = "invalid_request"
	ErrInvalidToken                   = "invalid_token"
	ErrInsufficientScope              = "insufficient_scope"
	ErrInsufficientUserAuthentication = "insufficient_user_authentication"
)

// Challenge is one Bearer challenge for a WWW-Authenticate header. Empty
// fields are left out. MaxAge is emitted only when HasMaxAge is set, because
// max_age="0" is meaningful (RFC 9470 §3).
type Challenge struct {
	Error            string
	ErrorDescription string
	Scope            string
	ACRValues        string
	MaxAge           int64
	HasMaxAge        bool
	ResourceMetadata string
}

// String renders the challenge on one line: the scheme, then name="value"
// pairs joined by ", ", each parameter at most once (RFC 9110 §11.2,
// RFC 6750 §3). All values are quoted strings; characters that RFC 6750
// forbids in them (the double quote and backslash, and controls) are dropped
// rather than escaped, since several clients do not unescape.
func (c Challenge) String() string {
	var b strings.Builder
	b.Grow(64 + len(c.ErrorDescription) + len(c.Scope) + len(c.ResourceMetadata) + len(c.ACRValues))
	b.WriteString("Bearer")
	first := true
	param := func(name, value string) {
		if first {
			b.WriteByte(' ')
			first = false
		} else {
			b.WriteString(", ")
		}
		b.WriteString(name)
		b.WriteString(`="`)
		writeSafe(&b, value)
		b.WriteByte('"')
	}
	if c.Error != "" {
		param("error", c.Error)
	}
	if c.ErrorDescription != "" {
		param("error_description", c.ErrorDescription)
	}
	if c.Scope != "" {
		param("scope", c.Scope)
	}
	if c.ACRValues != "" {
		param("acr_values", c.ACRValues)
	}
	if c.HasMaxAge {
		var buf [20]byte
		n := c.MaxAge
		if n < 0 {
			n = 0
		}
		i := len(buf)
		for {
			i--
			buf[i] = byte('0' + n%10)
			n /= 10
			if n == 0 {
				break
			}
		}
		param("max_age", string(buf[i:]))
	}
	if c.ResourceMetadata != "" {
		param("resource_metadata", c.ResourceMetadata)
	}
	return b.String()
}

// writeSafe writes the characters of s that may appear inside a challenge
// parameter value: printable ASCII except '"' and '\' (RFC 6750 §3 allows
// %x20-21 / %x23-5B / %x5D-7E in error and error_description, and a subset of
// that in scope).
func writeSafe(b *strings.Builder, s string) {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
			continue
		}
		b.WriteByte(c)
	}
}

// SafeText reports whether s is made only of the characters writeSafe keeps,
// so that configuration can be rejected at load time instead of being
// silently altered.
func SafeText(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

// ValidScopeToken reports whether s is a valid scope-token (RFC 6749 §3.3:
// 1*( %x21 / %x23-5B / %x5D-7E )).
func ValidScopeToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= 0x20 || c > 0x7e || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}
