package devas_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jws"
	"github.com/lestrrat-go/jwx/v3/jwt"

	"github.com/mcpauth/caddy-mcp-auth/internal/devas"
)

const (
	testResource = "https://mcp.example.test/mcp"
	testRedirect = "http://127.0.0.1:47011/callback"
)

// noRedirect is an http.Client that returns redirects instead of following
// them, which is how a test "is" the browser at /authorize.
var noRedirect = &http.Client{
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	Timeout:       10 * time.Second,
}

func quietOptions() devas.Options {
	return devas.Options{
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Banner: io.Discard,
	}
}

type harness struct {
	t      *testing.T
	srv    *devas.Server
	issuer string
	meta   map[string]any
}

func newHarness(t *testing.T, opts devas.Options) *harness {
	t.Helper()
	srv, err := devas.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv)
	t.Cleanup(ts.Close)
	h := &harness{t: t, srv: srv, issuer: ts.URL}
	h.meta = h.getJSON(ts.URL+"/.well-known/oauth-authorization-server", http.StatusOK)
	return h
}

func (h *harness) getJSON(u string, wantStatus int) map[string]any {
	h.t.Helper()
	resp, err := noRedirect.Get(u)
	if err != nil {
		h.t.Fatal(err)
	}
	return decodeJSON(h.t, resp, wantStatus)
}

func (h *harness) postForm(u string, form url.Values, wantStatus int) map[string]any {
	h.t.Helper()
	resp, err := noRedirect.PostForm(u, form)
	if err != nil {
		h.t.Fatal(err)
	}
	return decodeJSON(h.t, resp, wantStatus)
}

func decodeJSON(t *testing.T, resp *http.Response, wantStatus int) map[string]any {
	t.Helper()
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != wantStatus {
		t.Fatalf("%s %s: status %d, want %d; body %s", resp.Request.Method, resp.Request.URL, resp.StatusCode, wantStatus, body)
	}
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatalf("%s: body is not JSON: %v: %s", resp.Request.URL, err, body)
	}
	return m
}

func (h *harness) str(key string) string {
	h.t.Helper()
	s, ok := h.meta[key].(string)
	if !ok || s == "" {
		h.t.Fatalf("metadata %q missing: %v", key, h.meta)
	}
	return s
}

func (h *harness) register(redirectURIs ...string) string {
	h.t.Helper()
	body, _ := json.Marshal(map[string]any{
		"redirect_uris": redirectURIs,
		"client_name":   "devas test",
		"grant_types":   []string{"authorization_code", "refresh_token"},
	})
	resp, err := http.Post(h.str("registration_endpoint"), "application/json", strings.NewReader(string(body)))
	if err != nil {
		h.t.Fatal(err)
	}
	reg := decodeJSON(h.t, resp, http.StatusCreated)
	if reg["token_endpoint_auth_method"] != "none" {
		h.t.Errorf("token_endpoint_auth_method = %v, want none", reg["token_endpoint_auth_method"])
	}
	id, _ := reg["client_id"].(string)
	if id == "" {
		h.t.Fatalf("no client_id in %v", reg)
	}
	return id
}

type pkce struct{ verifier, challenge string }

func newPKCE() pkce {
	v := strings.Repeat("devas-test-verifier-", 3)
	sum := sha256.Sum256([]byte(v))
	return pkce{v, base64.RawURLEncoding.EncodeToString(sum[:])}
}

// authorize sends the authorization request and returns the query of the
// redirect back to the client.
func (h *harness) authorize(params url.Values) url.Values {
	h.t.Helper()
	resp, err := noRedirect.Get(h.str("authorization_endpoint") + "?" + params.Encode())
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		body, _ := io.ReadAll(resp.Body)
		h.t.Fatalf("authorize: status %d, want 302; body %s", resp.StatusCode, body)
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		h.t.Fatal(err)
	}
	redirect, _ := url.Parse(params.Get("redirect_uri"))
	if loc.Scheme != redirect.Scheme || loc.Host != redirect.Host || loc.Path != redirect.Path {
		h.t.Fatalf("authorize redirected to %s, want %s", loc, redirect)
	}
	return loc.Query()
}

