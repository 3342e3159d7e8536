package introspect

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/mcpauth/caddy-mcp-auth/validator"
)

func TestNewRefusesBadConfig(t *testing.T) {
	good := Config{Issuer: issuer, Endpoint: "https://idp.example.com/introspect", ClientID: "gw", Audiences: []string{resource}}
	if _, err := New(good); err != nil {
		t.Fatalf("good config refused: %v", err)
	}
	cases := map[string]func(*Config){
		"no issuer":               func(c *Config) { c.Issuer = "" },
		"http endpoint":           func(c *Config) { c.Endpoint = "http://idp.example.com/introspect" },
		"relative endpoint":       func(c *Config) { c.Endpoint = "/introspect" },
		"endpoint with userinfo":  func(c *Config) { c.Endpoint = "https://gw:pw@idp.example.com/introspect" },
		"endpoint with fragment":  func(c *Config) { c.Endpoint = "https://idp.example.com/introspect#x" },
		"no endpoint, bad issuer": func(c *Config) { c.Endpoint = ""; c.Issuer = "idp" },
		"no client_id":            func(c *Config) { c.ClientID = "" },
		"bad client_auth":         func(c *Config) { c.ClientAuth = "private_key_jwt" },
		"no audience":             func(c *Config) { c.Audiences = nil },
		"negative skew":           func(c *Config) { c.ClockSkew = -time.Second },
		"negative cache entries":  func(c *Config) { c.CacheEntries = -1 },
	}
	for name, mod := range cases {
		t.Run(name, func(t *testing.T) {
			c := good
			mod(&c)
			if _, err := New(c); err == nil {
				t.Fatal("accepted")
			}
		})
	}
	for _, ok := range []func(*Config){
		func(c *Config) { c.Endpoint = "http://127.0.0.1:9/introspect" },
		func(c *Config) { c.Endpoint = "" }, // discovered later
		func(c *Config) { c.ClientAuth = "post" },
		func(c *Config) { c.ClientAuth = "client_secret_basic" },
	} {
		c := good
		ok(&c)
		if _, err := New(c); err != nil {
			t.Errorf("refused: %v", err)
		}
	}
}

func TestIntrospectActive(t *testing.T) {
	clk := newClock()
	ep := newEndpoint(t)
	ep.set("tok-1", jsonAnswer(active(clk, nil)))
	i, _ := newIntrospector(t, ep, clk, nil)
	c, err := i.Introspect(context.Background(), "tok-1")
	if err != nil {
		t.Fatal(err)
	}
	if m := ep.malformed(); m != "" {
		t.Fatalf("endpoint saw a malformed request: %s", m)
	}
	if got := ep.lastAccept(); got != "application/json" {
		t.Errorf("Accept = %q", got)
	}
	if c.Issuer != issuer || c.Subject != "user-1" || c.ClientID != "mcp-client" || c.Scope != "mcp:read mcp:write" ||
		!c.HasScope("mcp:write") || c.ACR != "urn:example:mfa" || c.AuthTime != clk.Unix(-2*time.Minute) ||
		c.Expiry != clk.Unix(time.Hour) || c.JTI != "jti-1" || len(c.Audience) != 1 || c.Audience[0] != resource {
		t.Fatalf("claims: %+v", c)
	}
	if u, ok := c.StringClaim("username"); !ok || u != "alice" {
		t.Errorf("StringClaim(username) = %q, %v", u, ok)
	}
	if i.Calls() != 1 {
		t.Errorf("calls = %d", i.Calls())
	}
}

