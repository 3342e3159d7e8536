package introspect

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"testing"
	"time"

	"github.com/mcpauth/caddy-mcp-auth/internal/testissuer"
	"github.com/mcpauth/caddy-mcp-auth/validator"
)

func b64(v any) string {
	b, _ := json.Marshal(v)
	return base64.RawURLEncoding.EncodeToString(b)
}

// TestSignedAnswers covers RFC 9701 answers. Each refused case differs from
// the accepted one in one respect.
func TestSignedAnswers(t *testing.T) {
	clk := newClock()
	key := testissuer.NewEC("introspection-1")
	forger := testissuer.NewEC("introspection-1") // same kid, other key
	stranger := testissuer.NewEC("unknown-kid")
	rsaKey := testissuer.NewRSA("rsa-1")

	envelope := func(mod func(map[string]any), inner map[string]any) map[string]any {
		m := map[string]any{
			"iss":                 issuer,
			"aud":                 clientID,
			"iat":                 clk.Unix(0),
			"token_introspection": inner,
		}
		if mod != nil {
			mod(m)
		}
		return m
	}
	sign := func(k *testissuer.Key, hdr map[string]any, claims map[string]any) string {
		h := map[string]any{"typ": "token-introspection+jwt"}
		for n, v := range hdr {
			h[n] = v
		}
		return testissuer.Mint(testissuer.Token{Key: k, Header: h, Claims: claims})
	}
	jwtAnswer := func(s string) answerFunc { return rawAnswer(200, mediaTypeJWT, s) }
	good := envelope(nil, active(clk, nil))

	hsInput := b64(map[string]any{"alg": "HS256", "typ": "token-introspection+jwt"}) + "." + b64(good)
	mac := hmac.New(sha256.New, []byte("secret"))
	mac.Write([]byte(hsInput))
	hs256 := hsInput + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
	none := b64(map[string]any{"alg": "none", "typ": "token-introspection+jwt"}) + "." + b64(good) + ".c2ln"

	type tc struct {
		name    string
		answer  answerFunc
		temp    bool
		reason  validator.Reason
		refetch bool
	}
	cases := []tc{
		{name: "valid", answer: jwtAnswer(sign(key, nil, good))},
		{name: "valid, typ with application/", answer: jwtAnswer(sign(key, map[string]any{"typ": "application/token-introspection+jwt"}, good))},
		{name: "valid, content type parameter", answer: rawAnswer(200, mediaTypeJWT+"; charset=utf-8", sign(key, nil, good))},
		{name: "valid, aud array", answer: jwtAnswer(sign(key, nil, envelope(func(m map[string]any) { m["aud"] = []string{"x", clientID} }, active(clk, nil))))},
		{name: "valid RSA", answer: jwtAnswer(sign(rsaKey, nil, good))},
		{name: "plain JSON still accepted", answer: jsonAnswer(active(clk, nil))},
		{name: "inactive", answer: jwtAnswer(sign(key, nil, envelope(nil, map[string]any{"active": false}))), reason: reasonInactive},
		{name: "inner aud wrong", answer: jwtAnswer(sign(key, nil, envelope(nil, active(clk, func(m map[string]any) { m["aud"] = "https://other.example.com" })))), reason: validator.ReasonAudience},
		{name: "typ at+jwt", answer: jwtAnswer(sign(key, map[string]any{"typ": "at+jwt"}, good)), temp: true},
		{name: "no typ", answer: jwtAnswer(sign(key, map[string]any{"typ": nil}, good)), temp: true},
		{name: "crit", answer: jwtAnswer(sign(key, map[string]any{"crit": []string{"exp"}}, good)), temp: true},
		{name: "forged signature", answer: jwtAnswer(sign(forger, nil, good)), temp: true},
		{name: "unknown kid", answer: jwtAnswer(sign(stranger, nil, good)), temp: true, refetch: true},
		{name: "alg none", answer: jwtAnswer(none), temp: true},
		{name: "alg HS256", answer: jwtAnswer(hs256), temp: true},
		{name: "wrong iss", answer: jwtAnswer(sign(key, nil, envelope(func(m map[string]any) { m["iss"] = "https://evil.example.com" }, active(clk, nil)))), temp: true},
		{name: "wrong aud", answer: jwtAnswer(sign(key, nil, envelope(func(m map[string]any) { m["aud"] = resource }, active(clk, nil)))), temp: true},
		{name: "no aud", answer: jwtAnswer(sign(key, nil, envelope(func(m map[string]any) { delete(m, "aud") }, active(clk, nil)))), temp: true},
		{name: "expired envelope", answer: jwtAnswer(sign(key, nil, envelope(func(m map[string]any) { m["exp"] = clk.Unix(-time.Minute) }, active(clk, nil)))), temp: true},
		{name: "no token_introspection", answer: jwtAnswer(sign(key, nil, envelope(func(m map[string]any) { delete(m, "token_introspection") }, nil))), temp: true},
		{name: "an access token instead", answer: jwtAnswer(testissuer.Mint(testissuer.Token{Key: key, Claims: active(clk, nil)})), temp: true},
		{name: "not a JWS", answer: jwtAnswer("a.b"), temp: true},
	}
	ep := newEndpoint(t)
	for n, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tok := "signed-" + string(rune('a'+n))
			ep.set(tok, c.answer)
			keys := newKeys(t, key, rsaKey)
			i, l := newIntrospector(t, ep, clk, func(cfg *Config) { cfg.Keys = keys })
			cl, err := i.Introspect(context.Background(), tok)
			wantErr(t, err, c.temp, c.reason)
			if err == nil && (cl.Subject != "user-1" || cl.Scope != "mcp:read mcp:write") {
				t.Fatalf("claims %+v", cl)
			}
			if err == nil {
				if u, ok := cl.StringClaim("username"); !ok || u != "alice" {
					t.Fatalf("username %q", u)
				}
			}
			if got := keys.refetchs.Load() > 0; got != c.refetch {
				t.Fatalf("refetched = %v", got)
			}
			if a := ep.lastAccept(); a != mediaTypeJWT+", application/json;q=0.5" {
				t.Fatalf("Accept %q", a)
			}
			noSecrets(t, l, []error{err}, tok, clientSecret)
		})
	}
}

