package validator

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"sort"

	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jws/jwsbb"
)

// MaxKeys is the most keys taken from one JWK Set; the rest are ignored.
const MaxKeys = 100

// minRSABits is the smallest RSA modulus accepted (RFC 7518 §3.3, §3.5).
const minRSABits = 2048

// Key is one public verification key from an issuer's JWK Set.
type Key struct {
	KID string
	// Alg is the key's "alg" member, empty when the JWK has none (Entra).
	Alg string
	// Public is *rsa.PublicKey, *ecdsa.PublicKey or ed25519.PublicKey.
	Public crypto.PublicKey
	// Thumbprint is the RFC 7638 SHA-256 thumbprint; it identifies the key
	// across refreshes of the set.
	Thumbprint [32]byte
}

// KeySet is an immutable snapshot of the usable keys of one issuer.
type KeySet struct {
	keys  []*Key
	byKID map[string][]*Key
	byTP  map[[32]byte]struct{}
}

// Len is the number of usable keys.
func (s *KeySet) Len() int {
	if s == nil {
		return 0
	}
	return len(s.keys)
}

// Contains reports whether a key with thumbprint tp is still in the set.
func (s *KeySet) Contains(tp [32]byte) bool {
	if s == nil {
		return false
	}
	_, ok := s.byTP[tp]
	return ok
}

// candidates returns the keys that may verify a token with this kid: the
// keys with that kid, or every key when the token names none.
func (s *KeySet) candidates(kid string) []*Key {
	if s == nil {
		return nil
	}
	if kid == "" {
		return s.keys
	}
	return s.byKID[kid]
}

// Verify checks a JWS signature over input with the keys of this set that
// may have made it: those with kid (every key when kid is empty) whose type
// and own alg fit alg. It returns the key that verified, or an *Error with
// ReasonUnknownKey, ReasonAlgorithm or ReasonSignature. alg must already
// have passed the caller's allow-list.
func (s *KeySet) Verify(alg, kid string, input, sig []byte) (*Key, error) {
	cands := s.candidates(kid)
	if len(cands) == 0 {
		return nil, reject(ReasonUnknownKey)
	}
	tried := false
	for _, k := range cands {
		if !k.fits(alg) {
			continue
		}
		tried = true
		if jwsbb.Verify(k.Public, alg, input, sig) == nil {
			return k, nil
		}
	}
	if !tried {
		// The named key exists but cannot make this kind of signature,
		// e.g. an RSA key named in an ES256 token.
		return nil, reject(ReasonAlgorithm)
	}
	return nil, reject(ReasonSignature)
}

// Thumbprints lists the thumbprints in the set, sorted; for tests and logs.
func (s *KeySet) Thumbprints() [][32]byte {
	out := make([][32]byte, 0, s.Len())
	if s != nil {
		for _, k := range s.keys {
			out = append(out, k.Thumbprint)
		}
	}
	sort.Slice(out, func(i, j int) bool { return string(out[i][:]) < string(out[j][:]) })
	return out
}

func newKeySet(keys []*Key) *KeySet {
	s := &KeySet{keys: keys, byKID: make(map[string][]*Key), byTP: make(map[[32]byte]struct{}, len(keys))}
	for _, k := range keys {
		s.byKID[k.KID] = append(s.byKID[k.KID], k)
		s.byTP[k.Thumbprint] = struct{}{}
	}
	return s
}

// jwkPeek is the part of a JWK looked at before handing it to jwx.
type jwkPeek struct {
	Kty    string   `json:"kty"`
	Use    string   `json:"use"`
	Alg    string   `json:"alg"`
	KeyOps []string `json:"key_ops"`
	Kid    string   `json:"kid"`
	Crv    string   `json:"crv"`
}

// ParseKeySet reads a JWK Set (RFC 7517 §5) and keeps the keys that can
// verify signatures. Keys that cannot (encryption keys such as the RSA-OAEP
// key Keycloak publishes, symmetric "oct" keys, unknown key types or curves,
// short RSA moduli, private keys) are skipped and reported in skipped, never
// fatal to the whole set. It fails only when the document is not a JWK Set.
func ParseKeySet(doc []byte) (set *KeySet, skipped []string, err error) {
	var jwks struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(doc, &jwks); err != nil {
		return nil, nil, fmt.Errorf("parsing JWK Set: %w", err)
	}
	if jwks.Keys == nil {
		return nil, nil, fmt.Errorf("parsing JWK Set: no \"keys\" member")
	}
	var keys []*Key
	for i, raw := range jwks.Keys {
		if len(keys) >= MaxKeys {
			skipped = append(skipped, fmt.Sprintf("keys after the first %d", MaxKeys))
			break
		}
		k, why := parseKey(raw)
		if k == nil {
			skipped = append(skipped, fmt.Sprintf("key %d: %s", i, why))
			continue
		}
		keys = append(keys, k)
	}
	return newKeySet(keys), skipped, nil
}