// TestResponseChecks has one case per check of the answer: each refused
// case differs from an accepted answer in the one member the check reads,
// so removing the check makes its case fail.
func TestResponseChecks(t *testing.T) {
	clk := newClock()
	big := strings.Repeat(" ", DefaultMaxResponse)
	type tc struct {
		name   string
		answer answerFunc
		cfg    func(*Config)
		temp   bool
		reason validator.Reason // ReasonNone with temp false: accepted
	}
	mod := func(f func(map[string]any)) answerFunc { return jsonAnswer(active(clk, f)) }
	cases := []tc{
		{name: "active", answer: mod(nil)},
		{name: "inactive", answer: jsonAnswer(map[string]any{"active": false}), reason: reasonInactive},
		{name: "inactive with claims", answer: mod(func(m map[string]any) { m["active"] = false }), reason: reasonInactive},
		{name: "active is a string", answer: mod(func(m map[string]any) { m["active"] = "true" }), temp: true},
		{name: "active missing", answer: mod(func(m map[string]any) { delete(m, "active") }), temp: true},
		{name: "active null", answer: mod(func(m map[string]any) { m["active"] = nil }), temp: true},
		{name: "wrong iss", answer: mod(func(m map[string]any) { m["iss"] = "https://evil.example.com" }), reason: validator.ReasonUnknownIssuer},
		{name: "iss with trailing slash", answer: mod(func(m map[string]any) { m["iss"] = issuer + "/" }), reason: validator.ReasonUnknownIssuer},
		{name: "no iss", answer: mod(func(m map[string]any) { delete(m, "iss") })},
		{name: "other aud", answer: mod(func(m map[string]any) { m["aud"] = "https://other.example.com" }), reason: validator.ReasonAudience},
		{name: "aud array with ours", answer: mod(func(m map[string]any) { m["aud"] = []string{"https://other.example.com", resource} })},
		{name: "aud array without ours", answer: mod(func(m map[string]any) { m["aud"] = []string{"https://other.example.com"} }), reason: validator.ReasonAudience},
		{name: "no aud", answer: mod(func(m map[string]any) { delete(m, "aud") }), reason: validator.ReasonNoAudience},
		{name: "empty aud array", answer: mod(func(m map[string]any) { m["aud"] = []string{} }), reason: validator.ReasonNoAudience},
		{name: "null aud", answer: mod(func(m map[string]any) { m["aud"] = nil }), reason: validator.ReasonNoAudience},
		{name: "no aud allowed", answer: mod(func(m map[string]any) { delete(m, "aud") }), cfg: func(c *Config) { c.AllowMissingAudience = true }},
		// oidc-provider answers for refresh tokens like this: active, no aud,
		// no token_type. Even with the opt-in it must not pass as an access
		// token.
		{name: "no aud and no token_type refused even when allowed", answer: mod(func(m map[string]any) { delete(m, "aud"); delete(m, "token_type") }), cfg: func(c *Config) { c.AllowMissingAudience = true }, reason: validator.ReasonNoAudience},
		{name: "other aud with missing allowed", answer: mod(func(m map[string]any) { m["aud"] = "https://other.example.com" }), cfg: func(c *Config) { c.AllowMissingAudience = true }, reason: validator.ReasonAudience},
		{name: "aud of another type", answer: mod(func(m map[string]any) { m["aud"] = 42 }), temp: true},
		{name: "expired", answer: mod(func(m map[string]any) { m["exp"] = clk.Unix(-time.Second) }), reason: validator.ReasonExpired},
		{name: "expires now", answer: mod(func(m map[string]any) { m["exp"] = clk.Unix(0) }), reason: validator.ReasonExpired},
		{name: "expired within skew", answer: mod(func(m map[string]any) { m["exp"] = clk.Unix(-30 * time.Second) }), cfg: func(c *Config) { c.ClockSkew = time.Minute }},
		{name: "expired beyond skew", answer: mod(func(m map[string]any) { m["exp"] = clk.Unix(-90 * time.Second) }), cfg: func(c *Config) { c.ClockSkew = time.Minute }, reason: validator.ReasonExpired},
		{name: "no exp", answer: mod(func(m map[string]any) { delete(m, "exp") })},
		{name: "exp is a string", answer: mod(func(m map[string]any) { m["exp"] = "soon" }), temp: true},
		{name: "nbf in the future", answer: mod(func(m map[string]any) { m["nbf"] = clk.Unix(time.Minute) }), reason: validator.ReasonNotYetValid},
		{name: "nbf within skew", answer: mod(func(m map[string]any) { m["nbf"] = clk.Unix(30 * time.Second) }), cfg: func(c *Config) { c.ClockSkew = time.Minute }},
		{name: "token_type refresh_token", answer: mod(func(m map[string]any) { m["token_type"] = "refresh_token" }), reason: validator.ReasonUnsupportedType},
		{name: "token_type DPoP", answer: mod(func(m map[string]any) { m["token_type"] = "DPoP" }), reason: validator.ReasonUnsupportedType},
		{name: "token_type id_token", answer: mod(func(m map[string]any) { m["token_type"] = "urn:ietf:params:oauth:token-type:id_token" }), reason: validator.ReasonUnsupportedType},
		{name: "token_type access_token", answer: mod(func(m map[string]any) { m["token_type"] = "access_token" })},
		{name: "token_type bearer", answer: mod(func(m map[string]any) { m["token_type"] = "bearer" })},
		{name: "no token_type", answer: mod(func(m map[string]any) { delete(m, "token_type") })},
		{name: "cnf", answer: mod(func(m map[string]any) {
			m["cnf"] = map[string]any{"jkt": "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"}
		}), reason: validator.ReasonSenderConstrained},
		{name: "cnf x5t", answer: mod(func(m map[string]any) {
			m["cnf"] = map[string]any{"x5t#S256": "bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2"}
		}), reason: validator.ReasonSenderConstrained},
		{name: "cnf null", answer: mod(func(m map[string]any) { m["cnf"] = nil })},
		{name: "sub of another type ignored", answer: mod(func(m map[string]any) { m["sub"] = 7 })},
		{name: "status 500", answer: rawAnswer(500, "text/plain", "boom"), temp: true},
		{name: "status 503", answer: rawAnswer(503, "", ""), temp: true},
		{name: "status 400", answer: rawAnswer(400, "application/json", `{"error":"invalid_request"}`), temp: true},
		{name: "status 404", answer: rawAnswer(404, "", ""), temp: true},
		{name: "garbage", answer: rawAnswer(200, "application/json", `{"active": tru`), temp: true},
		{name: "html", answer: rawAnswer(200, "text/html", `<html>login</html>`), temp: true},
		{name: "JSON array", answer: rawAnswer(200, "application/json", `[{"active":true}]`), temp: true},
		{name: "empty body", answer: rawAnswer(200, "application/json", ``), temp: true},
		// Valid JSON followed by whitespace: only the size limit refuses it.
		{name: "oversize", answer: padded(active(clk, nil), big), temp: true},
		{name: "oversize with larger limit", answer: padded(active(clk, nil), big), cfg: func(c *Config) { c.MaxResponse = 2 * DefaultMaxResponse }},
		{name: "signed answer without keys", answer: rawAnswer(200, mediaTypeJWT, "eyJhbGciOiJSUzI1NiJ9.e30.c2ln"), temp: true},
		{name: "slow", answer: func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-time.After(5 * time.Second):
			case <-r.Context().Done():
			}
		}, cfg: func(c *Config) { c.Timeout = 100 * time.Millisecond }, temp: true},
	}
	ep := newEndpoint(t)
	for n, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tok := "tok-" + string(rune('a'+n%26)) + strings.Repeat("x", n)
			ep.set(tok, c.answer)
			i, l := newIntrospector(t, ep, clk, c.cfg)
			cl, err := i.Introspect(context.Background(), tok)
			wantErr(t, err, c.temp, c.reason)
			if err == nil && cl == nil {
				t.Fatal("nil claims")
			}
			if i.Calls() != 1 {
				t.Fatalf("calls = %d", i.Calls())
			}
			noSecrets(t, l, []error{err}, tok, clientSecret)
		})
	}
	if m := ep.malformed(); m != "" {
		t.Fatalf("endpoint saw a malformed request: %s", m)
	}
}

