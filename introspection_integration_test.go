package mcpauth

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/caddytest"

	"github.com/mcpauth/caddy-mcp-auth/internal/testissuer"
)

// introspectionEndpoint is a small RFC 7662 endpoint: it authenticates the
// gateway with client_secret_basic and answers from a token table.
type introspectionEndpoint struct {
	srv    *httptest.Server
	mu     sync.Mutex
	tokens map[string]map[string]any
	down   atomic.Bool
	calls  atomic.Int64
}

func newIntrospectionEndpoint(t *testing.T) *introspectionEndpoint {
	ep := &introspectionEndpoint{tokens: map[string]map[string]any{}}
	ep.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ep.calls.Add(1)
		if ep.down.Load() {
			http.Error(w, "down", http.StatusBadGateway)
			return
		}
		if id, secret, ok := r.BasicAuth(); !ok || id != "gateway" || secret != "s3cret" {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprint(w, `{"error":"invalid_client"}`)
			return
		}
		if err := r.ParseForm(); err != nil || r.PostForm.Get("token_type_hint") != "access_token" {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		ep.mu.Lock()
		answer, ok := ep.tokens[r.PostForm.Get("token")]
		ep.mu.Unlock()
		if !ok {
			answer = map[string]any{"active": false}
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(answer)
	}))
	t.Cleanup(ep.srv.Close)
	return ep
}

func (ep *introspectionEndpoint) set(tok string, answer map[string]any) {
	ep.mu.Lock()
	defer ep.mu.Unlock()
	if answer == nil {
		delete(ep.tokens, tok)
		return
	}
	ep.tokens[tok] = answer
}