func parseKey(raw json.RawMessage) (*Key, string) {
	var p jwkPeek
	if err := json.Unmarshal(raw, &p); err != nil {
		return nil, "not a JWK object"
	}
	if p.Use != "" && p.Use != "sig" {
		return nil, fmt.Sprintf("kid %q: use %q is not sig", p.Kid, p.Use)
	}
	if p.KeyOps != nil {
		ok := false
		for _, op := range p.KeyOps {
			if op == "verify" {
				ok = true
			}
		}
		if !ok {
			return nil, fmt.Sprintf("kid %q: key_ops does not include verify", p.Kid)
		}
	}
	switch p.Kty {
	case "RSA", "EC", "OKP":
	default:
		return nil, fmt.Sprintf("kid %q: kty %q cannot verify signatures", p.Kid, p.Kty)
	}
	if p.Alg != "" && !asymmetricAlg(p.Alg) {
		return nil, fmt.Sprintf("kid %q: alg %q is not an asymmetric signature algorithm", p.Kid, p.Alg)
	}
	if p.Alg != "" && !keyFitsAlg(p.Kty, p.Crv, p.Alg) {
		return nil, fmt.Sprintf("kid %q: alg %q does not fit kty %q", p.Kid, p.Alg, p.Kty)
	}
	k, err := jwk.ParseKey(raw)
	if err != nil {
		return nil, fmt.Sprintf("kid %q: %v", p.Kid, err)
	}
	pk, err := jwk.PublicKeyOf(k)
	if err != nil {
		return nil, fmt.Sprintf("kid %q: %v", p.Kid, err)
	}
	var pub any
	if err := jwk.Export(pk, &pub); err != nil {
		return nil, fmt.Sprintf("kid %q: %v", p.Kid, err)
	}
	switch key := pub.(type) {
	case *rsa.PublicKey:
		if key.N.BitLen() < minRSABits {
			return nil, fmt.Sprintf("kid %q: RSA key of %d bits is too short", p.Kid, key.N.BitLen())
		}
	case *ecdsa.PublicKey:
		switch key.Curve {
		case elliptic.P256(), elliptic.P384(), elliptic.P521():
		default:
			return nil, fmt.Sprintf("kid %q: unsupported curve", p.Kid)
		}
	case ed25519.PublicKey:
	default:
		return nil, fmt.Sprintf("kid %q: unsupported key type %T", p.Kid, pub)
	}
	tp, err := pk.Thumbprint(crypto.SHA256)
	if err != nil || len(tp) != 32 {
		return nil, fmt.Sprintf("kid %q: cannot compute thumbprint", p.Kid)
	}
	key := &Key{KID: p.Kid, Alg: p.Alg, Public: pub}
	copy(key.Thumbprint[:], tp)
	return key, ""
}

// Algorithms accepted by default: every asymmetric JWS algorithm of RFC 7518
// and RFC 8037, plus the fully specified Ed25519 of RFC 9864. HMAC and "none"
// are never accepted: a resource server holds no shared secret, and accepting
// HS256 with a public key as the secret is the classic key-confusion attack
// (RFC 8725 §2.1).
var DefaultAlgorithms = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA", "Ed25519"}

func asymmetricAlg(alg string) bool {
	for _, a := range DefaultAlgorithms {
		if a == alg {
			return true
		}
	}
	return false
}

// keyFitsAlg reports whether a key of type kty (and curve crv) can make
// signatures with alg.
func keyFitsAlg(kty, crv, alg string) bool {
	switch alg {
	case "RS256", "RS384", "RS512", "PS256", "PS384", "PS512":
		return kty == "RSA"
	case "ES256":
		return kty == "EC" && (crv == "" || crv == "P-256")
	case "ES384":
		return kty == "EC" && (crv == "" || crv == "P-384")
	case "ES512":
		return kty == "EC" && (crv == "" || crv == "P-521")
	case "EdDSA", "Ed25519":
		return kty == "OKP" && (crv == "" || crv == "Ed25519")
	}
	return false
}

// fits reports whether key k may verify a signature made with alg: its type
// and curve fit, and its own alg, when it has one, is exactly alg.
func (k *Key) fits(alg string) bool {
	if k.Alg != "" && k.Alg != alg {
		return false
	}
	switch pub := k.Public.(type) {
	case *rsa.PublicKey:
		return keyFitsAlg("RSA", "", alg)
	case *ecdsa.PublicKey:
		return keyFitsAlg("EC", pub.Curve.Params().Name, alg)
	case ed25519.PublicKey:
		return keyFitsAlg("OKP", "Ed25519", alg)
	}
	return false
}
