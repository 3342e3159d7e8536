// Package testissuer is an in-process stand-in for an authorization server,
// for unit and integration tests: it publishes metadata and a JWK Set over
// real HTTP, signs tokens with any header and claims (including broken ones),
// and can rotate keys, go down, or answer slowly.
package testissuer

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"time"
)

// Key is a signing key with its published JWK form.
type Key struct {
	KID     string
	Alg     string
	Private crypto.Signer
	// OmitAlg publishes the JWK without "alg", as Entra does.
	OmitAlg bool
}

// NewRSA returns a 2048-bit RSA key for RS256.
func NewRSA(kid string) *Key {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return &Key{KID: kid, Alg: "RS256", Private: k}
}

// NewEC returns a P-256 key for ES256.
func NewEC(kid string) *Key {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	return &Key{KID: kid, Alg: "ES256", Private: k}
}

// NewEd25519 returns an Ed25519 key for EdDSA.
func NewEd25519(kid string) *Key {
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		panic(err)
	}
	return &Key{KID: kid, Alg: "EdDSA", Private: k}
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// JWK returns the public JWK of k as a map.
func (k *Key) JWK() map[string]any {
	m := map[string]any{"kid": k.KID, "use": "sig"}
	if !k.OmitAlg {
		m["alg"] = k.Alg
	}
	switch pub := k.Private.Public().(type) {
	case *rsa.PublicKey:
		m["kty"] = "RSA"
		m["n"] = b64(pub.N.Bytes())
		m["e"] = b64(big.NewInt(int64(pub.E)).Bytes())
	case *ecdsa.PublicKey:
		m["kty"] = "EC"
		m["crv"] = pub.Curve.Params().Name
		// Uncompressed point: 0x04, then X and Y of equal length.
		pt, err := pub.Bytes()
		if err != nil {
			panic(err)
		}
		size := (len(pt) - 1) / 2
		m["x"] = b64(pt[1 : 1+size])
		m["y"] = b64(pt[1+size:])
	case ed25519.PublicKey:
		m["kty"] = "OKP"
		m["crv"] = "Ed25519"
		m["x"] = b64(pub)
	}
	return m
}

// Sign signs input with alg using k (any alg, so tests can also produce
// mismatches).
func (k *Key) Sign(alg string, input []byte) []byte {
	switch alg {
	case "RS256", "PS256", "ES256":
		return k.signHash(alg, crypto.SHA256, sha256Sum(input))
	case "RS384", "PS384", "ES384":
		h := sha512.Sum384(input)
		return k.signHash(alg, crypto.SHA384, h[:])
	case "RS512", "PS512", "ES512":
		h := sha512.Sum512(input)
		return k.signHash(alg, crypto.SHA512, h[:])
	case "EdDSA", "Ed25519":
		sig, err := k.Private.Sign(rand.Reader, input, crypto.Hash(0))
		if err != nil {
			panic(err)
		}
		return sig
	}
	panic("testissuer: cannot sign with " + alg)
}

func sha256Sum(b []byte) []byte { h := sha256.Sum256(b); return h[:] }

