package validator

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"math"
	"strconv"
	"strings"
	"sync"
)

// MaxTokenSize is the largest access token accepted. Larger ones are refused
// before any decoding, so that junk cannot make the server do real work.
const MaxTokenSize = 16 << 10

// b64url marks the bytes of the base64url alphabet (RFC 4648 §5), without
// padding, which JWS compact serialization uses (RFC 7515 §2).
var b64url = func() (t [256]bool) {
	for c := 'A'; c <= 'Z'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	t['-'], t['_'] = true, true
	return t
}()

// splitCompact checks that tok looks like a JWS in compact serialization,
// three non-empty base64url segments, and returns the positions of the two
// dots. It allocates nothing, so floods of garbage are cheap to refuse.
// JWE (five segments) and the JSON serializations fail here.
func splitCompact(tok string) (dot1, dot2 int, err error) {
	if len(tok) > MaxTokenSize {
		return 0, 0, reject(ReasonTooLarge)
	}
	dot1, dot2 = -1, -1
	for i := 0; i < len(tok); i++ {
		c := tok[i]
		if c == '.' {
			switch {
			case dot1 < 0:
				dot1 = i
			case dot2 < 0:
				dot2 = i
			default:
				return 0, 0, reject(ReasonMalformed)
			}
			continue
		}
		if !b64url[c] {
			return 0, 0, reject(ReasonMalformed)
		}
	}
	// An empty signature is what "alg":"none" tokens carry.
	if dot1 <= 0 || dot2 < 0 || dot2 == dot1+1 || dot2 == len(tok)-1 {
		return 0, 0, reject(ReasonMalformed)
	}
	return dot1, dot2, nil
}

// PreCheck reports whether tok passes the checks made before any decoding:
// size, alphabet and shape. It is exported for fuzzing and for callers that
// route tokens (a JWT to local validation, anything else elsewhere).
func PreCheck(tok string) error {
	_, _, err := splitCompact(tok)
	return err
}

// joseHeader is the part of the JWS protected header we act on.
type joseHeader struct {
	Alg  string          `json:"alg"`
	Kid  string          `json:"kid"`
	Typ  *string         `json:"typ"`
	Crit json.RawMessage `json:"crit"`
	B64  json.RawMessage `json:"b64"`
	Enc  json.RawMessage `json:"enc"`
}

func decodeSegment(seg string) ([]byte, error) {
	out := make([]byte, base64.RawURLEncoding.DecodedLen(len(seg)))
	n, err := base64.RawURLEncoding.Decode(out, []byte(seg))
	if err != nil {
		return nil, reject(ReasonMalformed)
	}
	return out[:n], nil
}

// decodeJSONObject decodes a JSON object, refusing anything after it.
func decodeJSONObject(b []byte, v any) error {
	b = bytes.TrimSpace(b)
	if len(b) == 0 || b[0] != '{' {
		return reject(ReasonMalformed)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return rejectf(ReasonMalformed, "json: "+err.Error())
	}
	return nil
}

// NumericDate is a JWT NumericDate (RFC 7519 §2): seconds since the epoch,
// possibly with a fraction. Decoding anything but a finite number fails.
type NumericDate float64

func (n *NumericDate) UnmarshalJSON(b []byte) error {
	f, err := strconv.ParseFloat(string(b), 64)
	if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
		return errNotNumber
	}
	*n = NumericDate(f)
	return nil
}

type claimError string

func (e claimError) Error() string { return string(e) }

const (
	errNotNumber   = claimError("not a number")
	errNotAudience = claimError("aud is neither a string nor an array of strings")
	errNotStrings  = claimError("not a string nor an array of strings")
)

// StringOrArray is a claim that IdPs send either as one string or as an array
// of strings (aud per RFC 7519 §4.1.3; scp as Entra and Okta send it). null
// reads as absent.
type StringOrArray struct {
	vals    []string
	present bool
	array   bool
}

func (s *StringOrArray) UnmarshalJSON(b []byte) error {
	s.present = true
	if len(b) > 0 && b[0] == '"' {
		var v string
		if err := json.Unmarshal(b, &v); err != nil {
			return errNotStrings
		}
		s.vals = []string{v}
		return nil
	}
	if string(b) == "null" {
		s.present = false
		return nil
	}
	s.array = true
	if err := json.Unmarshal(b, &s.vals); err != nil {
		return errNotStrings
	}
	return nil
}

