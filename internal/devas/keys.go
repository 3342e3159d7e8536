package devas

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// signingKey is the server's RSA key; it is both the op.SigningKey zitadel
// signs ID tokens with and the key access tokens are signed with.
type signingKey struct {
	id  string
	key *rsa.PrivateKey
}

var _ op.SigningKey = (*signingKey)(nil)

func newSigningKey() (*signingKey, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, fmt.Errorf("devas: generating RSA key: %w", err)
	}
	// The kid is the RFC 7638 thumbprint of the public key.
	jwk := jose.JSONWebKey{Key: &key.PublicKey}
	thumb, err := jwk.Thumbprint(crypto.SHA256)
	if err != nil {
		return nil, err
	}
	return &signingKey{id: base64.RawURLEncoding.EncodeToString(thumb), key: key}, nil
}

func (k *signingKey) SignatureAlgorithm() jose.SignatureAlgorithm { return jose.RS256 }
func (k *signingKey) Key() any                                    { return k.key }
func (k *signingKey) ID() string                                  { return k.id }

func (k *signingKey) public() op.Key { return publicKey{k} }

// publicKey is the op.Key published in the JWKS.
type publicKey struct{ k *signingKey }

func (p publicKey) ID() string                         { return p.k.id }
func (p publicKey) Algorithm() jose.SignatureAlgorithm { return jose.RS256 }
func (p publicKey) Use() string                        { return "sig" }
func (p publicKey) Key() any                           { return &p.k.key.PublicKey }

// accessTokenClaims are the RFC 9068 claims of a devas access token.
type accessTokenClaims struct {
	Issuer   string `json:"iss"`
	Subject  string `json:"sub"`
	Audience string `json:"aud"`
	Expiry   int64  `json:"exp"`
	IssuedAt int64  `json:"iat"`
	JWTID    string `json:"jti"`
	ClientID string `json:"client_id"`
	Scope    string `json:"scope,omitempty"`
	ACR      string `json:"acr,omitempty"`
	AuthTime int64  `json:"auth_time,omitempty"`
}

// mintAccessToken signs an RFC 9068 JWT access token ("typ": "at+jwt",
// RS256, with the key's kid).
func (k *signingKey) mintAccessToken(c accessTokenClaims) (string, error) {
	signer, err := jose.NewSigner(
		jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: k.key, KeyID: k.id}},
		(&jose.SignerOptions{}).WithType("at+jwt"),
	)
	if err != nil {
		return "", err
	}
	payload, err := json.Marshal(c)
	if err != nil {
		return "", err
	}
	sig, err := signer.Sign(payload)
	if err != nil {
		return "", err
	}
	return sig.CompactSerialize()
}

func newAccessTokenClaims(issuer, jti string, g grant, exp time.Time) accessTokenClaims {
	c := accessTokenClaims{
		Issuer:   issuer,
		Subject:  g.GetSubject(),
		Audience: g.audience(),
		Expiry:   exp.Unix(),
		IssuedAt: time.Now().Unix(),
		JWTID:    jti,
		ClientID: g.GetClientID(),
		Scope:    strings.Join(g.GetScopes(), " "),
		ACR:      g.acr(),
	}
	if t := g.GetAuthTime(); !t.IsZero() {
		c.AuthTime = t.Unix()
	}
	return c
}
