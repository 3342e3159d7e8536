package introspect

import (
	"bytes"
	"encoding/json"
	"math"
	"strings"

	"github.com/mcpauth/caddy-mcp-auth/validator"
)

// response is the part of an introspection answer (RFC 7662 §2.2) acted on.
// Members that decide whether the token is accepted must have the right
// type, or the whole answer is unusable; descriptive members of another
// type are ignored.
type response struct {
	Active    *bool                   `json:"active"`
	Iss       *string                 `json:"iss"`
	Aud       validator.StringOrArray `json:"aud"`
	Exp       *validator.NumericDate  `json:"exp"`
	Nbf       *validator.NumericDate  `json:"nbf"`
	TokenType *string                 `json:"token_type"`
	Cnf       json.RawMessage         `json:"cnf"`
	Scope     validator.StringOrArray `json:"scope"`
	Sub       looseString             `json:"sub"`
	ClientID  looseString             `json:"client_id"`
	Acr       looseString             `json:"acr"`
	AuthTime  looseDate               `json:"auth_time"`
	Jti       looseString             `json:"jti"`
}

// check applies RFC 7662 and the resource server's rules to an answer.
// A refused token is a non-temporary error; an answer that is not a valid
// introspection response is a Temporary one.
func (i *Introspector) check(doc []byte) (*validator.Claims, answer, error) {
	doc = bytes.TrimSpace(doc)
	if len(doc) == 0 || doc[0] != '{' {
		return nil, answer{}, temporary("introspection answer is not a JSON object")
	}
	var r response
	if err := json.Unmarshal(doc, &r); err != nil {
		return nil, answer{}, temporary("introspection answer is not a valid response: " + err.Error())
	}
	if r.Active == nil {
		return nil, answer{}, temporary(`introspection answer has no boolean "active"`)
	}
	if !*r.Active {
		return nil, answer{}, refuse(reasonInactive, "inactive")
	}
	if r.Iss != nil && *r.Iss != i.issuer {
		return nil, answer{}, refuse(validator.ReasonUnknownIssuer, "introspection answer names another issuer")
	}
	if r.TokenType != nil && !bearerType(*r.TokenType) {
		return nil, answer{}, refuse(validator.ReasonUnsupportedType, "token_type is not an access token type")
	}
	unix := i.now().Unix()
	var exp int64
	if r.Exp != nil {
		exp = int64(math.Floor(float64(*r.Exp)))
		if unix >= exp+i.skew {
			return nil, answer{}, refuse(validator.ReasonExpired, "")
		}
	}
	if r.Nbf != nil && int64(math.Ceil(float64(*r.Nbf))) > unix+i.skew {
		return nil, answer{}, refuse(validator.ReasonNotYetValid, "")
	}
	if len(r.Aud.Values()) == 0 {
		if !i.allowNoAud {
			return nil, answer{}, refuse(validator.ReasonNoAudience, "")
		}
		// Without aud nothing ties the answer to an access token for this
		// resource: servers such as oidc-provider answer for refresh tokens
		// too, with neither aud nor token_type. So the opt-in still demands
		// that the answer says it is a bearer access token.
		if r.TokenType == nil {
			return nil, answer{}, refuse(validator.ReasonNoAudience, "no aud and no token_type: cannot tell an access token from a refresh token")
		}
	} else if !validator.AudienceMatch(r.Aud.Values(), i.audiences) {
		return nil, answer{}, refuse(validator.ReasonAudience, "")
	}
	// A token bound to a key (DPoP, RFC 9449 §6; mTLS, RFC 8705 §3) is only
	// as good as its proof; presented as a bare bearer token it is refused.
	if len(r.Cnf) > 0 && string(r.Cnf) != "null" {
		return nil, answer{}, refuse(validator.ReasonSenderConstrained, "")
	}

	scopes := r.Scope.Scopes()
	if i.scopeClaim != "" {
		var all map[string]json.RawMessage
		if err := json.Unmarshal(doc, &all); err != nil {
			return nil, answer{}, temporary("introspection answer is not a valid response: " + err.Error())
		}
		var s validator.StringOrArray
		if raw, ok := all[i.scopeClaim]; ok {
			if err := s.UnmarshalJSON(raw); err != nil {
				return nil, answer{}, temporary("introspection answer: " + i.scopeClaim + " is not a string nor an array of strings")
			}
		}
		scopes = s.Scopes()
	}
	// The claims keep the answer for StringClaim; a copy of exactly its
	// size, so that the cache does not pin the larger read buffer.
	raw := append(make([]byte, 0, len(doc)), doc...)
	c := validator.NewClaims(validator.ClaimsInput{
		// "iss" is optional in an answer; when present it equals the
		// issuer, whose endpoint this is.
		Issuer:   i.issuer,
		Subject:  string(r.Sub),
		Audience: r.Aud.Values(),
		ClientID: string(r.ClientID),
		Scopes:   scopes,
		ACR:      string(r.Acr),
		AuthTime: int64(r.AuthTime),
		Expiry:   exp,
		JTI:      string(r.Jti),
		Raw:      raw,
	})
	return c, answer{exp: nanos(exp), size: int64(len(doc))}, nil
}

// bearerType reports whether a token_type names a bearer access token. The
// values are those real servers send (RFC 7662 leaves them open): the token
// type hint "access_token", the RFC 8693 identifier, and "Bearer" in any
// case (RFC 6750 §4 registers it, RFC 6749 §7.1 compares case-insensitively).
// A refresh token, an ID token or a "DPoP"/"N_A" token is refused.
func bearerType(t string) bool {
	return t == "access_token" ||
		t == "urn:ietf:params:oauth:token-type:access_token" ||
		strings.EqualFold(t, "bearer")
}

// looseDate is a NumericDate whose absence or wrong type reads as 0.
type looseDate int64

func (n *looseDate) UnmarshalJSON(b []byte) error {
	var d validator.NumericDate
	if d.UnmarshalJSON(b) == nil && d > 0 && float64(d) < math.MaxInt64 {
		*n = looseDate(math.Floor(float64(d)))
	}
	return nil
}

// looseString is a string member whose wrong type reads as "".
type looseString string

func (s *looseString) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		var v string
		if json.Unmarshal(b, &v) == nil {
			*s = looseString(v)
		}
	}
	return nil
}