func authParams(clientID string, p pkce, scope, resource string) url.Values {
	v := url.Values{
		"response_type":         {"code"},
		"client_id":             {clientID},
		"redirect_uri":          {testRedirect},
		"state":                 {"st-123"},
		"code_challenge":        {p.challenge},
		"code_challenge_method": {"S256"},
	}
	if scope != "" {
		v.Set("scope", scope)
	}
	if resource != "" {
		v.Set("resource", resource)
	}
	return v
}

// code runs /authorize and returns the code.
func (h *harness) code(params url.Values) string {
	h.t.Helper()
	q := h.authorize(params)
	if q.Get("error") != "" {
		h.t.Fatalf("authorize error: %s: %s", q.Get("error"), q.Get("error_description"))
	}
	if q.Get("state") != params.Get("state") {
		h.t.Fatalf("state = %q, want %q", q.Get("state"), params.Get("state"))
	}
	c := q.Get("code")
	if c == "" {
		h.t.Fatal("no code in redirect")
	}
	return c
}

func (h *harness) exchange(clientID, code string, p pkce, resource string, wantStatus int) map[string]any {
	h.t.Helper()
	form := url.Values{
		"grant_type":    {"authorization_code"},
		"code":          {code},
		"redirect_uri":  {testRedirect},
		"client_id":     {clientID},
		"code_verifier": {p.verifier},
	}
	if resource != "" {
		form.Set("resource", resource)
	}
	return h.postForm(h.str("token_endpoint"), form, wantStatus)
}

func (h *harness) keySet() jwk.Set {
	h.t.Helper()
	return fetchKeySet(h.t, h.str("jwks_uri"))
}

func fetchKeySet(t *testing.T, jwksURI string) jwk.Set {
	t.Helper()
	resp, err := http.Get(jwksURI)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	set, err := jwk.Parse(body)
	if err != nil {
		t.Fatalf("jwks: %v: %s", err, body)
	}
	return set
}

// verify checks the access token's JOSE header and signature (against the
// JWKS) and returns its claims.
func (h *harness) verify(token, wantAud string) map[string]any {
	h.t.Helper()
	msg, err := jws.Parse([]byte(token))
	if err != nil {
		h.t.Fatal(err)
	}
	hdr := msg.Signatures()[0].ProtectedHeaders()
	if typ, _ := hdr.Type(); typ != "at+jwt" {
		h.t.Errorf("typ = %q, want at+jwt", typ)
	}
	if kid, _ := hdr.KeyID(); kid == "" {
		h.t.Error("no kid in header")
	}
	if alg, _ := hdr.Algorithm(); alg.String() != "RS256" {
		h.t.Errorf("alg = %v, want RS256", alg)
	}
	if _, err := jwt.Parse([]byte(token), jwt.WithKeySet(h.keySet()), jwt.WithValidate(true),
		jwt.WithIssuer(h.issuer), jwt.WithAudience(wantAud)); err != nil {
		h.t.Fatalf("access token does not verify: %v", err)
	}
	parts := strings.Split(token, ".")
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		h.t.Fatal(err)
	}
	var claims map[string]any
	if err := json.Unmarshal(raw, &claims); err != nil {
		h.t.Fatal(err)
	}
	return claims
}

func num(t *testing.T, claims map[string]any, k string) int64 {
	t.Helper()
	f, ok := claims[k].(float64)
	if !ok {
		t.Fatalf("claim %q missing or not a number: %v", k, claims[k])
	}
	return int64(f)
}