func padded(v any, pad string) answerFunc {
	b, _ := json.Marshal(v)
	return rawAnswer(200, "application/json", string(b)+pad)
}

func TestScopeClaim(t *testing.T) {
	clk := newClock()
	ep := newEndpoint(t)
	ep.set("arr", jsonAnswer(active(clk, func(m map[string]any) { m["scp"] = []string{"a", "b"}; m["scope"] = "ignored" })))
	ep.set("str", jsonAnswer(active(clk, func(m map[string]any) { m["scp"] = "c d" })))
	ep.set("none", jsonAnswer(active(clk, func(m map[string]any) { delete(m, "scope") })))
	ep.set("bad", jsonAnswer(active(clk, func(m map[string]any) { m["scp"] = 5 })))
	i, _ := newIntrospector(t, ep, clk, func(c *Config) { c.ScopeClaim = "scp" })
	for tok, want := range map[string]string{"arr": "a b", "str": "c d", "none": ""} {
		c, err := i.Introspect(context.Background(), tok)
		if err != nil || c.Scope != want {
			t.Errorf("%s: scope %q, %v; want %q", tok, c.Scope, err, want)
		}
	}
	_, err := i.Introspect(context.Background(), "bad")
	wantErr(t, err, true, 0)

	// The default is the space-delimited "scope" string; "scp" is not read.
	d, _ := newIntrospector(t, ep, clk, nil)
	c, err := d.Introspect(context.Background(), "arr")
	if err != nil || c.Scope != "ignored" {
		t.Fatalf("scope %q, %v", c.Scope, err)
	}
}

