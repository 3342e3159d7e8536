package introspect

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/mcpauth/caddy-mcp-auth/internal/testissuer"
	"github.com/mcpauth/caddy-mcp-auth/validator"
)

const (
	issuer   = "https://idp.example.com"
	resource = "https://mcp.example.com/mcp"
	// Credentials with characters that form-urlencoding changes, so that
	// RFC 6749 §2.3.1 encoding is exercised.
	clientID     = "gateway client"
	clientSecret = "s3:cr/et+&%ü"
)

// clock is an injectable time source.
type clock struct{ ns atomic.Int64 }

func newClock() *clock {
	c := &clock{}
	c.ns.Store(time.Unix(1_800_000_000, 0).UnixNano())
	return c
}

func (c *clock) Now() time.Time             { return time.Unix(0, c.ns.Load()) }
func (c *clock) Add(d time.Duration)        { c.ns.Add(int64(d)) }
func (c *clock) Unix(d time.Duration) int64 { return c.Now().Add(d).Unix() }

// answerFunc writes the endpoint's answer about one token.
type answerFunc func(w http.ResponseWriter, r *http.Request)

// endpoint is an in-process introspection endpoint. It checks the request
// shape and the client authentication, counts calls, and answers per token.
type endpoint struct {
	t     testing.TB
	srv   *httptest.Server
	calls atomic.Int64

	mu         sync.Mutex
	auth       string // "basic" or "post": what the endpoint expects
	id, secret string
	answers    map[string]answerFunc
	def        answerFunc
	gate       chan struct{} // when set, answers wait for it to close
	accept     string        // Accept of the last request
	badReq     string        // first malformed request seen
}

func newEndpoint(t testing.TB) *endpoint {
	e := &endpoint{t: t, auth: "basic", id: clientID, secret: clientSecret, answers: map[string]answerFunc{}}
	e.srv = httptest.NewServer(http.HandlerFunc(e.serve))
	t.Cleanup(e.srv.Close)
	return e
}

func (e *endpoint) URL() string { return e.srv.URL + "/introspect" }

func (e *endpoint) set(tok string, a answerFunc) {
	e.mu.Lock()
	e.answers[tok] = a
	e.mu.Unlock()
}

func (e *endpoint) setDefault(a answerFunc) {
	e.mu.Lock()
	e.def = a
	e.mu.Unlock()
}

func (e *endpoint) setAuth(mode string) {
	e.mu.Lock()
	e.auth = mode
	e.mu.Unlock()
}

func (e *endpoint) setGate(ch chan struct{}) {
	e.mu.Lock()
	e.gate = ch
	e.mu.Unlock()
}

func (e *endpoint) setCredentials(id, secret string) {
	e.mu.Lock()
	e.id, e.secret = id, secret
	e.mu.Unlock()
}

func (e *endpoint) malformed() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.badReq
}

func (e *endpoint) lastAccept() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.accept
}

func (e *endpoint) bad(msg string, w http.ResponseWriter) {
	e.mu.Lock()
	if e.badReq == "" {
		e.badReq = msg
	}
	e.mu.Unlock()
	http.Error(w, msg, http.StatusBadRequest)
}

func (e *endpoint) serve(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/introspect" {
		http.NotFound(w, r)
		return
	}
	e.calls.Add(1)
	e.mu.Lock()
	auth, id, secret, gate := e.auth, e.id, e.secret, e.gate
	e.accept = r.Header.Get("Accept")
	e.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-r.Context().Done():
			return
		}
	}
	if r.Method != http.MethodPost {
		e.bad("method "+r.Method, w)
		return
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/x-www-form-urlencoded" {
		e.bad("content type "+ct, w)
		return
	}
	if err := r.ParseForm(); err != nil {
		e.bad("form: "+err.Error(), w)
		return
	}
	if r.PostForm.Get("token_type_hint") != "access_token" {
		e.bad("token_type_hint", w)
		return
	}
	if len(r.URL.Query()) != 0 {
		e.bad("query string", w)
		return
	}
	var gotID, gotSecret string
	ok := false
	switch auth {
	case "basic":
		if r.PostForm.Has("client_id") || r.PostForm.Has("client_secret") {
			e.bad("credentials in body with basic", w)
			return
		}
		u, p, has := r.BasicAuth()
		if has {
			// RFC 6749 §2.3.1: both parts are form-urlencoded.
			u1, err1 := url.QueryUnescape(u)
			p1, err2 := url.QueryUnescape(p)
			gotID, gotSecret, ok = u1, p1, err1 == nil && err2 == nil
		}
	case "post":
		if r.Header.Get("Authorization") != "" {
			e.bad("Authorization header with post", w)
			return
		}
		gotID, gotSecret, ok = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret"), true
	}
	if !ok || gotID != id || gotSecret != secret {
		w.Header().Set("WWW-Authenticate", `Basic realm="introspection"`)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write([]byte(`{"error":"invalid_client"}`))
		return
	}
	tok := r.PostForm.Get("token")
	e.mu.Lock()
	a := e.answers[tok]
	if a == nil {
		a = e.def
	}
	e.mu.Unlock()
	if a == nil {
		a = jsonAnswer(map[string]any{"active": false})
	}
	a(w, r)
}

