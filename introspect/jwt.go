package introspect

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"math"
	"strings"

	"github.com/mcpauth/caddy-mcp-auth/validator"
)

// verifyWithSet checks a JWS signature, made with alg over input, against
// the keys of set named kid (every key when kid is empty). Its errors are
// *validator.Error; ReasonUnknownKey makes the caller refetch the keys once.
// It is a variable so that a test can show the allow-list alone refuses
// "none" and HMAC.
var verifyWithSet = func(set *validator.KeySet, alg, kid string, input, sig []byte) error {
	_, err := set.Verify(alg, kid, input, sig)
	return err
}

// jwtHeader is the part of the JWS header acted on.
type jwtHeader struct {
	Alg  string          `json:"alg"`
	Kid  string          `json:"kid"`
	Typ  *string         `json:"typ"`
	Crit json.RawMessage `json:"crit"`
	B64  json.RawMessage `json:"b64"`
	Enc  json.RawMessage `json:"enc"`
}

// jwtPayload is the claims set of a signed answer (RFC 9701 §5).
type jwtPayload struct {
	Iss                string                  `json:"iss"`
	Aud                validator.StringOrArray `json:"aud"`
	Exp                *validator.NumericDate  `json:"exp"`
	TokenIntrospection json.RawMessage         `json:"token_introspection"`
}

// openJWT verifies a signed answer (RFC 9701) and returns the plain answer
// it carries in "token_introspection". The JWT must be signed by the
// issuer's keys with an asymmetric algorithm, typed token-introspection+jwt
// (so that it cannot pass for an access token or vice versa), issued by the
// issuer and addressed to the gateway (aud = client_id). Any failure makes
// the answer unusable: a Temporary error, since it says nothing about the
// token.
func (i *Introspector) openJWT(ctx context.Context, body []byte) ([]byte, error) {
	body = bytes.TrimSpace(body)
	parts := bytes.Split(body, []byte{'.'})
	if len(parts) != 3 || len(parts[0]) == 0 || len(parts[1]) == 0 || len(parts[2]) == 0 {
		return nil, temporary("signed introspection answer is not a JWS in compact serialization")
	}
	hdrJSON, err1 := b64decode(parts[0])
	payJSON, err2 := b64decode(parts[1])
	sig, err3 := b64decode(parts[2])
	if err1 != nil || err2 != nil || err3 != nil {
		return nil, temporary("signed introspection answer is not valid base64url")
	}
	var hdr jwtHeader
	if !isObject(hdrJSON) || json.Unmarshal(hdrJSON, &hdr) != nil {
		return nil, temporary("signed introspection answer has an invalid header")
	}
	if hdr.Typ == nil || !isIntrospectionTyp(*hdr.Typ) {
		return nil, temporary("signed introspection answer is not typed token-introspection+jwt")
	}
	if hdr.Crit != nil || hdr.B64 != nil || hdr.Enc != nil {
		return nil, temporary("signed introspection answer uses unsupported header parameters")
	}
	if !acceptedAlg(hdr.Alg) {
		return nil, temporary("signed introspection answer uses a refused algorithm")
	}
	input := body[:len(parts[0])+1+len(parts[1])]
	if err := i.verifySignature(ctx, hdr.Alg, hdr.Kid, input, sig); err != nil {
		return nil, temporary("signed introspection answer: " + validator.ReasonOf(err).String())
	}

	var p jwtPayload
	if !isObject(payJSON) || json.Unmarshal(payJSON, &p) != nil {
		return nil, temporary("signed introspection answer has invalid claims")
	}
	if p.Iss != i.issuer {
		return nil, temporary("signed introspection answer was not issued by the issuer")
	}
	if !contains(p.Aud.Values(), i.clientID) {
		return nil, temporary("signed introspection answer is not addressed to the gateway's client_id")
	}
	if p.Exp != nil && i.now().Unix() >= int64(math.Floor(float64(*p.Exp)))+i.skew {
		return nil, temporary("signed introspection answer expired")
	}
	if !isObject(p.TokenIntrospection) {
		return nil, temporary("signed introspection answer has no token_introspection object")
	}
	return p.TokenIntrospection, nil
}

// verifySignature checks the signature with the issuer's keys, refetching
// them once (rate-limited by the key provider) for an unknown kid.
func (i *Introspector) verifySignature(ctx context.Context, alg, kid string, input, sig []byte) error {
	set := i.keys.Keys()
	if set == nil {
		if set = i.keys.Refetch(ctx); set == nil {
			return &validator.Error{Reason: validator.ReasonKeysUnavailable, Temporary: true}
		}
	}
	err := verifyWithSet(set, alg, kid, input, sig)
	if err != nil && validator.ReasonOf(err) == validator.ReasonUnknownKey {
		// Perhaps the issuer rotated in a new key.
		if set = i.keys.Refetch(ctx); set != nil {
			err = verifyWithSet(set, alg, kid, input, sig)
		}
	}
	return err
}

// isIntrospectionTyp compares a "typ" with the RFC 9701 media type; the
// "application/" prefix may be omitted and case does not matter (RFC 7515
// §4.1.9).
func isIntrospectionTyp(t string) bool {
	const short = "token-introspection+jwt"
	return strings.EqualFold(t, short) || strings.EqualFold(t, "application/"+short)
}

// acceptedAlg allows the asymmetric algorithms validator accepts, never
// "none" or HMAC.
func acceptedAlg(alg string) bool { return contains(validator.DefaultAlgorithms, alg) }

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func isObject(b []byte) bool {
	b = bytes.TrimSpace(b)
	return len(b) > 0 && b[0] == '{'
}

func b64decode(seg []byte) ([]byte, error) {
	out := make([]byte, base64.RawURLEncoding.DecodedLen(len(seg)))
	n, err := base64.RawURLEncoding.Decode(out, seg)
	return out[:n], err
}