// payload is the part of the claims set we act on. Anything else stays in
// the raw payload, decoded only if a placeholder asks for it.
type payload struct {
	Iss      string         `json:"iss"`
	Sub      string         `json:"sub"`
	Aud      StringOrArray  `json:"aud"`
	Exp      *NumericDate   `json:"exp"`
	Nbf      *NumericDate   `json:"nbf"`
	Iat      *NumericDate   `json:"iat"`
	Scope    StringOrArray  `json:"scope"`
	Scp      StringOrArray  `json:"scp"`
	ClientID string         `json:"client_id"`
	Azp      string         `json:"azp"`
	Cid      string         `json:"cid"`
	Acr      string         `json:"acr"`
	AuthTime *NumericDate   `json:"auth_time"`
	Jti      string         `json:"jti"`
	Cnf      map[string]any `json:"cnf"`
}

// Values returns the strings: one for a string, all for an array.
func (s StringOrArray) Values() []string { return s.vals }

// Scopes turns a scope claim into a list: a space-delimited string
// (RFC 9068 §2.2.3, RFC 7662 §2.2, RFC 6749 §3.3) or an array of strings
// (Okta's scp).
func (s StringOrArray) Scopes() []string {
	if s.array {
		out := make([]string, 0, len(s.vals))
		for _, v := range s.vals {
			if v != "" {
				out = append(out, v)
			}
		}
		return out
	}
	if len(s.vals) == 0 {
		return nil
	}
	return strings.Fields(s.vals[0])
}

// Claims is what a valid token says, reduced to what the resource server uses.
// A Claims value is immutable once returned and may be shared between
// requests (the token cache hands out the same pointer).
type Claims struct {
	Issuer   string
	Subject  string
	Audience []string
	// ClientID is client_id (RFC 9068), else azp (OIDC), else cid (Okta).
	ClientID string
	Scopes   []string
	// Scope is Scopes joined with single spaces.
	Scope string
	ACR   string
	// AuthTime is auth_time in Unix seconds, 0 when absent.
	AuthTime int64
	// Expiry is exp in Unix seconds.
	Expiry int64
	JTI    string

	raw       []byte // the decoded payload JSON, for claim placeholders
	keyID     [32]byte
	issuer    *Issuer
	once      sync.Once
	strClaims map[string]string
}

// StringClaim returns a top-level claim whose value is a string. It decodes
// the payload on first use only, so tokens whose claims no placeholder reads
// never pay for a generic claims map.
func (c *Claims) StringClaim(name string) (string, bool) {
	c.once.Do(func() {
		var all map[string]any
		if json.Unmarshal(c.raw, &all) != nil {
			return
		}
		c.strClaims = make(map[string]string, len(all))
		for k, v := range all {
			if s, ok := v.(string); ok {
				c.strClaims[k] = s
			}
		}
	})
	v, ok := c.strClaims[name]
	return v, ok
}

// HasScope reports whether the token grants scope s (case-sensitive, as
// RFC 6749 §3.3 requires).
func (c *Claims) HasScope(s string) bool {
	for _, g := range c.Scopes {
		if g == s {
			return true
		}
	}
	return false
}

// ClaimsInput is what NewClaims needs: the claims of a token that was
// validated some other way, such as token introspection (RFC 7662).
type ClaimsInput struct {
	Issuer   string
	Subject  string
	Audience []string
	ClientID string
	Scopes   []string
	ACR      string
	AuthTime int64
	Expiry   int64
	JTI      string
	// Raw is a JSON object whose top-level string members serve
	// StringClaim (the introspection response, for example).
	Raw []byte
}

// NewClaims returns Claims for a token validated elsewhere. Such claims are
// not tied to a signing key.
func NewClaims(in ClaimsInput) *Claims {
	return &Claims{
		Issuer:   in.Issuer,
		Subject:  in.Subject,
		Audience: in.Audience,
		ClientID: in.ClientID,
		Scopes:   in.Scopes,
		Scope:    strings.Join(in.Scopes, " "),
		ACR:      in.ACR,
		AuthTime: in.AuthTime,
		Expiry:   in.Expiry,
		JTI:      in.JTI,
		raw:      in.Raw,
	}
}

// PeekIssuer returns the iss claim of a JWS-shaped token without verifying
// anything. It is for routing only (which issuer's rules apply); nothing it
// returns may be trusted.
func PeekIssuer(tok string) (string, bool) {
	dot1, dot2, err := splitCompact(tok)
	if err != nil {
		return "", false
	}
	body, err := decodeSegment(tok[dot1+1 : dot2])
	if err != nil {
		return "", false
	}
	var p struct {
		Iss string `json:"iss"`
	}
	if decodeJSONObject(body, &p) != nil || p.Iss == "" {
		return "", false
	}
	return p.Iss, true
}