func (k *Key) signHash(alg string, h crypto.Hash, digest []byte) []byte {
	switch priv := k.Private.(type) {
	case *rsa.PrivateKey:
		if alg[0] == 'P' {
			sig, err := rsa.SignPSS(rand.Reader, priv, h, digest, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
			if err != nil {
				panic(err)
			}
			return sig
		}
		sig, err := rsa.SignPKCS1v15(rand.Reader, priv, h, digest)
		if err != nil {
			panic(err)
		}
		return sig
	case *ecdsa.PrivateKey:
		r, s, err := ecdsa.Sign(rand.Reader, priv, digest)
		if err != nil {
			panic(err)
		}
		size := (priv.Curve.Params().BitSize + 7) / 8
		out := make([]byte, 2*size)
		r.FillBytes(out[:size])
		s.FillBytes(out[size:])
		return out
	}
	panic("testissuer: key cannot sign " + alg)
}

// Issuer is a running test authorization server.
type Issuer struct {
	Server *httptest.Server
	// URL is the issuer identifier (the server's base URL).
	URL string

	mu        sync.Mutex
	keys      []*Key
	extraJWKs []map[string]any
	down      bool
	delay     time.Duration
	mdIssuer  string // issuer named in metadata; default URL
	noRFC8414 bool

	JWKSFetches     atomic.Int64
	MetadataFetches atomic.Int64
}

// New starts an issuer publishing keys.
func New(keys ...*Key) *Issuer {
	iss := &Issuer{keys: keys}
	iss.Server = httptest.NewServer(http.HandlerFunc(iss.serve))
	iss.URL = iss.Server.URL
	return iss
}

// Close stops the server.
func (iss *Issuer) Close() { iss.Server.Close() }

// JWKSURL is where the key set is served.
func (iss *Issuer) JWKSURL() string { return iss.URL + "/jwks" }

// SetKeys replaces the published keys (rotation).
func (iss *Issuer) SetKeys(keys ...*Key) {
	iss.mu.Lock()
	iss.keys = keys
	iss.mu.Unlock()
}

// AddRawJWKs publishes extra JWK objects as given (e.g. an encryption key).
func (iss *Issuer) AddRawJWKs(jwks ...map[string]any) {
	iss.mu.Lock()
	iss.extraJWKs = append(iss.extraJWKs, jwks...)
	iss.mu.Unlock()
}

// SetDown makes every endpoint answer 503 (an outage) or work again.
func (iss *Issuer) SetDown(down bool) {
	iss.mu.Lock()
	iss.down = down
	iss.mu.Unlock()
}

// SetDelay makes every answer wait d first.
func (iss *Issuer) SetDelay(d time.Duration) {
	iss.mu.Lock()
	iss.delay = d
	iss.mu.Unlock()
}

// SetMetadataIssuer makes the metadata name another issuer (a mix-up).
func (iss *Issuer) SetMetadataIssuer(s string) {
	iss.mu.Lock()
	iss.mdIssuer = s
	iss.mu.Unlock()
}

// SetOIDCOnly makes the RFC 8414 document 404, as Entra and Cognito do.
func (iss *Issuer) SetOIDCOnly(v bool) {
	iss.mu.Lock()
	iss.noRFC8414 = v
	iss.mu.Unlock()
}

// JWKSDocument returns the JWK Set JSON currently published.
func (iss *Issuer) JWKSDocument() []byte {
	iss.mu.Lock()
	defer iss.mu.Unlock()
	keys := make([]map[string]any, 0, len(iss.keys)+len(iss.extraJWKs))
	for _, k := range iss.keys {
		keys = append(keys, k.JWK())
	}
	keys = append(keys, iss.extraJWKs...)
	b, _ := json.Marshal(map[string]any{"keys": keys})
	return b
}

func (iss *Issuer) serve(w http.ResponseWriter, r *http.Request) {
	iss.mu.Lock()
	down, delay, mdIssuer, noRFC := iss.down, iss.delay, iss.mdIssuer, iss.noRFC8414
	iss.mu.Unlock()
	if delay > 0 {
		select {
		case <-time.After(delay):
		case <-r.Context().Done():
			return
		}
	}
	if r.URL.Path == "/jwks" {
		iss.JWKSFetches.Add(1)
	} else {
		iss.MetadataFetches.Add(1)
	}
	if down {
		http.Error(w, "down", http.StatusServiceUnavailable)
		return
	}
	if mdIssuer == "" {
		mdIssuer = iss.URL
	}
	switch r.URL.Path {
	case "/jwks":
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(iss.JWKSDocument())
	case "/.well-known/oauth-authorization-server", "/.well-known/openid-configuration":
		if noRFC && r.URL.Path == "/.well-known/oauth-authorization-server" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{
			"issuer":                           mdIssuer,
			"jwks_uri":                         iss.JWKSURL(),
			"authorization_endpoint":           iss.URL + "/authorize",
			"token_endpoint":                   iss.URL + "/token",
			"code_challenge_methods_supported": []string{"S256"},
		})
	default:
		http.NotFound(w, r)
	}
}

// Token describes a token to mint. Zero fields get defaults: alg and kid
// from the key, typ at+jwt, and the claims as given. Alg is both the header
// alg and the signing algorithm; Header can override the header alone.
type Token struct {
	Key    *Key
	Alg    string
	Header map[string]any // extra or overriding header members; nil values delete
	Claims map[string]any
}

// Mint signs t and returns the compact JWS.
func Mint(t Token) string {
	hdr := map[string]any{"alg": t.Key.Alg, "kid": t.Key.KID, "typ": "at+jwt"}
	if t.Alg != "" {
		hdr["alg"] = t.Alg
	}
	for k, v := range t.Header {
		if v == nil {
			delete(hdr, k)
		} else {
			hdr[k] = v
		}
	}
	hb, _ := json.Marshal(hdr)
	pb, _ := json.Marshal(t.Claims)
	input := b64(hb) + "." + b64(pb)
	signAlg := t.Key.Alg
	if t.Alg != "" {
		signAlg = t.Alg
	}
	return input + "." + b64(t.Key.Sign(signAlg, []byte(input)))
}

// Claims returns a valid claims set for this issuer and audience, expiring
// in an hour, with the given scope.
func (iss *Issuer) Claims(aud, scope string) map[string]any {
	now := time.Now().Unix()
	c := map[string]any{
		"iss":       iss.URL,
		"sub":       "user-1",
		"aud":       aud,
		"exp":       now + 3600,
		"iat":       now,
		"nbf":       now,
		"client_id": "client-1",
		"jti":       fmt.Sprintf("jti-%d", time.Now().UnixNano()),
	}
	if scope != "" {
		c["scope"] = scope
	}
	return c
}