func jsonAnswer(v any) answerFunc {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return rawAnswer(http.StatusOK, "application/json", string(b))
}

func rawAnswer(status int, ctype, body string) answerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if ctype != "" {
			w.Header().Set("Content-Type", ctype)
		}
		w.WriteHeader(status)
		_, _ = w.Write([]byte(body))
	}
}

// active returns a valid active answer for resource, expiring in an hour
// of clk, modified by mod.
func active(clk *clock, mod func(map[string]any)) map[string]any {
	m := map[string]any{
		"active":     true,
		"iss":        issuer,
		"aud":        resource,
		"sub":        "user-1",
		"client_id":  "mcp-client",
		"username":   "alice",
		"scope":      "mcp:read mcp:write",
		"token_type": "Bearer",
		"exp":        clk.Unix(time.Hour),
		"iat":        clk.Unix(-time.Minute),
		"nbf":        clk.Unix(-time.Minute),
		"jti":        "jti-1",
		"acr":        "urn:example:mfa",
		"auth_time":  clk.Unix(-2 * time.Minute),
	}
	if mod != nil {
		mod(m)
	}
	return m
}

type logs struct {
	*observer.ObservedLogs
}

func newIntrospector(t testing.TB, ep *endpoint, clk *clock, mod func(*Config)) (*Introspector, logs) {
	t.Helper()
	core, obs := observer.New(zap.DebugLevel)
	cfg := Config{
		Issuer:       issuer,
		Endpoint:     ep.URL(),
		ClientID:     clientID,
		ClientSecret: clientSecret,
		Audiences:    []string{resource},
		Logger:       zap.New(core),
		Now:          clk.Now,
		Timeout:      5 * time.Second,
	}
	if mod != nil {
		mod(&cfg)
	}
	i, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return i, logs{obs}
}

// wantErr checks err against an expectation: nil, a refusal with reason r,
// or (temporary) a Temporary error.
func wantErr(t *testing.T, err error, temporary bool, r validator.Reason) {
	t.Helper()
	if !temporary && r == validator.ReasonNone {
		if err != nil {
			t.Fatalf("unexpected error: %v", err)
		}
		return
	}
	var ve *validator.Error
	if !errors.As(err, &ve) {
		t.Fatalf("error %v (%T), want *validator.Error", err, err)
	}
	if ve.Temporary != temporary {
		t.Fatalf("error %v: Temporary = %v, want %v", err, ve.Temporary, temporary)
	}
	if temporary {
		if ve.Reason != validator.ReasonIntrospectionUnavailable && ve.Reason != validator.ReasonKeysUnavailable {
			t.Fatalf("error %v: reason %v, want introspection_unavailable or keys_unavailable", err, ve.Reason)
		}
		return
	}
	if ve.Reason != r {
		t.Fatalf("error %v: reason %v, want %v", err, ve.Reason, r)
	}
}

// staticKeys is a KeyProvider over a fixed set, counting refetches.
type staticKeys struct {
	set      *validator.KeySet
	refetchs atomic.Int64
}

func (s *staticKeys) Keys() *validator.KeySet { return s.set }
func (s *staticKeys) Refetch(ctx context.Context) *validator.KeySet {
	s.refetchs.Add(1)
	return s.set
}

func newKeys(t testing.TB, keys ...*testissuer.Key) *staticKeys {
	t.Helper()
	jwks := make([]map[string]any, 0, len(keys))
	for _, k := range keys {
		jwks = append(jwks, k.JWK())
	}
	doc, _ := json.Marshal(map[string]any{"keys": jwks})
	set, skipped, err := validator.ParseKeySet(doc)
	if err != nil || set.Len() != len(keys) {
		t.Fatalf("ParseKeySet: %v %v", err, skipped)
	}
	return &staticKeys{set: set}
}

// noSecrets fails if any log entry or error mentions a secret string.
func noSecrets(t *testing.T, l logs, errs []error, secrets ...string) {
	t.Helper()
	for _, e := range l.All() {
		text := e.Message
		for k, v := range e.ContextMap() {
			b, _ := json.Marshal(v)
			text += " " + k + "=" + string(b)
		}
		for _, s := range secrets {
			if strings.Contains(text, s) {
				t.Errorf("log entry %q contains a secret", text)
			}
		}
	}
	for _, err := range errs {
		if err == nil {
			continue
		}
		for _, s := range secrets {
			if strings.Contains(err.Error(), s) {
				t.Errorf("error %q contains a secret", err.Error())
			}
		}
	}
}