func TestMalformedTokensMakeNoCall(t *testing.T) {
	clk := newClock()
	ep := newEndpoint(t)
	ep.setDefault(jsonAnswer(active(clk, nil)))
	i, _ := newIntrospector(t, ep, clk, nil)
	for tok, r := range map[string]validator.Reason{
		"":      validator.ReasonMalformed,
		"a b":   validator.ReasonMalformed,
		"a\x00": validator.ReasonMalformed,
		"=abc":  validator.ReasonMalformed,
		"ab=c":  validator.ReasonMalformed,
		"tok\n": validator.ReasonMalformed,
		strings.Repeat("a", validator.MaxTokenSize+1): validator.ReasonTooLarge,
	} {
		_, err := i.Introspect(context.Background(), tok)
		wantErr(t, err, false, r)
	}
	if i.Calls() != 0 {
		t.Fatalf("calls = %d", i.Calls())
	}
	// Padding and the full token68 alphabet are fine.
	if _, err := i.Introspect(context.Background(), "aZ09-._~+/=="); err != nil {
		t.Fatal(err)
	}
}

func TestClientAuthentication(t *testing.T) {
	clk := newClock()
	for _, mode := range []string{"basic", "post"} {
		t.Run(mode, func(t *testing.T) {
			ep := newEndpoint(t)
			ep.setAuth(mode)
			ep.setDefault(jsonAnswer(active(clk, nil)))
			i, _ := newIntrospector(t, ep, clk, func(c *Config) { c.ClientAuth = mode })
			if _, err := i.Introspect(context.Background(), "tok"); err != nil {
				t.Fatal(err)
			}
			if m := ep.malformed(); m != "" {
				t.Fatal(m)
			}
			// The other method is refused by this endpoint.
			other := map[string]string{"basic": "post", "post": "basic"}[mode]
			j, _ := newIntrospector(t, ep, clk, func(c *Config) { c.ClientAuth = other })
			_, err := j.Introspect(context.Background(), "tok")
			if err == nil {
				t.Fatal("wrong method accepted")
			}
		})
	}
}