func TestMetadata(t *testing.T) {
	h := newHarness(t, quietOptions())
	oidcMeta := h.getJSON(h.issuer+"/.well-known/openid-configuration", http.StatusOK)
	for name, m := range map[string]map[string]any{"rfc8414": h.meta, "oidc": oidcMeta} {
		if m["issuer"] != h.issuer {
			t.Errorf("%s: issuer = %v, want %s", name, m["issuer"], h.issuer)
		}
		if got, _ := json.Marshal(m["code_challenge_methods_supported"]); string(got) != `["S256"]` {
			t.Errorf("%s: code_challenge_methods_supported = %s", name, got)
		}
		for k, want := range map[string]string{
			"registration_endpoint":  h.issuer + "/register",
			"jwks_uri":               h.issuer + "/jwks",
			"authorization_endpoint": h.issuer + "/authorize",
			"token_endpoint":         h.issuer + "/token",
		} {
			if m[k] != want {
				t.Errorf("%s: %s = %v, want %s", name, k, m[k], want)
			}
		}
	}
	if got, _ := json.Marshal(h.meta["token_endpoint_auth_methods_supported"]); string(got) != `["none"]` {
		t.Errorf("token_endpoint_auth_methods_supported = %s", got)
	}
	if got, _ := json.Marshal(h.meta["acr_values_supported"]); string(got) != `["urn:demo:pwd","urn:demo:mfa"]` {
		t.Errorf("acr_values_supported = %s", got)
	}
}