func TestAcceptedAlg(t *testing.T) {
	for _, a := range []string{"RS256", "PS256", "ES256", "EdDSA"} {
		if !acceptedAlg(a) {
			t.Errorf("%s refused", a)
		}
	}
	for _, a := range []string{"", "none", "noNE", "HS256", "HS512", "rs256"} {
		if acceptedAlg(a) {
			t.Errorf("%s accepted", a)
		}
	}
}

// TestAlgorithmRefusedBeforeKeys: "none" and HMAC are refused by the
// allow-list itself, whatever the key set would say.
func TestAlgorithmRefusedBeforeKeys(t *testing.T) {
	saved := verifyWithSet
	verifyWithSet = func(*validator.KeySet, string, string, []byte, []byte) error { return nil }
	defer func() { verifyWithSet = saved }()
	clk := newClock()
	ep := newEndpoint(t)
	good := map[string]any{"iss": issuer, "aud": clientID, "token_introspection": active(clk, nil)}
	for _, alg := range []string{"none", "HS256"} {
		ep.set(alg, rawAnswer(200, mediaTypeJWT, b64(map[string]any{"alg": alg, "typ": "token-introspection+jwt"})+"."+b64(good)+".c2ln"))
	}
	ep.set("ES256", rawAnswer(200, mediaTypeJWT, b64(map[string]any{"alg": "ES256", "typ": "token-introspection+jwt"})+"."+b64(good)+".c2ln"))
	keys := newKeys(t, testissuer.NewEC("k"))
	i, _ := newIntrospector(t, ep, clk, func(c *Config) { c.Keys = keys })
	for _, alg := range []string{"none", "HS256"} {
		_, err := i.Introspect(context.Background(), alg)
		wantErr(t, err, true, 0)
	}
	// The stand-in verifier accepts anything, so ES256 passes: the refusals
	// above come from the allow-list.
	if _, err := i.Introspect(context.Background(), "ES256"); err != nil {
		t.Fatal(err)
	}
}
