package validator

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/mcpauth/caddy-mcp-auth/internal/testissuer"
)

const benchIssuer = "https://idp.example.com"

func benchValidator(b *testing.B, key *testissuer.Key, cache int) *Validator {
	b.Helper()
	set, _, err := ParseKeySet([]byte(`{"keys":[` + mustJSON(key.JWK()) + `]}`))
	if err != nil || set.Len() != 1 {
		b.Fatalf("key set: %v", err)
	}
	v, err := New(Config{Issuers: []*Issuer{{ID: benchIssuer, Audiences: []string{resource}, Keys: staticKeys{set}}}, ClockSkew: time.Minute, CacheEntries: cache})
	if err != nil {
		b.Fatal(err)
	}
	return v
}

// benchToken is a realistic access token: RFC 9068 claims plus a few more,
// about 700 bytes as RS256.
func benchToken(key *testissuer.Key) string {
	now := time.Now().Unix()
	return testissuer.Mint(testissuer.Token{Key: key, Claims: map[string]any{
		"iss": benchIssuer, "sub": "248289761001", "aud": resource, "exp": now + 3600, "iat": now, "nbf": now,
		"client_id": "s6BhdRkqt3", "jti": "dbe39bf3a3ba4238a513f51d6e1691c4", "scope": "mcp:read mcp:write",
		"auth_time": now - 60, "acr": "urn:mace:incommon:iap:silver", "email": "user@example.com",
	}})
}

// rawVerify is the floor: the signature check alone on the same key and
// input, with the base64 decoding and hashing it cannot avoid.
func rawVerify(b *testing.B, key *testissuer.Key, tok string) func() error {
	i := strings.LastIndexByte(tok, '.')
	input, sigB64 := tok[:i], tok[i+1:]
	alg := key.Alg
	return func() error {
		sig, err := base64.RawURLEncoding.DecodeString(sigB64)
		if err != nil {
			return err
		}
		switch pub := key.Private.Public().(type) {
		case *rsa.PublicKey:
			h := sha256.Sum256([]byte(input))
			if alg == "PS256" {
				return rsa.VerifyPSS(pub, crypto.SHA256, h[:], sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
			}
			return rsa.VerifyPKCS1v15(pub, crypto.SHA256, h[:], sig)
		case *ecdsa.PublicKey:
			h := sha256.Sum256([]byte(input))
			var r, s = new(bigInt).SetBytes(sig[:32]), new(bigInt).SetBytes(sig[32:])
			if !ecdsa.Verify(pub, h[:], r, s) {
				return errBench
			}
			return nil
		case ed25519.PublicKey:
			if !ed25519.Verify(pub, []byte(input), sig) {
				return errBench
			}
			return nil
		}
		return errBench
	}
}

func benchKeys() map[string]*testissuer.Key {
	ps := testissuer.NewRSA("ps")
	ps.Alg = "PS256"
	return map[string]*testissuer.Key{
		"RS256": testissuer.NewRSA("rs"),
		"PS256": ps,
		"ES256": testissuer.NewEC("es"),
		"EdDSA": testissuer.NewEd25519("ed"),
	}
}

// BenchmarkFresh validates a token never seen before (cache off), next to
// the raw signature verification of the same token: the floor.
func BenchmarkFresh(b *testing.B) {
	for _, alg := range []string{"RS256", "PS256", "ES256", "EdDSA"} {
		key := benchKeys()[alg]
		tok := benchToken(key)
		b.Run(alg+"/floor", func(b *testing.B) {
			verify := rawVerify(b, key, tok)
			b.ReportAllocs()
			for b.Loop() {
				if err := verify(); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(alg+"/validate", func(b *testing.B) {
			v := benchValidator(b, key, 0)
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := v.Validate(ctx, tok); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkCached validates a token that is in the verified-token cache.
func BenchmarkCached(b *testing.B) {
	key := testissuer.NewRSA("rs")
	tok := benchToken(key)
	v := benchValidator(b, key, 10000)
	ctx := context.Background()
	if _, err := v.Validate(ctx, tok); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Validate(ctx, tok); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCachedParallel is the cached path under contention.
func BenchmarkCachedParallel(b *testing.B) {
	key := testissuer.NewRSA("rs")
	v := benchValidator(b, key, 10000)
	ctx := context.Background()
	toks := make([]string, 64)
	for i := range toks {
		toks[i] = benchToken(key) + ""
		if _, err := v.Validate(ctx, toks[i]); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if _, err := v.Validate(ctx, toks[i%len(toks)]); err != nil {
				b.Error(err)
				return
			}
			i++
		}
	})
}

// BenchmarkReject measures the refusal paths.
func BenchmarkReject(b *testing.B) {
	key := testissuer.NewRSA("rs")
	good := benchToken(key)
	badSig := good[:len(good)-4] + "AAAA"
	unknownKid := benchToken(&testissuer.Key{KID: "other", Alg: "RS256", Private: key.Private})
	now := time.Now().Unix()
	expired := testissuer.Mint(testissuer.Token{Key: key, Claims: map[string]any{"iss": benchIssuer, "aud": resource, "exp": now - 3600}})
	for name, tc := range map[string]struct {
		tok  string
		want Reason
	}{
		"bad_signature": {badSig, ReasonSignature},
		"unknown_kid":   {unknownKid, ReasonUnknownKey},
		"expired":       {expired, ReasonExpired},
		"garbage":       {"not-a-jwt-at-all-" + strings.Repeat("x", 600), ReasonMalformed},
		"too_large":     {strings.Repeat("a", MaxTokenSize+1), ReasonTooLarge},
	} {
		b.Run(name, func(b *testing.B) {
			v := benchValidator(b, key, 10000)
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := v.Validate(ctx, tc.tok); ReasonOf(err) != tc.want {
					b.Fatalf("got %v", err)
				}
			}
		})
	}
}

func BenchmarkParseAuthorization(b *testing.B) {
	h := "Bearer " + benchToken(testissuer.NewEC("es"))
	b.ReportAllocs()
	for b.Loop() {
		if _, k := ParseAuthorization(h); k != BearerToken {
			b.Fatal(k)
		}
	}
}
