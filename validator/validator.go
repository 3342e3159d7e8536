package validator

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"
	"unsafe"

	"github.com/mcpauth/caddy-mcp-auth/internal/hashcache"
)

// KeyProvider is where an issuer's keys come from; *KeySource implements it.
type KeyProvider interface {
	// Keys returns the current keys, nil if none were ever obtained.
	Keys() *KeySet
	// Refetch fetches the keys again unless that happened very recently, and
	// returns the keys current afterwards.
	Refetch(ctx context.Context) *KeySet
}

// Issuer is one trusted authorization server.
type Issuer struct {
	// ID is the issuer identifier, compared byte for byte with "iss".
	ID string
	// Audiences are the accepted "aud" values; a token must name one.
	Audiences []string
	// Algorithms is the allow-list of JWS "alg" values.
	Algorithms []string
	// ScopeClaim names the claim that carries scopes. Empty means "scope",
	// falling back to "scp" (as Entra and Okta name it).
	ScopeClaim string
	// RequireTyp demands the RFC 9068 "typ" header at+jwt.
	RequireTyp bool
	// Keys supplies the verification keys of this issuer only.
	Keys KeyProvider
}

// Config configures a Validator.
type Config struct {
	Issuers []*Issuer
	// ClockSkew is the leeway for exp, nbf and iat.
	ClockSkew time.Duration
	// CacheEntries bounds the verified-token cache; 0 disables it.
	CacheEntries int
	// CacheBytes bounds the memory the cache holds in token payloads.
	// Default: 64 MiB when the cache is enabled.
	CacheBytes int64
	// Now is the clock. Default: time.Now.
	Now func() time.Time
}

// Validator validates access tokens. It is safe for concurrent use.
type Validator struct {
	issuers map[string]*Issuer
	skew    int64
	now     func() time.Time
	cache   *hashcache.Cache[cachedClaims]
}

// New checks cfg and returns a Validator.
func New(cfg Config) (*Validator, error) {
	if len(cfg.Issuers) == 0 {
		return nil, errors.New("no issuer configured")
	}
	v := &Validator{issuers: make(map[string]*Issuer, len(cfg.Issuers)), now: cfg.Now}
	if v.now == nil {
		v.now = time.Now
	}
	if cfg.ClockSkew < 0 {
		return nil, errors.New("clock skew must not be negative")
	}
	v.skew = int64(cfg.ClockSkew / time.Second)
	for _, iss := range cfg.Issuers {
		if iss.ID == "" {
			return nil, errors.New("issuer with empty identifier")
		}
		if _, dup := v.issuers[iss.ID]; dup {
			return nil, fmt.Errorf("issuer %q configured twice", iss.ID)
		}
		if len(iss.Audiences) == 0 {
			return nil, fmt.Errorf("issuer %q: no accepted audience", iss.ID)
		}
		if len(iss.Algorithms) == 0 {
			iss.Algorithms = DefaultAlgorithms
		}
		for _, a := range iss.Algorithms {
			if !asymmetricAlg(a) {
				return nil, fmt.Errorf("issuer %q: algorithm %q is not an accepted asymmetric JWS algorithm", iss.ID, a)
			}
		}
		if iss.Keys == nil {
			return nil, fmt.Errorf("issuer %q: no key provider", iss.ID)
		}
		v.issuers[iss.ID] = iss
	}
	if cfg.CacheEntries > 0 {
		v.cache = newTokenCache(cfg.CacheEntries, cfg.CacheBytes)
	}
	return v, nil
}

// Validate checks tok and returns its claims. Errors are *Error; a
// Temporary one means the keys could not be had, not that the token is bad.
//
// A token verified before is answered from the cache while it is unexpired
// and the key that verified it is still published; the cache never serves a
// token past its exp, even within the clock skew.
func (v *Validator) Validate(ctx context.Context, tok string) (*Claims, error) {
	if len(tok) > MaxTokenSize {
		return nil, reject(ReasonTooLarge)
	}
	now := v.now()
	var sum [32]byte
	if v.cache != nil {
		// The token is hashed without copying it: Sum256 only reads.
		sum = sha256.Sum256(unsafe.Slice(unsafe.StringData(tok), len(tok)))
		if c, ok := v.cache.Get(sum, now.Unix()); ok {
			if c.issuer.Keys.Keys().Contains(c.keyID) {
				return c.Claims, nil
			}
			v.cache.Remove(sum)
		}
	}
	c, err := v.validate(ctx, tok, now)
	if err != nil {
		return nil, err
	}
	if v.cache != nil {
		v.cache.Put(sum, cachedClaims{c}, now.Unix())
	}
	return c, nil
}

