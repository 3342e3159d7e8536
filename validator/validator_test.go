package validator

import (
	"context"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mcpauth/caddy-mcp-auth/internal/testissuer"
)

const resource = "https://mcp.example.com/mcp"

type fixture struct {
	iss      *testissuer.Issuer
	rsa      *testissuer.Key
	ec       *testissuer.Key
	ed       *testissuer.Key
	other    *testissuer.Issuer // a second trusted issuer
	otherKey *testissuer.Key
	v        *Validator
	src      *KeySource
}

func newSource(t *testing.T, cfg KeySourceConfig) *KeySource {
	t.Helper()
	s, err := NewKeySource(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Destruct() })
	return s
}

func newFixture(t *testing.T, mod func(*Issuer)) *fixture {
	t.Helper()
	f := &fixture{rsa: testissuer.NewRSA("rsa-1"), ec: testissuer.NewEC("ec-1"), ed: testissuer.NewEd25519("ed-1")}
	f.iss = testissuer.New(f.rsa, f.ec, f.ed)
	t.Cleanup(f.iss.Close)
	f.otherKey = testissuer.NewRSA("other-1")
	f.other = testissuer.New(f.otherKey)
	t.Cleanup(f.other.Close)
	f.src = newSource(t, KeySourceConfig{Issuer: f.iss.URL, RefetchFloor: time.Hour})
	iss := &Issuer{ID: f.iss.URL, Audiences: []string{resource}, Keys: f.src}
	if mod != nil {
		mod(iss)
	}
	other := &Issuer{ID: f.other.URL, Audiences: []string{resource}, Keys: newSource(t, KeySourceConfig{Issuer: f.other.URL, JWKSURI: f.other.JWKSURL()})}
	v, err := New(Config{Issuers: []*Issuer{iss, other}, ClockSkew: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	f.v = v
	return f
}

func (f *fixture) claims(mod func(map[string]any)) map[string]any {
	c := f.iss.Claims(resource, "mcp:read mcp:write")
	if mod != nil {
		mod(c)
	}
	return c
}

func (f *fixture) token(key *testissuer.Key, hdr map[string]any, mod func(map[string]any)) string {
	return testissuer.Mint(testissuer.Token{Key: key, Header: hdr, Claims: f.claims(mod)})
}

func enc(v any) string {
	b, _ := json.Marshal(v)
	return base64.RawURLEncoding.EncodeToString(b)
}

func TestValidate(t *testing.T) {
	f := newFixture(t, nil)
	now := time.Now().Unix()
	rsaPub := f.rsa.Private.Public().(*rsa.PublicKey)
	attacker := testissuer.NewRSA("rsa-1") // same kid, different key

	tests := []struct {
		name string
		tok  string
		want Reason // ReasonNone: accepted
	}{
		{"valid RS256", f.token(f.rsa, nil, nil), ReasonNone},
		{"valid ES256", f.token(f.ec, nil, nil), ReasonNone},
		{"valid EdDSA", f.token(f.ed, nil, nil), ReasonNone},
		{"typ JWT accepted by default", f.token(f.rsa, map[string]any{"typ": "JWT"}, nil), ReasonNone},
		{"typ application/at+jwt", f.token(f.rsa, map[string]any{"typ": "application/at+jwt"}, nil), ReasonNone},
		{"typ absent accepted by default", f.token(f.rsa, map[string]any{"typ": nil}, nil), ReasonNone},
		{"aud array containing resource", f.token(f.rsa, nil, func(c map[string]any) { c["aud"] = []string{"https://other", resource} }), ReasonNone},
		{"expired within skew", f.token(f.rsa, nil, func(c map[string]any) { c["exp"] = now - 30 }), ReasonNone},
		{"fractional exp", f.token(f.rsa, nil, func(c map[string]any) { c["exp"] = float64(now) + 100.5 }), ReasonNone},
		{"no kid tries all keys", f.token(f.rsa, map[string]any{"kid": nil}, nil), ReasonNone},

		{"typ id_token refused", f.token(f.rsa, map[string]any{"typ": "id+jwt"}, nil), ReasonUnsupportedType},
		{"typ dpop+jwt refused", f.token(f.rsa, map[string]any{"typ": "dpop+jwt"}, nil), ReasonUnsupportedType},
		{"alg none", enc(map[string]any{"alg": "none", "kid": "rsa-1"}) + "." + enc(f.claims(nil)) + ".", ReasonMalformed},
		{"alg none with junk signature", enc(map[string]any{"alg": "none", "kid": "rsa-1"}) + "." + enc(f.claims(nil)) + ".AAAA", ReasonAlgorithm},
		{"HS256 with the public key as secret", hs256(f.claims(nil), rsaPub), ReasonAlgorithm},
		{"alg header says RS256 but key is EC", testissuer.Mint(testissuer.Token{Key: f.ec, Alg: "RS256", Header: map[string]any{"alg": "RS256"}, Claims: f.claims(nil)}), ReasonAlgorithm},
		{"signed by attacker with a known kid", f.token(attacker, nil, nil), ReasonSignature},
		{"embedded jwk is not trusted", f.token(attacker, map[string]any{"jwk": attacker.JWK()}, nil), ReasonSignature},
		{"jku is not followed", f.token(attacker, map[string]any{"jku": f.other.JWKSURL(), "kid": "other-1"}, nil), ReasonUnknownKey},
		{"crit refused", f.token(f.rsa, map[string]any{"crit": []string{"exp"}, "exp": now}, nil), ReasonCritical},
		{"b64 refused", f.token(f.rsa, map[string]any{"b64": false}, nil), ReasonMalformed},
		{"unknown kid", f.token(testissuer.NewRSA("nope"), nil, nil), ReasonUnknownKey},
		{"unknown issuer", f.token(f.rsa, nil, func(c map[string]any) { c["iss"] = "https://evil.example.com" }), ReasonUnknownIssuer},
		{"issuer with trailing slash is another issuer", f.token(f.rsa, nil, func(c map[string]any) { c["iss"] = f.iss.URL + "/" }), ReasonUnknownIssuer},
		{"no iss", f.token(f.rsa, nil, func(c map[string]any) { delete(c, "iss") }), ReasonUnknownIssuer},
		{"other trusted issuer's key cannot sign for this issuer", f.token(f.otherKey, nil, nil), ReasonUnknownKey},
		{"this issuer's key cannot sign for the other issuer", f.token(f.rsa, nil, func(c map[string]any) { c["iss"] = f.other.URL }), ReasonUnknownKey},
		{"aud for another resource", f.token(f.rsa, nil, func(c map[string]any) { c["aud"] = "https://other.example.com" }), ReasonAudience},
		{"aud with trailing slash is another resource", f.token(f.rsa, nil, func(c map[string]any) { c["aud"] = resource + "/" }), ReasonAudience},
		{"aud missing", f.token(f.rsa, nil, func(c map[string]any) { delete(c, "aud") }), ReasonNoAudience},
		{"aud empty array", f.token(f.rsa, nil, func(c map[string]any) { c["aud"] = []string{} }), ReasonNoAudience},
		{"aud not a string", f.token(f.rsa, nil, func(c map[string]any) { c["aud"] = 7 }), ReasonMalformed},
		{"exp missing", f.token(f.rsa, nil, func(c map[string]any) { delete(c, "exp") }), ReasonNoExpiry},
		{"expired", f.token(f.rsa, nil, func(c map[string]any) { c["exp"] = now - 120 }), ReasonExpired},
		{"exp as string", f.token(f.rsa, nil, func(c map[string]any) { c["exp"] = "9999999999" }), ReasonMalformed},
		{"nbf in the future", f.token(f.rsa, nil, func(c map[string]any) { c["nbf"] = now + 600 }), ReasonNotYetValid},
		{"iat in the future", f.token(f.rsa, nil, func(c map[string]any) { c["iat"] = now + 600 }), ReasonIssuedInFuture},
		{"DPoP-bound token as bearer", f.token(f.rsa, nil, func(c map[string]any) { c["cnf"] = map[string]any{"jkt": "abc"} }), ReasonSenderConstrained},
		{"too large", strings.Repeat("a", MaxTokenSize+1), ReasonTooLarge},
		{"two segments", "abc.def", ReasonMalformed},
		{"four segments", "a.b.c.d", ReasonMalformed},
		{"JWE five segments", "a.b.c.d.e", ReasonMalformed},
		{"padding", "abc=.def.ghi", ReasonMalformed},
		{"JSON serialization", `{"payload":"x"}`, ReasonMalformed},
		{"header not base64", "a*b.c.d", ReasonMalformed},
		{"header not JSON", enc("str") + "." + enc(f.claims(nil)) + ".AAAA", ReasonMalformed},
		{"header trailing garbage", base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"RS256"}x`)) + "." + enc(f.claims(nil)) + ".AAAA", ReasonMalformed},
		{"payload array", enc(map[string]any{"alg": "RS256", "kid": "rsa-1"}) + "." + enc([]int{1}) + ".AAAA", ReasonMalformed},
		{"empty signature", enc(map[string]any{"alg": "RS256"}) + "." + enc(f.claims(nil)) + ".", ReasonMalformed},
		{"empty header", "." + enc(f.claims(nil)) + ".AAAA", ReasonMalformed},
		{"no alg", f.token(f.rsa, map[string]any{"alg": ""}, nil), ReasonMalformed},
		{"signature of another token", f.token(f.rsa, nil, nil)[:strings.LastIndexByte(f.token(f.rsa, nil, nil), '.')] + "." + strings.Split(f.token(f.rsa, nil, func(c map[string]any) { c["sub"] = "x" }), ".")[2], ReasonSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := f.v.Validate(context.Background(), tt.tok)
			got := ReasonOf(err)
			if err != nil && got == ReasonNone {
				t.Fatalf("error without reason: %v", err)
			}
			if got != tt.want {
				t.Fatalf("got %v (%v), want %v", got, err, tt.want)
			}
			if tt.want == ReasonNone && (c == nil || c.Subject != "user-1") {
				t.Fatalf("claims = %+v", c)
			}
		})
	}
}

// hs256 forges a token signed with HMAC, using the RSA public key's bytes as
// the shared secret: the key-confusion attack.
func hs256(claims map[string]any, pub *rsa.PublicKey) string {
	input := enc(map[string]any{"alg": "HS256", "kid": "rsa-1", "typ": "at+jwt"}) + "." + enc(claims)
	return input + "." + base64.RawURLEncoding.EncodeToString(hmacSHA256(pub.N.Bytes(), []byte(input)))
}

func TestClaimsExtracted(t *testing.T) {
	f := newFixture(t, nil)
	tok := f.token(f.rsa, nil, func(c map[string]any) {
		c["acr"] = "urn:mfa"
		c["auth_time"] = 1700000000
		c["email"] = "a@example.com"
		c["n"] = 5
	})
	c, err := f.v.Validate(context.Background(), tok)
	if err != nil {
		t.Fatal(err)
	}
	if c.Issuer != f.iss.URL || c.ClientID != "client-1" || c.ACR != "urn:mfa" || c.AuthTime != 1700000000 {
		t.Fatalf("claims: %+v", c)
	}
	if c.Scope != "mcp:read mcp:write" || !c.HasScope("mcp:write") || c.HasScope("mcp:admin") {
		t.Fatalf("scopes: %q", c.Scope)
	}
	if v, ok := c.StringClaim("email"); !ok || v != "a@example.com" {
		t.Fatalf("email = %q %v", v, ok)
	}
	if _, ok := c.StringClaim("n"); ok {
		t.Fatal("non-string claim exposed as string")
	}
}

func TestScopeClaims(t *testing.T) {
	tests := []struct {
		name       string
		scopeClaim string
		claims     map[string]any
		want       string
	}{
		{"scope string", "", map[string]any{"scope": "a  b"}, "a b"},
		{"scp array fallback (Okta)", "", map[string]any{"scp": []string{"a", "b"}}, "a b"},
		{"scp string fallback (Entra)", "", map[string]any{"scp": "a b"}, "a b"},
		{"scope wins over scp", "", map[string]any{"scope": "a", "scp": []string{"b"}}, "a"},
		{"scope_claim scp ignores scope", "scp", map[string]any{"scope": "a", "scp": []string{"b"}}, "b"},
		{"custom claim array", "permissions", map[string]any{"permissions": []string{"read:x", "write:x"}, "weird": map[string]any{"a": 1}}, "read:x write:x"},
		{"custom claim absent", "permissions", map[string]any{"scope": "a"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, func(i *Issuer) { i.ScopeClaim = tt.scopeClaim })
			tok := f.token(f.rsa, nil, func(c map[string]any) {
				delete(c, "scope")
				for k, v := range tt.claims {
					c[k] = v
				}
			})
			c, err := f.v.Validate(context.Background(), tok)
			if err != nil {
				t.Fatal(err)
			}
			if c.Scope != tt.want {
				t.Fatalf("scope = %q, want %q", c.Scope, tt.want)
			}
		})
	}
}

func TestRequireTypAndAlgorithms(t *testing.T) {
	f := newFixture(t, func(i *Issuer) { i.RequireTyp = true; i.Algorithms = []string{"RS256"} })
	for _, tc := range []struct {
		name string
		tok  string
		want Reason
	}{
		{"at+jwt", f.token(f.rsa, nil, nil), ReasonNone},
		{"JWT refused when strict", f.token(f.rsa, map[string]any{"typ": "JWT"}, nil), ReasonUnsupportedType},
		{"absent refused when strict", f.token(f.rsa, map[string]any{"typ": nil}, nil), ReasonUnsupportedType},
		{"ES256 not on allow-list", f.token(f.ec, nil, nil), ReasonAlgorithm},
	} {
		_, err := f.v.Validate(context.Background(), tc.tok)
		if got := ReasonOf(err); got != tc.want {
			t.Errorf("%s: got %v (%v), want %v", tc.name, got, err, tc.want)
		}
	}
}

func TestConfigErrors(t *testing.T) {
	kp := newSource(t, KeySourceConfig{Issuer: "https://x", JWKSURI: "http://127.0.0.1:1/jwks"})
	for _, cfg := range []Config{
		{},
		{Issuers: []*Issuer{{ID: "https://x", Keys: kp}}},
		{Issuers: []*Issuer{{ID: "https://x", Audiences: []string{"a"}, Algorithms: []string{"HS256"}, Keys: kp}}},
		{Issuers: []*Issuer{{ID: "https://x", Audiences: []string{"a"}, Algorithms: []string{"none"}, Keys: kp}}},
		{Issuers: []*Issuer{{ID: "https://x", Audiences: []string{"a"}, Keys: kp}, {ID: "https://x", Audiences: []string{"a"}, Keys: kp}}},
		{Issuers: []*Issuer{{ID: "https://x", Audiences: []string{"a"}}}},
	} {
		if _, err := New(cfg); err == nil {
			t.Errorf("config %+v accepted", cfg)
		}
	}
}

func TestKeysWithoutAlgAndUnusableKeys(t *testing.T) {
	entra := testissuer.NewRSA("entra")
	entra.OmitAlg = true
	iss := testissuer.New(entra)
	defer iss.Close()
	// Keycloak publishes an RSA-OAEP encryption key next to its signing key;
	// a symmetric key and an unknown key type must not break the set either.
	iss.AddRawJWKs(
		map[string]any{"kty": "RSA", "use": "enc", "alg": "RSA-OAEP", "kid": "enc", "n": "AQAB", "e": "AQAB"},
		map[string]any{"kty": "oct", "kid": "hmac", "k": "c2VjcmV0"},
		map[string]any{"kty": "XYZ", "kid": "future"},
		map[string]any{"kty": "RSA", "kid": "sig-only-ops", "key_ops": []string{"encrypt"}, "n": "AQAB", "e": "AQAB"},
	)
	set, skipped, err := ParseKeySet(iss.JWKSDocument())
	if err != nil {
		t.Fatal(err)
	}
	if set.Len() != 1 || len(skipped) != 4 {
		t.Fatalf("usable %d, skipped %q", set.Len(), skipped)
	}
	src := newSource(t, KeySourceConfig{Issuer: iss.URL})
	v, err := New(Config{Issuers: []*Issuer{{ID: iss.URL, Audiences: []string{resource}, Keys: src}}})
	if err != nil {
		t.Fatal(err)
	}
	tok := testissuer.Mint(testissuer.Token{Key: entra, Header: map[string]any{"typ": "JWT"}, Claims: iss.Claims(resource, "")})
	if _, err := v.Validate(context.Background(), tok); err != nil {
		t.Fatalf("token signed by a key without alg: %v", err)
	}
	// A key without alg is still bound to its type: an RSA key cannot verify ES256.
	ecTok := testissuer.Mint(testissuer.Token{Key: testissuer.NewEC("entra"), Claims: iss.Claims(resource, "")})
	if got := ReasonOf(func() error { _, err := v.Validate(context.Background(), ecTok); return err }()); got != ReasonAlgorithm {
		t.Fatalf("ES256 token against RSA key: %v", got)
	}
}

func TestParseKeySetRejectsNonSets(t *testing.T) {
	for _, doc := range []string{`[]`, `{}`, `{"keys":{}}`, `not json`} {
		if _, _, err := ParseKeySet([]byte(doc)); err == nil {
			t.Errorf("%s accepted", doc)
		}
	}
}

func TestRotationRefetch(t *testing.T) {
	k1 := testissuer.NewRSA("k1")
	iss := testissuer.New(k1)
	defer iss.Close()
	src := newSource(t, KeySourceConfig{Issuer: iss.URL, JWKSURI: iss.JWKSURL(), RefetchFloor: time.Millisecond})
	v, _ := New(Config{Issuers: []*Issuer{{ID: iss.URL, Audiences: []string{resource}, Keys: src}}, CacheEntries: 100})
	ctx := context.Background()
	tok1 := testissuer.Mint(testissuer.Token{Key: k1, Claims: iss.Claims(resource, "")})
	if _, err := v.Validate(ctx, tok1); err != nil {
		t.Fatal(err)
	}
	// The IdP rotates: k2 in, k1 out. A token signed by k2 is accepted
	// without a reload (one refetch), and k1's token, though cached, is not.
	k2 := testissuer.NewRSA("k2")
	iss.SetKeys(k2)
	time.Sleep(2 * time.Millisecond)
	tok2 := testissuer.Mint(testissuer.Token{Key: k2, Claims: iss.Claims(resource, "")})
	if _, err := v.Validate(ctx, tok2); err != nil {
		t.Fatalf("rotated-in key: %v", err)
	}
	if _, err := v.Validate(ctx, tok1); ReasonOf(err) != ReasonUnknownKey {
		t.Fatalf("rotated-out key served: %v", err)
	}
}

func TestUnknownKidFloodIsBounded(t *testing.T) {
	k1 := testissuer.NewRSA("k1")
	iss := testissuer.New(k1)
	defer iss.Close()
	src := newSource(t, KeySourceConfig{Issuer: iss.URL, JWKSURI: iss.JWKSURL(), RefetchFloor: time.Hour})
	v, _ := New(Config{Issuers: []*Issuer{{ID: iss.URL, Audiences: []string{resource}, Keys: src}}})
	ctx := context.Background()
	// Wait for the first background fetch.
	if _, err := v.Validate(ctx, testissuer.Mint(testissuer.Token{Key: k1, Claims: iss.Claims(resource, "")})); err != nil {
		t.Fatal(err)
	}
	before := iss.JWKSFetches.Load()
	var wg sync.WaitGroup
	for i := 0; i < 500; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			k := &testissuer.Key{KID: "random-" + strings.Repeat("x", i%7) + string(rune('a'+i%26)), Alg: "RS256", Private: k1.Private}
			_, err := v.Validate(ctx, testissuer.Mint(testissuer.Token{Key: k, Claims: iss.Claims(resource, "")}))
			if ReasonOf(err) != ReasonUnknownKey {
				t.Errorf("random kid: %v", err)
			}
		}(i)
	}
	wg.Wait()
	// The floor is an hour: the whole flood causes at most the one
	// request-driven fetch the first unknown kid asked for.
	if got := iss.JWKSFetches.Load() - before; got > 1 {
		t.Fatalf("flood of unknown kids caused %d JWKS fetches", got)
	}
}

func TestOutageKeepsKeysAndStartsWithoutIdP(t *testing.T) {
	k1 := testissuer.NewRSA("k1")
	iss := testissuer.New(k1)
	defer iss.Close()
	iss.SetDown(true)
	src := newSource(t, KeySourceConfig{Issuer: iss.URL, RefetchFloor: time.Millisecond})
	v, _ := New(Config{Issuers: []*Issuer{{ID: iss.URL, Audiences: []string{resource}, Keys: src}}})
	ctx := context.Background()
	tok := testissuer.Mint(testissuer.Token{Key: k1, Claims: iss.Claims(resource, "")})
	_, err := v.Validate(ctx, tok)
	var e *Error
	if !errors.As(err, &e) || !e.Temporary || e.Reason != ReasonKeysUnavailable {
		t.Fatalf("IdP down at start: %v", err)
	}
	// The IdP comes up: the next request recovers without a reload.
	iss.SetDown(false)
	time.Sleep(5 * time.Millisecond)
	if _, err := v.Validate(ctx, tok); err != nil {
		t.Fatalf("after recovery: %v", err)
	}
	// The IdP goes down again: cached keys keep working, even when a
	// request triggers a (failing) refetch with an unknown kid.
	iss.SetDown(true)
	time.Sleep(5 * time.Millisecond)
	unknown := testissuer.Mint(testissuer.Token{Key: testissuer.NewRSA("k9"), Claims: iss.Claims(resource, "")})
	if _, err := v.Validate(ctx, unknown); ReasonOf(err) != ReasonUnknownKey {
		t.Fatalf("unknown kid during outage: %v", err)
	}
	if _, err := v.Validate(ctx, tok); err != nil {
		t.Fatalf("during outage: %v", err)
	}
}

func TestDiscovery(t *testing.T) {
	k1 := testissuer.NewRSA("k1")
	iss := testissuer.New(k1)
	defer iss.Close()
	ctx := context.Background()
	client := DefaultHTTPClient()
	u, err := Discover(ctx, client, iss.URL)
	if err != nil || u != iss.JWKSURL() {
		t.Fatalf("RFC 8414: %q %v", u, err)
	}
	iss.SetOIDCOnly(true)
	if u, err := Discover(ctx, client, iss.URL); err != nil || u != iss.JWKSURL() {
		t.Fatalf("OIDC fallback: %q %v", u, err)
	}
	iss.SetMetadataIssuer("https://attacker.example.com")
	if _, err := Discover(ctx, client, iss.URL); err == nil || !strings.Contains(err.Error(), "refused") {
		t.Fatalf("issuer mismatch accepted: %v", err)
	}
}

func TestDiscoveryURLs(t *testing.T) {
	got, _ := DiscoveryURLs("https://kc.example.com/realms/x/")
	want := []string{
		"https://kc.example.com/.well-known/oauth-authorization-server/realms/x",
		"https://kc.example.com/.well-known/openid-configuration/realms/x",
		"https://kc.example.com/realms/x/.well-known/openid-configuration",
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("got %q", got)
	}
	got, _ = DiscoveryURLs("https://idp.example.com")
	if len(got) != 2 || got[0] != "https://idp.example.com/.well-known/oauth-authorization-server" {
		t.Fatalf("got %q", got)
	}
}

func TestCheckURL(t *testing.T) {
	for u, ok := range map[string]bool{
		"https://idp.example.com":      true,
		"http://127.0.0.1:8080":        true,
		"http://localhost":             true,
		"http://[::1]:9":               true,
		"http://idp.example.com":       false,
		"http://10.0.0.1":              false,
		"ftp://idp.example.com":        false,
		"/relative":                    false,
		"http://localhost.example.com": false,
	} {
		if err := CheckURL(u); (err == nil) != ok {
			t.Errorf("CheckURL(%q) = %v", u, err)
		}
	}
}

func TestJWKSFile(t *testing.T) {
	k := testissuer.NewEC("f1")
	iss := testissuer.New(k)
	defer iss.Close()
	dir := t.TempDir()
	path := dir + "/jwks.json"
	if err := writeFile(path, iss.JWKSDocument()); err != nil {
		t.Fatal(err)
	}
	iss.SetDown(true)
	src := newSource(t, KeySourceConfig{Issuer: iss.URL, JWKSFile: path})
	v, _ := New(Config{Issuers: []*Issuer{{ID: iss.URL, Audiences: []string{resource}, Keys: src}}})
	if _, err := v.Validate(context.Background(), testissuer.Mint(testissuer.Token{Key: k, Claims: iss.Claims(resource, "")})); err != nil {
		t.Fatal(err)
	}
	if iss.JWKSFetches.Load() != 0 {
		t.Fatal("jwks_file source fetched over HTTP")
	}
	if _, err := NewKeySource(KeySourceConfig{Issuer: iss.URL, JWKSFile: dir + "/missing.json"}); err == nil {
		t.Fatal("missing jwks_file accepted")
	}
	_ = writeFile(path, []byte(`{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}`))
	if _, err := NewKeySource(KeySourceConfig{Issuer: iss.URL, JWKSFile: path}); err == nil {
		t.Fatal("jwks_file without usable keys accepted")
	}
}

func TestFetchLimits(t *testing.T) {
	k := testissuer.NewRSA("k")
	iss := testissuer.New(k)
	defer iss.Close()
	iss.SetDelay(300 * time.Millisecond)
	client := DefaultHTTPClient()
	client.Timeout = 50 * time.Millisecond
	src := newSource(t, KeySourceConfig{Issuer: iss.URL, JWKSURI: iss.JWKSURL(), Client: client, RefetchFloor: time.Millisecond})
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if set := src.Refetch(ctx); set != nil {
		t.Fatal("slow IdP beyond the timeout produced keys")
	}
}