func TestIntrospectionThroughCaddy(t *testing.T) {
	t.Setenv("MCP_AUTH_TEST_INTROSPECTION_SECRET", "s3cret")
	ep := newIntrospectionEndpoint(t)
	key := testissuer.NewRSA("k1")
	iss := testissuer.New(key)
	defer iss.Close()
	backend := newRecorder(t)
	tester := caddytest.NewTester(t)
	tester.InitServer(globalOptions+fmt.Sprintf(`
:9080 {
	mcp_auth {
		resource http://localhost:9080/mcp
		issuer %s {
			introspection_endpoint %s
			client_id gateway
			client_secret {env.MCP_AUTH_TEST_INTROSPECTION_SECRET}
			introspection_cache 1s
		}
		require_scope mcp:read
		tool delete_* mcp:admin
	}
	reverse_proxy %s {
		header_up X-User {http.auth.user.id}
		header_up X-Username {http.auth.user.username}
	}
}
`, iss.URL, ep.srv.URL, backend.srv.URL), "caddyfile")
	e := &env{t: t, tester: tester, iss: iss, key: key, backend: backend}
	exp := time.Now().Add(time.Hour).Unix()
	answer := func(aud string, scope string) map[string]any {
		return map[string]any{"active": true, "iss": iss.URL, "aud": aud, "sub": "opaque-user", "scope": scope, "exp": exp, "client_id": "c", "username": "olivia", "token_type": "Bearer"}
	}
	ep.set("opaque-good", answer(resource, "mcp:read"))
	ep.set("opaque-other-aud", answer("https://other.example.com/mcp", "mcp:read"))
	ep.set("opaque-no-aud", func() map[string]any { a := answer(resource, "mcp:read"); delete(a, "aud"); return a }())

	resp, _ := e.do("POST", "/mcp", bearer("opaque-good"), call(1, "search"))
	if resp.StatusCode != 200 {
		t.Fatalf("opaque token: %d %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
	if req, _ := backend.lastRequest(); req.Header.Get("X-User") != "opaque-user" || req.Header.Get("X-Username") != "olivia" || req.Header.Get("Authorization") != "" {
		t.Fatalf("backend headers: %v", req.Header)
	}
	for tok, want := range map[string]string{
		"opaque-other-aud": "The access token was not issued for this resource",
		"opaque-no-aud":    "The access token has no audience",
		"opaque-unknown":   "The access token is not active",
	} {
		resp, _ := e.do("POST", "/mcp", bearer(tok), call(1, "search"))
		if resp.StatusCode != 401 || resp.Header.Get("WWW-Authenticate") != `Bearer error="invalid_token", error_description="`+want+`", resource_metadata="`+prmURL+`"` {
			t.Fatalf("%s: %d %q", tok, resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
		}
	}
	// Policy applies to introspected tokens like to JWTs.
	if resp, _ := e.do("POST", "/mcp", bearer("opaque-good"), call(2, "delete_all")); resp.StatusCode != 403 {
		t.Fatalf("tool rule with an opaque token: %d", resp.StatusCode)
	}
	// JWTs are still validated locally: no introspection call.
	before := ep.calls.Load()
	if resp, _ := e.do("POST", "/mcp", bearer(e.token(func(c map[string]any) { c["scope"] = "mcp:read" })), call(3, "search")); resp.StatusCode != 200 {
		t.Fatalf("JWT beside introspection: %d", resp.StatusCode)
	}
	if ep.calls.Load() != before {
		t.Fatal("a JWT was introspected under introspect opaque")
	}
	// Revocation is visible once the cache bound (1s) has passed.
	ep.set("opaque-good", nil)
	time.Sleep(1100 * time.Millisecond)
	if resp, _ := e.do("POST", "/mcp", bearer("opaque-good"), call(4, "search")); resp.StatusCode != 401 {
		t.Fatalf("revoked token after the cache bound: %d", resp.StatusCode)
	}
	// Endpoint trouble is 503, never 401 (which would send clients into
	// re-authorization loops).
	ep.set("opaque-fresh", answer(resource, "mcp:read"))
	ep.down.Store(true)
	resp, _ = e.do("POST", "/mcp", bearer("opaque-fresh"), call(5, "search"))
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("endpoint down: %d", resp.StatusCode)
	}
	ep.down.Store(false)
	if resp, _ := e.do("POST", "/mcp", bearer("opaque-fresh"), call(6, "search")); resp.StatusCode != 200 {
		t.Fatalf("endpoint back: %d", resp.StatusCode)
	}
}

func TestIntrospectAlways(t *testing.T) {
	t.Setenv("MCP_AUTH_TEST_INTROSPECTION_SECRET", "s3cret")
	ep := newIntrospectionEndpoint(t)
	e := newEnv(t, `
:9080 {
	mcp_auth {
		resource http://localhost:9080/mcp
		issuer %s {
			introspection_endpoint `+ep.srv.URL+`
			client_id gateway
			client_secret {env.MCP_AUTH_TEST_INTROSPECTION_SECRET}
			client_auth basic
			introspect always
		}
	}
	reverse_proxy %s
}
`)
	tok := e.token(nil)
	// A perfectly signed JWT the endpoint says was revoked is refused.
	if resp, _ := e.do("POST", "/mcp", bearer(tok), rpc); resp.StatusCode != 401 {
		t.Fatalf("revoked JWT under introspect always: %d", resp.StatusCode)
	}
	ep.set(tok, map[string]any{"active": true, "iss": e.iss.URL, "aud": resource, "sub": "s", "exp": time.Now().Add(time.Hour).Unix()})
	time.Sleep(5100 * time.Millisecond) // the refusal is cached for 5s
	if resp, _ := e.do("POST", "/mcp", bearer(tok), rpc); resp.StatusCode != 200 {
		t.Fatalf("active JWT under introspect always: %d", resp.StatusCode)
	}
}

func TestIntrospectionConfigErrors(t *testing.T) {
	const base = "resource https://mcp.example.com/mcp\n"
	for _, tc := range []struct{ cfg, want string }{
		{"issuer http://127.0.0.1:9 {\nclient_id gw\n}\n", "client_secret"},
		{"issuer http://127.0.0.1:9 {\nintrospection_endpoint http://127.0.0.1:9/i\n}\n", "client_id"},
		{"issuer http://127.0.0.1:9 {\nclient_secret x\n}\n", "need client_id"},
		{"issuer http://127.0.0.1:9 {\nclient_id gw\nclient_secret x\nclient_auth jwt\n}\n", "client_auth"},
		{"issuer http://127.0.0.1:9 {\nclient_id gw\nclient_secret x\nintrospect sometimes\n}\n", "introspect"},
		{"issuer http://127.0.0.1:9 {\nclient_id gw\nclient_secret x\nintrospection_endpoint http://idp.example.com/i\n}\n", "loopback"},
	} {
		assertLoadError(t, globalOptions+":9080 {\nmcp_auth {\n"+base+tc.cfg+"}\n}\n", tc.want)
	}
}