func (v *Validator) validate(ctx context.Context, tok string, now time.Time) (*Claims, error) {
	dot1, dot2, err := splitCompact(tok)
	if err != nil {
		return nil, err
	}
	hdrJSON, err := decodeSegment(tok[:dot1])
	if err != nil {
		return nil, err
	}
	var hdr joseHeader
	if err := decodeJSONObject(hdrJSON, &hdr); err != nil {
		return nil, err
	}
	// We understand no header extensions, so any "crit" is refused
	// (RFC 7515 §4.1.11); "b64" changes what is signed (RFC 7797) and "enc"
	// marks a JWE. Keys named by jku/x5u/jwk/x5c are never used: keys come
	// only from the issuer's published set.
	if hdr.Crit != nil {
		return nil, reject(ReasonCritical)
	}
	if hdr.B64 != nil || hdr.Enc != nil {
		return nil, reject(ReasonMalformed)
	}
	if hdr.Alg == "" {
		return nil, reject(ReasonMalformed)
	}

	body, err := decodeSegment(tok[dot1+1 : dot2])
	if err != nil {
		return nil, err
	}
	var p payload
	if err := decodeJSONObject(body, &p); err != nil {
		return nil, err
	}

	// The issuer decides which keys and rules apply, so it is looked up
	// first; the signature is then checked with that issuer's keys only, so
	// that one trusted issuer cannot mint tokens in another's name.
	iss, ok := v.issuers[p.Iss]
	if !ok {
		return nil, reject(ReasonUnknownIssuer)
	}
	if !typAcceptable(hdr.Typ, iss.RequireTyp) {
		return nil, reject(ReasonUnsupportedType)
	}
	if !contains(iss.Algorithms, hdr.Alg) {
		return nil, reject(ReasonAlgorithm)
	}
	sig, err := decodeSegment(tok[dot2+1:])
	if err != nil {
		return nil, err
	}
	key, err := v.verify(ctx, iss, hdr.Alg, hdr.Kid, []byte(tok[:dot2]), sig)
	if err != nil {
		return nil, err
	}

	// Claims (RFC 7519 §4.1, RFC 9068 §4).
	if p.Exp == nil {
		return nil, reject(ReasonNoExpiry)
	}
	unix := now.Unix()
	exp := int64(math.Floor(float64(*p.Exp)))
	if unix >= exp+v.skew {
		return nil, reject(ReasonExpired)
	}
	if p.Nbf != nil && int64(math.Ceil(float64(*p.Nbf))) > unix+v.skew {
		return nil, reject(ReasonNotYetValid)
	}
	if p.Iat != nil && int64(math.Ceil(float64(*p.Iat))) > unix+v.skew {
		return nil, reject(ReasonIssuedInFuture)
	}
	if !p.Aud.present || len(p.Aud.vals) == 0 {
		return nil, reject(ReasonNoAudience)
	}
	if !AudienceMatch(p.Aud.vals, iss.Audiences) {
		return nil, reject(ReasonAudience)
	}
	// A token bound to a DPoP key (RFC 9449 §6) or a client certificate
	// (RFC 8705 §3) is only as good as its proof; presented as a bare bearer
	// token it must be refused (RFC 9449 §7.2).
	if len(p.Cnf) > 0 {
		return nil, reject(ReasonSenderConstrained)
	}

	c := &Claims{
		Issuer:   p.Iss,
		Subject:  p.Sub,
		Audience: p.Aud.vals,
		ClientID: firstNonEmpty(p.ClientID, p.Azp, p.Cid),
		ACR:      p.Acr,
		Expiry:   exp,
		JTI:      p.Jti,
		raw:      body,
		keyID:    key.Thumbprint,
		issuer:   iss,
	}
	if p.AuthTime != nil {
		c.AuthTime = int64(math.Floor(float64(*p.AuthTime)))
	}
	switch iss.ScopeClaim {
	case "", "scope":
		c.Scopes = p.Scope.Scopes()
		if !p.Scope.present {
			c.Scopes = p.Scp.Scopes()
		}
	case "scp":
		c.Scopes = p.Scp.Scopes()
	default:
		c.Scopes, err = customScopes(body, iss.ScopeClaim)
		if err != nil {
			return nil, err
		}
	}
	c.Scope = strings.Join(c.Scopes, " ")
	return c, nil
}

// verify checks the signature with the issuer's keys, refetching them once
// (rate-limited by the key source) when the token names a key not yet known.
func (v *Validator) verify(ctx context.Context, iss *Issuer, alg, kid string, input, sig []byte) (*Key, error) {
	set := iss.Keys.Keys()
	if set == nil {
		if set = iss.Keys.Refetch(ctx); set == nil {
			return nil, reject(ReasonKeysUnavailable)
		}
	}
	if kid != "" && len(set.candidates(kid)) == 0 {
		// Perhaps the issuer rotated in a new key (OIDC Core §10.1.1).
		set = iss.Keys.Refetch(ctx)
	}
	return set.Verify(alg, kid, input, sig)
}

// typAcceptable implements the "typ" policy. RFC 9068 §4 wants at+jwt, but
// Entra, Okta, Keycloak and Cognito send JWT or nothing, so by default those
// are accepted too; any other type (an ID token marked as such, a logout
// token, ...) is refused. Media types compare case-insensitively (RFC 7515
// §4.1.9).
func typAcceptable(typ *string, strict bool) bool {
	if typ == nil {
		return !strict
	}
	t := *typ
	if strings.EqualFold(t, "at+jwt") || strings.EqualFold(t, "application/at+jwt") {
		return true
	}
	return !strict && strings.EqualFold(t, "JWT")
}

// AudienceMatch reports whether any of the audiences aud is accepted.
// Comparison is exact (RFC 7519 §4.1.3); aliases such as the trailing-slash
// form of a host-only resource are put in the accepted list by the caller.
func AudienceMatch(aud, accepted []string) bool {
	for _, a := range aud {
		for _, b := range accepted {
			if a == b {
				return true
			}
		}
	}
	return false
}

func customScopes(body []byte, claim string) ([]string, error) {
	var all map[string]lenientStringOrArray
	if err := decodeJSONObject(body, &all); err != nil {
		return nil, err
	}
	return StringOrArray(all[claim]).Scopes(), nil
}

// lenientStringOrArray decodes like StringOrArray but ignores claims of
// other shapes, since it decodes every claim to reach one.
type lenientStringOrArray StringOrArray

func (s *lenientStringOrArray) UnmarshalJSON(b []byte) error {
	var t StringOrArray
	if t.UnmarshalJSON(b) == nil {
		*s = lenientStringOrArray(t)
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func firstNonEmpty(vs ...string) string {
	for _, v := range vs {
		if v != "" {
			return v
		}
	}
	return ""
}