func TestCredentialErrorLoggedOnce(t *testing.T) {
	clk := newClock()
	ep := newEndpoint(t)
	ep.setDefault(jsonAnswer(active(clk, nil)))
	ep.setCredentials(clientID, "rotated")
	i, l := newIntrospector(t, ep, clk, nil)
	var errs []error
	for n := 0; n < 5; n++ {
		_, err := i.Introspect(context.Background(), "opaque-7f3a")
		wantErr(t, err, true, 0)
		errs = append(errs, err)
	}
	if i.Calls() != 5 {
		t.Fatalf("temporary failures were cached: calls = %d", i.Calls())
	}
	const msg = "introspection endpoint rejected the gateway's client credentials; check client_id/client_secret"
	errorLogs := func() []observer.LoggedEntry {
		return l.FilterLevelExact(zapcore.ErrorLevel).All()
	}
	if es := errorLogs(); len(es) != 1 || es[0].Message != msg {
		t.Fatalf("error logs: %+v", es)
	}
	f := errorLogs()[0].ContextMap()
	if f["issuer"] != issuer || f["endpoint"] != ep.URL() {
		t.Fatalf("fields: %v", f)
	}

	// Fixed: one success re-arms the log; the next outage logs again.
	ep.setCredentials(clientID, clientSecret)
	if _, err := i.Introspect(context.Background(), "opaque-7f3a"); err != nil {
		t.Fatal(err)
	}
	ep.setCredentials(clientID, "rotated again")
	for n := 0; n < 3; n++ {
		_, err := i.Introspect(context.Background(), "opaque-8e2b")
		errs = append(errs, err)
	}
	if es := errorLogs(); len(es) != 2 {
		t.Fatalf("error logs after second outage: %d", len(es))
	}
	enc := url.QueryEscape(clientSecret)
	noSecrets(t, l, errs, clientSecret, enc, base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(clientID)+":"+enc)), "opaque-7f3a", "opaque-8e2b")
}

func TestOtherFailuresWarnOnce(t *testing.T) {
	clk := newClock()
	ep := newEndpoint(t)
	ep.setDefault(rawAnswer(500, "", ""))
	i, l := newIntrospector(t, ep, clk, nil)
	for n := 0; n < 4; n++ {
		_, err := i.Introspect(context.Background(), "tok")
		wantErr(t, err, true, 0)
	}
	if n := l.FilterLevelExact(zapcore.WarnLevel).Len(); n != 1 {
		t.Fatalf("warnings = %d, want 1", n)
	}
	if n := l.FilterLevelExact(zapcore.ErrorLevel).Len(); n != 0 {
		t.Fatalf("errors = %d, want 0", n)
	}
}

