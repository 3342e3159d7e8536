package validator

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/mcpauth/caddy-mcp-auth/internal/testissuer"
)

func FuzzParseAuthorization(f *testing.F) {
	for _, s := range []string{
		"", "Bearer", "Bearer ", "bearer abc", "BEARER abc==", "Bearer  a.b.c  ", "Bearer a b",
		"Basic dXNlcjpwYXNz", "Bearerabc", "Bearer\tabc", "Bearer a=b", "Bearer ~+/-._", "Bearer \x00",
		"DPoP eyJ", "Bearer eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		tok, kind := ParseAuthorization(v)
		switch kind {
		case BearerToken:
			if tok == "" || !strings.Contains(v, tok) {
				t.Fatalf("token %q not in %q", tok, v)
			}
			if !strings.EqualFold(v[:7], "bearer ") {
				t.Fatalf("accepted scheme of %q", v)
			}
			trimmed := strings.TrimRight(strings.TrimLeft(v[7:], " "), " \t")
			if tok != trimmed {
				t.Fatalf("token %q, want %q", tok, trimmed)
			}
			eq := false
			for i := 0; i < len(tok); i++ {
				c := tok[i]
				if c == '=' {
					eq = true
					continue
				}
				if eq || !token68[c] {
					t.Fatalf("token %q is not a token68", tok)
				}
			}
		case BearerMalformed:
			if len(v) < 6 || !strings.EqualFold(v[:6], "bearer") {
				t.Fatalf("malformed bearer for non-bearer %q", v)
			}
		case NoBearer:
			if tok != "" {
				t.Fatal("token returned for no bearer")
			}
		}
	})
}

type staticKeys struct{ set *KeySet }

func (s staticKeys) Keys() *KeySet                       { return s.set }
func (s staticKeys) Refetch(ctx context.Context) *KeySet { return s.set }

// FuzzValidate feeds arbitrary strings to the whole validation path: it must
// never panic, every refusal must carry a reason, and nothing the fuzzer can
// build without the private key may be accepted other than the seeds.
func FuzzValidate(f *testing.F) {
	key := testissuer.NewRSA("k")
	doc := `{"keys":[` + mustJSON(key.JWK()) + `]}`
	set, _, err := ParseKeySet([]byte(doc))
	if err != nil {
		f.Fatal(err)
	}
	const iss = "https://idp.example.com"
	v, err := New(Config{Issuers: []*Issuer{{ID: iss, Audiences: []string{resource}, Keys: staticKeys{set}}}, ClockSkew: time.Minute})
	if err != nil {
		f.Fatal(err)
	}
	claims := map[string]any{"iss": iss, "aud": resource, "sub": "s", "exp": time.Now().Add(time.Hour).Unix()}
	valid := testissuer.Mint(testissuer.Token{Key: key, Claims: claims})
	f.Add(valid)
	f.Add(valid[:len(valid)-2])
	f.Add(strings.Replace(valid, ".", "..", 1))
	f.Add("a.b.c")
	f.Add("eyJhbGciOiJub25lIn0.eyJpc3MiOiJodHRwczovL2lkcC5leGFtcGxlLmNvbSJ9.")
	f.Add(enc(map[string]any{"alg": "RS256", "crit": []string{"x"}}) + "." + enc(claims) + ".AAAA")
	f.Fuzz(func(t *testing.T, tok string) {
		c, err := v.Validate(context.Background(), tok)
		if err != nil {
			if ReasonOf(err) == ReasonNone {
				t.Fatalf("refusal without reason: %v", err)
			}
			return
		}
		// Accepted: it must be a correctly signed token, which only the
		// seed is (or a re-encoding the signature still covers).
		if c.Issuer != iss || c.Subject != "s" {
			t.Fatalf("accepted %q with claims %+v", tok, c)
		}
		if err := PreCheck(tok); err != nil {
			t.Fatalf("accepted a token PreCheck refuses: %v", err)
		}
	})
}

func mustJSON(v any) string {
	s := enc(v)
	b, _ := decodeSegment(s)
	return string(b)
}