func TestCodeFlowAndRefresh(t *testing.T) {
	h := newHarness(t, quietOptions())
	clientID := h.register(testRedirect)
	p := newPKCE()

	code := h.code(authParams(clientID, p, "mcp:tools mcp:admin", testResource))
	tok := h.exchange(clientID, code, p, testResource, http.StatusOK)
	if tok["token_type"] != "Bearer" {
		t.Errorf("token_type = %v", tok["token_type"])
	}
	if tok["scope"] != "mcp:tools mcp:admin" {
		t.Errorf("token response scope = %v", tok["scope"])
	}
	if num(t, tok, "expires_in") != 300 {
		t.Errorf("expires_in = %v, want 300", tok["expires_in"])
	}
	claims := h.verify(tok["access_token"].(string), testResource)
	if claims["aud"] != testResource {
		t.Errorf("aud = %v (%T), want the resource string", claims["aud"], claims["aud"])
	}
	for k, want := range map[string]string{
		"iss": h.issuer, "sub": "demo-user", "client_id": clientID,
		"scope": "mcp:tools mcp:admin", "acr": "urn:demo:pwd",
	} {
		if claims[k] != want {
			t.Errorf("claim %s = %v, want %q", k, claims[k], want)
		}
	}
	if claims["jti"] == "" || claims["jti"] == nil {
		t.Error("no jti")
	}
	if exp, iat := num(t, claims, "exp"), num(t, claims, "iat"); exp-iat < 299 || exp-iat > 301 {
		t.Errorf("exp-iat = %d, want 300", exp-iat)
	}
	if got, want := num(t, claims, "auth_time"), h.srv.LoginTime().Unix(); got != want {
		t.Errorf("auth_time = %d, want login time %d", got, want)
	}
	if n := h.srv.TokensIssued(); n != 1 {
		t.Errorf("TokensIssued = %d, want 1", n)
	}

	// The code is single use.
	e := h.exchange(clientID, code, p, "", http.StatusBadRequest)
	if e["error"] != "invalid_grant" {
		t.Errorf("code replay: error = %v, want invalid_grant", e["error"])
	}

	// Refresh: same resource without sending it, narrower scope.
	rt, _ := tok["refresh_token"].(string)
	if rt == "" {
		t.Fatal("no refresh_token")
	}
	tok2 := h.postForm(h.str("token_endpoint"), url.Values{
		"grant_type": {"refresh_token"}, "refresh_token": {rt}, "client_id": {clientID}, "scope": {"mcp:tools"},
	}, http.StatusOK)
	claims2 := h.verify(tok2["access_token"].(string), testResource)
	if claims2["scope"] != "mcp:tools" || tok2["scope"] != "mcp:tools" {
		t.Errorf("refreshed scope = %v / %v, want mcp:tools", claims2["scope"], tok2["scope"])
	}
	if claims2["aud"] != testResource || claims2["acr"] != "urn:demo:pwd" || num(t, claims2, "auth_time") != num(t, claims, "auth_time") {
		t.Errorf("refresh changed aud/acr/auth_time: %v", claims2)
	}
	if claims2["jti"] == claims["jti"] {
		t.Error("refreshed token reuses jti")
	}

	// Rotation: the old refresh token is dead.
	e = h.postForm(h.str("token_endpoint"), url.Values{
		"grant_type": {"refresh_token"}, "refresh_token": {rt}, "client_id": {clientID},
	}, http.StatusBadRequest)
	if e["error"] != "invalid_grant" {
		t.Errorf("old refresh token: error = %v, want invalid_grant", e["error"])
	}

	// The new refresh token still carries the original scope (RFC 6749 section 6)...
	rt2 := tok2["refresh_token"].(string)
	tok3 := h.postForm(h.str("token_endpoint"), url.Values{
		"grant_type": {"refresh_token"}, "refresh_token": {rt2}, "client_id": {clientID}, "resource": {testResource},
	}, http.StatusOK)
	if c := h.verify(tok3["access_token"].(string), testResource); c["scope"] != "mcp:tools mcp:admin" {
		t.Errorf("second refresh scope = %v, want the original scope", c["scope"])
	}
	// ...but cannot be widened, nor moved to another resource.
	rt3 := tok3["refresh_token"].(string)
	e = h.postForm(h.str("token_endpoint"), url.Values{
		"grant_type": {"refresh_token"}, "refresh_token": {rt3}, "client_id": {clientID}, "scope": {"mcp:tools other"},
	}, http.StatusBadRequest)
	if e["error"] != "invalid_scope" {
		t.Errorf("widened refresh: error = %v, want invalid_scope", e["error"])
	}
	e = h.postForm(h.str("token_endpoint"), url.Values{
		"grant_type": {"refresh_token"}, "refresh_token": {rt3}, "client_id": {clientID}, "resource": {"https://other.example/mcp"},
	}, http.StatusBadRequest)
	if e["error"] != "invalid_target" {
		t.Errorf("refresh to another resource: error = %v, want invalid_target", e["error"])
	}
	if n := h.srv.TokensIssued(); n != 3 {
		t.Errorf("TokensIssued = %d, want 3", n)
	}

	// zitadel's userinfo endpoint accepts the at+jwt access tokens.
	req, _ := http.NewRequest(http.MethodGet, h.str("userinfo_endpoint"), nil)
	req.Header.Set("Authorization", "Bearer "+tok3["access_token"].(string))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if ui := decodeJSON(t, resp, http.StatusOK); ui["sub"] != "demo-user" {
		t.Errorf("userinfo = %v", ui)
	}

	// Revocation (RFC 7009) of the current refresh token.
	resp, err = http.PostForm(h.str("revocation_endpoint"), url.Values{"token": {rt3}, "client_id": {clientID}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("revoke: status %d", resp.StatusCode)
	}
	e = h.postForm(h.str("token_endpoint"), url.Values{
		"grant_type": {"refresh_token"}, "refresh_token": {rt3}, "client_id": {clientID},
	}, http.StatusBadRequest)
	if e["error"] != "invalid_grant" {
		t.Errorf("revoked refresh token: error = %v, want invalid_grant", e["error"])
	}
}

func TestPKCERequired(t *testing.T) {
	h := newHarness(t, quietOptions())
	clientID := h.register(testRedirect)
	p := newPKCE()

	missing := authParams(clientID, p, "mcp:tools", testResource)
	missing.Del("code_challenge")
	missing.Del("code_challenge_method")
	plain := authParams(clientID, p, "mcp:tools", testResource)
	plain.Set("code_challenge", p.verifier)
	plain.Set("code_challenge_method", "plain")
	noMethod := authParams(clientID, p, "mcp:tools", testResource)
	noMethod.Del("code_challenge_method")
	for name, params := range map[string]url.Values{"missing": missing, "plain": plain, "no method": noMethod} {
		q := h.authorize(params)
		if q.Get("error") != "invalid_request" || q.Get("code") != "" || q.Get("state") != "st-123" {
			t.Errorf("%s: redirect query = %v, want error=invalid_request with state", name, q)
		}
	}

	// Wrong and missing code_verifier at the token endpoint.
	code := h.code(authParams(clientID, p, "mcp:tools", testResource))
	e := h.exchange(clientID, code, pkce{verifier: strings.Repeat("x", 50)}, "", http.StatusBadRequest)
	if e["error"] != "invalid_grant" {
		t.Errorf("wrong verifier: error = %v, want invalid_grant", e["error"])
	}
	code = h.code(authParams(clientID, p, "mcp:tools", testResource))
	e = h.exchange(clientID, code, pkce{}, "", http.StatusBadRequest)
	if e["error"] != "invalid_request" {
		t.Errorf("no verifier: error = %v, want invalid_request", e["error"])
	}
	if n := h.srv.TokensIssued(); n != 0 {
		t.Errorf("TokensIssued = %d, want 0", n)
	}
}

func TestScopesAndResource(t *testing.T) {
	h := newHarness(t, quietOptions())
	clientID := h.register(testRedirect)
	p := newPKCE()

	q := h.authorize(authParams(clientID, p, "mcp:tools mcp:root", testResource))
	if q.Get("error") != "invalid_scope" {
		t.Errorf("unknown scope: %v, want error=invalid_scope", q)
	}

	// No scope: Options.DefaultScopes.
	tok := h.exchange(clientID, h.code(authParams(clientID, p, "", testResource)), p, "", http.StatusOK)
	if c := h.verify(tok["access_token"].(string), testResource); c["scope"] != "mcp:tools" {
		t.Errorf("default scope = %v, want mcp:tools", c["scope"])
	}

	// No resource: Options.DefaultResource.
	tok = h.exchange(clientID, h.code(authParams(clientID, p, "mcp:tools", "")), p, "", http.StatusOK)
	h.verify(tok["access_token"].(string), devas.DefaultResource)

	// A token request for a resource the grant was not made for.
	e := h.exchange(clientID, h.code(authParams(clientID, p, "mcp:tools", testResource)), p, "https://evil.example/mcp", http.StatusBadRequest)
	if e["error"] != "invalid_target" {
		t.Errorf("resource mismatch: error = %v, want invalid_target", e["error"])
	}

	// openid adds an ID token whose aud is the client.
	tok = h.exchange(clientID, h.code(authParams(clientID, p, "openid mcp:tools", testResource)), p, testResource, http.StatusOK)
	idt, _ := tok["id_token"].(string)
	if idt == "" {
		t.Fatal("no id_token for scope openid")
	}
	if _, err := jwt.Parse([]byte(idt), jwt.WithKeySet(h.keySet()), jwt.WithValidate(true), jwt.WithAudience(clientID)); err != nil {
		t.Errorf("id_token: %v", err)
	}
}

func TestStepUpKnobs(t *testing.T) {
	h := newHarness(t, quietOptions())
	clientID := h.register(testRedirect)
	p := newPKCE()
	old := time.Now().Add(-2 * time.Hour).Truncate(time.Second)
	h.srv.SetLoginTime(old)

	claimsFor := func(extra url.Values) map[string]any {
		t.Helper()
		params := authParams(clientID, p, "mcp:tools", testResource)
		for k, v := range extra {
			params[k] = v
		}
		tok := h.exchange(clientID, h.code(params), p, testResource, http.StatusOK)
		return h.verify(tok["access_token"].(string), testResource)
	}

	c := claimsFor(nil)
	if c["acr"] != "urn:demo:pwd" || num(t, c, "auth_time") != old.Unix() {
		t.Errorf("plain request: acr=%v auth_time=%v, want urn:demo:pwd %d", c["acr"], c["auth_time"], old.Unix())
	}
	c = claimsFor(url.Values{"acr_values": {"urn:demo:mfa"}})
	if c["acr"] != "urn:demo:mfa" {
		t.Errorf("acr_values=urn:demo:mfa: acr = %v", c["acr"])
	}
	c = claimsFor(url.Values{"acr_values": {"urn:unknown urn:demo:mfa"}})
	if c["acr"] != "urn:demo:mfa" {
		t.Errorf("acr_values with an unknown first value: acr = %v", c["acr"])
	}
	c = claimsFor(url.Values{"acr_values": {"urn:unknown"}})
	if c["acr"] != "urn:demo:pwd" {
		t.Errorf("unsatisfiable acr_values: acr = %v, want the default", c["acr"])
	}
	for name, extra := range map[string]url.Values{
		"max_age":      {"max_age": {"60"}},
		"prompt=login": {"prompt": {"login"}},
	} {
		before := time.Now().Unix()
		c = claimsFor(extra)
		if at := num(t, c, "auth_time"); at < before-1 || at > time.Now().Unix() {
			t.Errorf("%s: auth_time = %d, want now (%d)", name, at, before)
		}
	}
}

func TestRegistration(t *testing.T) {
	h := newHarness(t, quietOptions())
	post := func(body string) *http.Response {
		t.Helper()
		resp, err := http.Post(h.issuer+"/register", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	for body, wantErr := range map[string]string{
		`{"redirect_uris":["https://app.example.com/cb"]}`: "invalid_redirect_uri",
		`{"redirect_uris":["myapp://cb"]}`:                 "invalid_redirect_uri",
		`{}`:                                               "invalid_redirect_uri",
		`{"redirect_uris":["http://localhost:1/cb"],"grant_types":["client_credentials"]}`: "invalid_client_metadata",
		`{"redirect_uris":["http://localhost:1/cb"],"scope":"mcp:root"}`:                   "invalid_client_metadata",
		`not json`: "invalid_client_metadata",
	} {
		e := decodeJSON(t, post(body), http.StatusBadRequest)
		if e["error"] != wantErr {
			t.Errorf("%s: error = %v, want %s", body, e["error"], wantErr)
		}
	}
	// localhost and [::1] redirect URIs are fine; confidential auth methods are
	// replaced with "none".
	reg := decodeJSON(t, post(`{"redirect_uris":["http://localhost:3142","http://[::1]:8/cb"],"token_endpoint_auth_method":"client_secret_basic"}`), http.StatusCreated)
	if reg["token_endpoint_auth_method"] != "none" || reg["client_secret"] != nil {
		t.Errorf("registration response = %v", reg)
	}
	if h.srv.ClientsRegistered() != 1 {
		t.Errorf("ClientsRegistered = %d", h.srv.ClientsRegistered())
	}

	// Loopback redirect URIs match on any port (RFC 8252 section 7.3).
	clientID := reg["client_id"].(string)
	p := newPKCE()
	params := authParams(clientID, p, "mcp:tools", testResource)
	params.Set("redirect_uri", "http://localhost:50123")
	if q := h.authorize(params); q.Get("code") == "" {
		t.Errorf("loopback redirect on another port: %v", q)
	}

	// Unknown client and unregistered redirect: an error page, no redirect.
	for name, params := range map[string]url.Values{
		"unknown client": authParams("nobody", p, "mcp:tools", testResource),
		"foreign redirect": func() url.Values {
			v := authParams(clientID, p, "mcp:tools", "")
			v.Set("redirect_uri", "https://evil.example/cb")
			return v
		}(),
	} {
		resp, err := noRedirect.Get(h.issuer + "/authorize?" + params.Encode())
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("%s: status %d, want 400", name, resp.StatusCode)
		}
	}
}

func TestStartLoopbackOnly(t *testing.T) {
	srv, err := devas.New(quietOptions())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := srv.Start("0.0.0.0:0"); err == nil {
		t.Fatal("Start on 0.0.0.0 succeeded")
	}
	issuer, err := srv.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	if !strings.HasPrefix(issuer, "http://127.0.0.1:") || srv.Issuer() != issuer {
		t.Fatalf("issuer = %q (Issuer() = %q)", issuer, srv.Issuer())
	}
	// The issuer is fixed once started, whatever Host the client used.
	req, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, issuer+"/.well-known/oauth-authorization-server", nil)
	req.Host = "localhost"
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	m := decodeJSON(t, resp, http.StatusOK)
	if m["issuer"] != issuer || !slices.Contains(toStrings(m["scopes_supported"]), "mcp:admin") {
		t.Errorf("metadata = %v", m)
	}
	if _, err := srv.Start("127.0.0.1:0"); err == nil {
		t.Error("second Start succeeded")
	}
}

func toStrings(v any) []string {
	var out []string
	l, _ := v.([]any)
	for _, x := range l {
		s, _ := x.(string)
		out = append(out, s)
	}
	return out
}