func TestRedirects(t *testing.T) {
	clk := newClock()
	ep := newEndpoint(t)
	ep.setDefault(jsonAnswer(active(clk, nil)))

	// Another origin: the token (and with post, the secret) must not go there.
	var foreign atomic.Int64
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		foreign.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"active":true,"aud":"` + resource + `"}`))
	}))
	defer other.Close()
	redir := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/same" {
			http.Redirect(w, r, "/introspect", http.StatusTemporaryRedirect)
			return
		}
		if r.URL.Path == "/introspect" {
			ep.serve(w, r)
			return
		}
		http.Redirect(w, r, other.URL+"/introspect", http.StatusTemporaryRedirect)
	}))
	defer redir.Close()

	for _, auth := range []string{"basic", "post"} {
		i, _ := newIntrospector(t, ep, clk, func(c *Config) { c.Endpoint = redir.URL + "/away"; c.ClientAuth = auth })
		ep.setAuth(auth)
		_, err := i.Introspect(context.Background(), "tok-"+auth)
		wantErr(t, err, true, 0)
	}
	if foreign.Load() != 0 {
		t.Fatalf("request followed a redirect to another origin")
	}
	ep.setAuth("basic")
	i, _ := newIntrospector(t, ep, clk, func(c *Config) { c.Endpoint = redir.URL + "/same" })
	if _, err := i.Introspect(context.Background(), "tok"); err != nil {
		t.Fatalf("same-origin 307: %v", err)
	}
}

func TestDiscovery(t *testing.T) {
	clk := newClock()
	ep := newEndpoint(t)
	ep.setDefault(jsonAnswer(active(clk, func(m map[string]any) { delete(m, "iss") })))
	var fetches atomic.Int64
	var mdIssuer atomic.Value
	var oidcOnly atomic.Bool
	var endpointURL atomic.Value
	endpointURL.Store(ep.URL())
	md := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fetches.Add(1)
		if r.URL.Path == "/.well-known/oauth-authorization-server/tenant" && oidcOnly.Load() {
			http.NotFound(w, r)
			return
		}
		switch r.URL.Path {
		case "/.well-known/oauth-authorization-server/tenant", "/.well-known/openid-configuration/tenant", "/tenant/.well-known/openid-configuration":
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"issuer":"` + mdIssuer.Load().(string) + `","introspection_endpoint":"` + endpointURL.Load().(string) + `"}`))
		default:
			http.NotFound(w, r)
		}
	}))
	defer md.Close()
	iss := md.URL + "/tenant"

	t.Run("rfc8414", func(t *testing.T) {
		fetches.Store(0)
		mdIssuer.Store(iss)
		i, _ := newIntrospector(t, ep, clk, func(c *Config) { c.Issuer = iss; c.Endpoint = "" })
		for _, tok := range []string{"a", "b", "c"} {
			c, err := i.Introspect(context.Background(), tok)
			if err != nil {
				t.Fatal(err)
			}
			if c.Issuer != iss {
				t.Fatalf("issuer %q", c.Issuer)
			}
		}
		if fetches.Load() != 1 {
			t.Fatalf("metadata fetches = %d, want 1", fetches.Load())
		}
	})
	t.Run("oidc fallback", func(t *testing.T) {
		oidcOnly.Store(true)
		defer oidcOnly.Store(false)
		fetches.Store(0)
		i, _ := newIntrospector(t, ep, clk, func(c *Config) { c.Issuer = iss; c.Endpoint = "" })
		if _, err := i.Introspect(context.Background(), "a"); err != nil {
			t.Fatal(err)
		}
		if fetches.Load() != 2 {
			t.Fatalf("metadata fetches = %d, want 2", fetches.Load())
		}
	})
	t.Run("issuer mismatch", func(t *testing.T) {
		mdIssuer.Store("https://evil.example.com")
		defer mdIssuer.Store(iss)
		fetches.Store(0)
		i, _ := newIntrospector(t, ep, clk, func(c *Config) { c.Issuer = iss; c.Endpoint = "" })
		_, err := i.Introspect(context.Background(), "a")
		wantErr(t, err, true, 0)
		// Within the floor, no new discovery.
		_, err = i.Introspect(context.Background(), "b")
		wantErr(t, err, true, 0)
		if fetches.Load() != 3 || i.Calls() != 0 {
			t.Fatalf("fetches = %d, calls = %d", fetches.Load(), i.Calls())
		}
		// Fixed, and after the floor: discovered.
		mdIssuer.Store(iss)
		clk.Add(discoveryFloor)
		if _, err := i.Introspect(context.Background(), "c"); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("http endpoint on another host refused", func(t *testing.T) {
		endpointURL.Store("http://idp.example.com/introspect")
		defer endpointURL.Store(ep.URL())
		i, _ := newIntrospector(t, ep, clk, func(c *Config) { c.Issuer = iss; c.Endpoint = "" })
		_, err := i.Introspect(context.Background(), "a")
		wantErr(t, err, true, 0)
		if i.Calls() != 0 {
			t.Fatal("called a refused endpoint")
		}
	})
}

func TestErrorsAreValidatorErrors(t *testing.T) {
	// The caller maps errors with errors.As; a wrapped credential error
	// must still be a plain *validator.Error.
	clk := newClock()
	ep := newEndpoint(t)
	ep.setCredentials("x", "y")
	i, _ := newIntrospector(t, ep, clk, nil)
	_, err := i.Introspect(context.Background(), "tok")
	if _, ok := err.(*validator.Error); !ok {
		t.Fatalf("%T", err)
	}
	var ce *credentialError
	if errors.As(err, &ce) {
		t.Fatal("credentialError leaked to the caller")
	}
}
