package mcpauth

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/caddytest"
	_ "github.com/caddyserver/caddy/v2/modules/standard"

	"github.com/mcpauth/caddy-mcp-auth/internal/testissuer"
)

// recorder is an MCP backend stand-in that remembers what reached it.
type recorder struct {
	srv   *httptest.Server
	mu    sync.Mutex
	last  *http.Request
	body  []byte
	count atomic.Int64
	// sse: the stream waits for a signal before sending its second event,
	// which proves the first one was not held back by the proxy.
	next chan struct{}
}

func newRecorder(t *testing.T) *recorder {
	rec := &recorder{next: make(chan struct{}, 1)}
	rec.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		rec.mu.Lock()
		rec.last, rec.body = r.Clone(r.Context()), b
		rec.mu.Unlock()
		rec.count.Add(1)
		if r.Header.Get("Accept") == "text/event-stream" {
			w.Header().Set("Content-Type", "text/event-stream")
			w.Header().Set("Mcp-Session-Id", "sess-1")
			fmt.Fprint(w, "id: 1\ndata: {\"n\":1}\n\n")
			w.(http.Flusher).Flush()
			select {
			case <-rec.next:
			case <-time.After(5 * time.Second):
				fmt.Fprint(w, "data: timeout\n\n")
				return
			}
			fmt.Fprint(w, "id: 2\ndata: {\"n\":2}\n\n")
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Mcp-Session-Id", "sess-1")
		fmt.Fprintf(w, `{"jsonrpc":"2.0","id":1,"result":{"user":%q}}`, r.Header.Get("X-User"))
	}))
	t.Cleanup(rec.srv.Close)
	return rec
}

func (rec *recorder) lastRequest() (*http.Request, []byte) {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return rec.last, rec.body
}

const (
	base     = "http://localhost:9080"
	resource = base + "/mcp"
	prmURL   = base + "/.well-known/oauth-protected-resource/mcp"
)

const globalOptions = `{
	skip_install_trust
	admin localhost:2999
	http_port 9080
	https_port 9443
	grace_period 1ns
	auto_https off
}
`

type env struct {
	t       *testing.T
	tester  *caddytest.Tester
	iss     *testissuer.Issuer
	key     *testissuer.Key
	backend *recorder
}

func newEnv(t *testing.T, block string) *env {
	t.Helper()
	e := &env{t: t, key: testissuer.NewRSA("k1"), backend: newRecorder(t)}
	e.iss = testissuer.New(e.key)
	t.Cleanup(e.iss.Close)
	e.tester = caddytest.NewTester(t)
	cfg := globalOptions + fmt.Sprintf(block, e.iss.URL, e.backend.srv.URL)
	e.tester.InitServer(cfg, "caddyfile")
	return e
}

const defaultSite = `
:9080 {
	mcp_auth /mcp* {
		resource http://localhost:9080/mcp
		resource_name "Test MCP"
		issuer %s
		require_scope mcp:read
		allow_origins http://localhost:6274
	}
	reverse_proxy %s {
		header_up X-User {http.auth.user.id}
		header_up X-Client {http.auth.user.client_id}
		header_up X-Email {http.auth.user.email}
		flush_interval -1
	}
}
`

func (e *env) token(mod func(map[string]any)) string {
	c := e.iss.Claims(resource, "mcp:read mcp:write")
	c["email"] = "u@example.com"
	if mod != nil {
		mod(c)
	}
	return testissuer.Mint(testissuer.Token{Key: e.key, Claims: c})
}

func (e *env) do(method, path string, hdr map[string][]string, body string) (*http.Response, string) {
	e.t.Helper()
	req, err := http.NewRequest(method, base+path, strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	for k, vs := range hdr {
		for _, v := range vs {
			if strings.EqualFold(k, "Host") {
				req.Host = v
				continue
			}
			req.Header.Add(k, v)
		}
	}
	resp, err := e.tester.Client.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func bearer(tok string) map[string][]string {
	return map[string][]string{"Authorization": {"Bearer " + tok}, "Content-Type": {"application/json"}}
}

const rpc = `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`

func TestMetadataEndpoints(t *testing.T) {
	e := newEnv(t, defaultSite)
	for _, path := range []string{"/.well-known/oauth-protected-resource/mcp", "/.well-known/oauth-protected-resource"} {
		resp, body := e.do("GET", path, map[string][]string{"MCP-Protocol-Version": {"2025-03-26"}, "Host": {"evil.example.com"}}, "")
		if resp.StatusCode != 200 {
			t.Fatalf("%s: %d %s", path, resp.StatusCode, body)
		}
		var doc map[string]any
		if err := json.Unmarshal([]byte(body), &doc); err != nil {
			t.Fatal(err)
		}
		want := fmt.Sprintf(`{"resource":"http://localhost:9080/mcp","authorization_servers":[%q],"scopes_supported":["mcp:read"],"bearer_methods_supported":["header"],"resource_name":"Test MCP"}`, e.iss.URL)
		if body != want {
			t.Fatalf("%s:\n got %s\nwant %s", path, body, want)
		}
		if resp.Header.Get("Content-Type") != "application/json" || resp.Header.Get("Access-Control-Allow-Origin") != "*" || !strings.Contains(resp.Header.Get("Cache-Control"), "max-age=") {
			t.Fatalf("%s headers: %v", path, resp.Header)
		}
	}
	if resp, _ := e.do("POST", "/.well-known/oauth-protected-resource/mcp", nil, "{}"); resp.StatusCode != 405 || resp.Header.Get("Allow") == "" {
		t.Fatalf("POST metadata: %d", resp.StatusCode)
	}
	if resp, _ := e.do("OPTIONS", "/.well-known/oauth-protected-resource/mcp", map[string][]string{"Origin": {"https://anything.example"}, "Access-Control-Request-Method": {"GET"}}, ""); resp.StatusCode != 204 || resp.Header.Get("Access-Control-Allow-Origin") != "*" {
		t.Fatalf("OPTIONS metadata: %d %v", resp.StatusCode, resp.Header)
	}
	if resp, _ := e.do("GET", "/.well-known/oauth-protected-resource/other", nil, ""); resp.StatusCode != 404 {
		t.Fatalf("unknown metadata path: %d", resp.StatusCode)
	}
	if e.backend.count.Load() != 0 {
		t.Fatal("metadata requests reached the backend")
	}
}

func TestChallenges(t *testing.T) {
	e := newEnv(t, defaultSite)
	noToken := `Bearer scope="mcp:read", resource_metadata="` + prmURL + `"`
	invalid := func(desc string) string {
		return `Bearer error="invalid_token", error_description="` + desc + `", resource_metadata="` + prmURL + `"`
	}
	other := func(c map[string]any) { c["aud"] = "https://other.example.com/mcp" }
	tests := []struct {
		name   string
		hdr    map[string][]string
		path   string
		status int
		www    string
	}{
		{"no token", nil, "/mcp", 401, noToken},
		{"spoofed Host does not change the challenge", map[string][]string{"Host": {"evil.example.com"}}, "/mcp", 401, noToken},
		{"basic credentials", map[string][]string{"Authorization": {"Basic dTpw"}}, "/mcp", 401, noToken},
		{"lower-case scheme accepted", map[string][]string{"Authorization": {"bearer " + e.token(nil)}}, "/mcp", 200, ""},
		{"empty bearer", map[string][]string{"Authorization": {"Bearer "}}, "/mcp", 401, invalid("The access token is malformed")},
		{"garbage bearer", map[string][]string{"Authorization": {"Bearer a b"}}, "/mcp", 401, invalid("The access token is malformed")},
		{"not a JWT", bearer("opaque-token-123"), "/mcp", 401, invalid("The access token is malformed")},
		{"token for another resource", bearer(e.token(other)), "/mcp", 401, invalid("The access token was not issued for this resource")},
		{"expired", bearer(e.token(func(c map[string]any) { c["exp"] = time.Now().Unix() - 3600 })), "/mcp", 401, invalid("The access token expired")},
		{"two Authorization headers", map[string][]string{"Authorization": {"Bearer " + e.token(nil), "Bearer " + e.token(nil)}}, "/mcp", 400,
			`Bearer error="invalid_request", error_description="The request carries more than one access token", resource_metadata="` + prmURL + `"`},
		{"query token ignored", nil, "/mcp?access_token=" + e.token(nil), 401, noToken},
		{"missing required scope", bearer(e.token(func(c map[string]any) { c["scope"] = "mcp:write offline_access" })), "/mcp", 403,
			`Bearer error="insufficient_scope", error_description="Missing required scope: mcp:read", scope="mcp:read", resource_metadata="` + prmURL + `"`},
		{"form body token with header", map[string][]string{"Authorization": {"Bearer " + e.token(nil)}, "Content-Type": {"application/x-www-form-urlencoded"}}, "/mcp", 400, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := e.backend.count.Load()
			body := rpc
			if strings.Contains(tt.name, "form body") {
				body = "access_token=" + e.token(nil)
			}
			resp, _ := e.do("POST", tt.path, tt.hdr, body)
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d (WWW-Authenticate %q)", resp.StatusCode, tt.status, resp.Header.Get("WWW-Authenticate"))
			}
			if tt.www != "" {
				if got := resp.Header.Values("WWW-Authenticate"); len(got) != 1 || got[0] != tt.www {
					t.Fatalf("WWW-Authenticate\n got %q\nwant %q", got, tt.www)
				}
			}
			reached := e.backend.count.Load() > before
			if reached != (tt.status == 200) {
				t.Fatalf("backend reached: %v", reached)
			}
		})
	}
}

func TestForwarding(t *testing.T) {
	e := newEnv(t, defaultSite)
	tok := e.token(nil)
	body := `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"x","arguments":{"a":"é"}}}`
	hdr := bearer(tok)
	hdr["Mcp-Session-Id"] = []string{"sess-1"}
	hdr["MCP-Protocol-Version"] = []string{"2025-06-18"}
	hdr["X-User"] = []string{"spoofed"}
	resp, got := e.do("POST", "/mcp?x=1&access_token=abc", hdr, body)
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if !strings.Contains(got, `"user":"user-1"`) {
		t.Fatalf("backend answer %s", got)
	}
	req, rb := e.backend.lastRequest()
	if string(rb) != body {
		t.Fatalf("body changed: %s", rb)
	}
	if req.Header.Get("Authorization") != "" {
		t.Fatal("Authorization forwarded without forward_token")
	}
	if req.Header.Get("X-User") != "user-1" || req.Header.Get("X-Client") != "client-1" || req.Header.Get("X-Email") != "u@example.com" {
		t.Fatalf("identity headers: %v", req.Header)
	}
	if req.Header.Get("Mcp-Session-Id") != "sess-1" || req.Header.Get("MCP-Protocol-Version") != "2025-06-18" {
		t.Fatalf("MCP headers: %v", req.Header)
	}
	if req.URL.RawQuery != "x=1" {
		t.Fatalf("query token forwarded: %q", req.URL.RawQuery)
	}
	if resp.Header.Get("Mcp-Session-Id") != "sess-1" {
		t.Fatal("session header not returned")
	}
	// Paths outside the matcher are not protected (the user's choice).
	if resp, _ := e.do("GET", "/health", nil, ""); resp.StatusCode != 200 {
		t.Fatalf("unprotected path: %d", resp.StatusCode)
	}
}

func TestForwardToken(t *testing.T) {
	e := newEnv(t, `
:9080 {
	mcp_auth {
		resource http://localhost:9080/mcp
		issuer %s
		forward_token
	}
	reverse_proxy %s
}
`)
	tok := e.token(nil)
	if resp, _ := e.do("POST", "/mcp", bearer(tok), rpc); resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if req, _ := e.backend.lastRequest(); req.Header.Get("Authorization") != "Bearer "+tok {
		t.Fatal("forward_token did not keep Authorization")
	}
}

func TestCORSAndOrigin(t *testing.T) {
	e := newEnv(t, defaultSite)
	allowed := "http://localhost:6274"
	pre := map[string][]string{"Origin": {allowed}, "Access-Control-Request-Method": {"POST"}, "Access-Control-Request-Headers": {"authorization,content-type"}}
	resp, _ := e.do("OPTIONS", "/mcp", pre, "")
	if resp.StatusCode != 204 || resp.Header.Get("Access-Control-Allow-Origin") != allowed || !strings.Contains(resp.Header.Get("Access-Control-Allow-Headers"), "Authorization") {
		t.Fatalf("preflight: %d %v", resp.StatusCode, resp.Header)
	}
	resp, _ = e.do("POST", "/mcp", map[string][]string{"Origin": {allowed}}, rpc)
	if resp.StatusCode != 401 || resp.Header.Get("Access-Control-Allow-Origin") != allowed || !strings.Contains(resp.Header.Get("Access-Control-Expose-Headers"), "WWW-Authenticate") || resp.Header.Get("Vary") != "Origin" {
		t.Fatalf("401 with origin: %d %v", resp.StatusCode, resp.Header)
	}
	before := e.backend.count.Load()
	resp, _ = e.do("POST", "/mcp", map[string][]string{"Origin": {"http://evil.example"}, "Authorization": {"Bearer " + e.token(nil)}}, rpc)
	if resp.StatusCode != 403 || resp.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("disallowed origin: %d %v", resp.StatusCode, resp.Header)
	}
	resp, _ = e.do("OPTIONS", "/mcp", map[string][]string{"Origin": {"http://evil.example"}, "Access-Control-Request-Method": {"POST"}}, "")
	if resp.StatusCode != 403 {
		t.Fatalf("disallowed preflight: %d", resp.StatusCode)
	}
	if e.backend.count.Load() != before {
		t.Fatal("disallowed origin reached the backend")
	}
	resp, _ = e.do("POST", "/mcp", map[string][]string{"Origin": {allowed}, "Authorization": {"Bearer " + e.token(nil)}}, rpc)
	if resp.StatusCode != 200 || resp.Header.Get("Access-Control-Allow-Origin") != allowed {
		t.Fatalf("allowed origin: %d", resp.StatusCode)
	}
}

func TestSSEPassesThroughUnbuffered(t *testing.T) {
	checkSSEUnbuffered(t, newEnv(t, defaultSite))
}

func checkSSEUnbuffered(t *testing.T, e *env) {
	req, _ := http.NewRequest("GET", base+"/mcp", nil)
	req.Header.Set("Authorization", "Bearer "+e.token(func(c map[string]any) { c["scope"] = "mcp:read" }))
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Last-Event-ID", "0")
	resp, err := e.tester.Client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("status %d %v", resp.StatusCode, resp.Header)
	}
	r := bufio.NewReader(resp.Body)
	readEvent := func() string {
		var ev bytes.Buffer
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				t.Fatalf("reading stream: %v (so far %q)", err, ev.String())
			}
			if line == "\n" {
				return ev.String()
			}
			ev.WriteString(line)
		}
	}
	// The backend holds the second event until we have the first: if the
	// gateway buffered, this read would block until the backend's timeout.
	if ev := readEvent(); !strings.Contains(ev, `"n":1`) {
		t.Fatalf("first event %q", ev)
	}
	e.backend.next <- struct{}{}
	if ev := readEvent(); !strings.Contains(ev, `"n":2`) {
		t.Fatalf("second event %q", ev)
	}
	if got, _ := e.backend.lastRequest(); got.Header.Get("Last-Event-ID") != "0" {
		t.Fatal("Last-Event-ID not forwarded")
	}
}

func TestIdPDownAtStartThenRecovers(t *testing.T) {
	key := testissuer.NewRSA("k1")
	iss := testissuer.New(key)
	defer iss.Close()
	iss.SetDown(true)
	backend := newRecorder(t)
	tester := caddytest.NewTester(t)
	tester.InitServer(globalOptions+fmt.Sprintf(`
:9080 {
	mcp_auth {
		resource http://localhost:9080/mcp
		issuer %s
	}
	reverse_proxy %s
}
`, iss.URL, backend.srv.URL), "caddyfile")
	tok := testissuer.Mint(testissuer.Token{Key: key, Claims: iss.Claims(resource, "")})
	req, _ := http.NewRequest("POST", resource, strings.NewReader(rpc))
	req.Header.Set("Authorization", "Bearer "+tok)
	resp := tester.AssertResponseCode(req, 503)
	if resp.Header.Get("Retry-After") == "" {
		t.Fatal("503 without Retry-After")
	}
	iss.SetDown(false)
	// The key source retries in the background (1s, then backing off) and
	// requests may trigger a refetch every 10s; recovery needs no reload.
	deadline := time.Now().Add(8 * time.Second)
	for {
		req, _ := http.NewRequest("POST", resource, strings.NewReader(rpc))
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := tester.Client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode == 200 {
			break
		}
		if resp.StatusCode != 503 || time.Now().After(deadline) {
			t.Fatalf("after the IdP came back: %d", resp.StatusCode)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func TestUnknownKidFloodThroughCaddy(t *testing.T) {
	e := newEnv(t, defaultSite)
	// Prime: one valid request, so the startup fetch is done.
	if resp, _ := e.do("POST", "/mcp", bearer(e.token(nil)), rpc); resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	before := e.iss.JWKSFetches.Load()
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			for j := 0; j < 25; j++ {
				k := &testissuer.Key{KID: fmt.Sprintf("rnd-%d-%d", i, j), Alg: "RS256", Private: e.key.Private}
				tok := testissuer.Mint(testissuer.Token{Key: k, Claims: e.iss.Claims(resource, "mcp:read")})
				req, _ := http.NewRequest("POST", resource, strings.NewReader(rpc))
				req.Header.Set("Authorization", "Bearer "+tok)
				resp, err := e.tester.Client.Do(req)
				if err != nil {
					t.Error(err)
					return
				}
				resp.Body.Close()
				if resp.StatusCode != 401 {
					t.Errorf("unknown kid: %d", resp.StatusCode)
				}
			}
		}(i)
	}
	wg.Wait()
	// 200 tokens with random kids within far less than the 10s floor:
	// at most one refetch.
	if n := e.iss.JWKSFetches.Load() - before; n > 1 {
		t.Fatalf("%d JWKS fetches for 200 unknown-kid tokens", n)
	}
}

func TestSeveralResourcesOnOneHost(t *testing.T) {
	e := newEnv(t, `
:9080 {
	mcp_auth /a/* {
		resource http://localhost:9080/a/mcp
		issuer %[1]s
	}
	mcp_auth /b/* {
		resource http://localhost:9080/b/mcp
		issuer %[1]s
	}
	reverse_proxy %[2]s
}
`)
	for _, p := range []string{"a", "b"} {
		resp, body := e.do("GET", "/.well-known/oauth-protected-resource/"+p+"/mcp", nil, "")
		if resp.StatusCode != 200 || !strings.Contains(body, `"resource":"http://localhost:9080/`+p+`/mcp"`) {
			t.Fatalf("%s: %d %s", p, resp.StatusCode, body)
		}
		resp, _ = e.do("POST", "/"+p+"/mcp", nil, rpc)
		want := `Bearer resource_metadata="http://localhost:9080/.well-known/oauth-protected-resource/` + p + `/mcp"`
		if resp.StatusCode != 401 || resp.Header.Get("WWW-Authenticate") != want {
			t.Fatalf("%s challenge: %d %q", p, resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
		}
	}
	// The root document would be ambiguous.
	if resp, _ := e.do("GET", "/.well-known/oauth-protected-resource", nil, ""); resp.StatusCode != 404 {
		t.Fatalf("root metadata with two resources: %d", resp.StatusCode)
	}
	// A token for /a is refused at /b: one audience per resource.
	tokA := testissuer.Mint(testissuer.Token{Key: e.key, Claims: e.iss.Claims("http://localhost:9080/a/mcp", "")})
	if resp, _ := e.do("POST", "/a/mcp", bearer(tokA), rpc); resp.StatusCode != 200 {
		t.Fatalf("token for a at a: %d", resp.StatusCode)
	}
	if resp, _ := e.do("POST", "/b/mcp", bearer(tokA), rpc); resp.StatusCode != 401 {
		t.Fatalf("token for a at b: %d", resp.StatusCode)
	}
}

func TestHandleErrorsSeesRejections(t *testing.T) {
	e := newEnv(t, `
:9080 {
	mcp_auth {
		resource http://localhost:9080/mcp
		issuer %s
	}
	reverse_proxy %s
	handle_errors {
		respond "custom {err.status_code}"
	}
}
`)
	resp, body := e.do("POST", "/mcp", nil, rpc)
	if resp.StatusCode != 401 || body != "custom 401" || !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer ") {
		t.Fatalf("%d %q %v", resp.StatusCode, body, resp.Header)
	}
}

func TestLoadErrors(t *testing.T) {
	const res = "resource https://mcp.example.com/mcp\n"
	const iss = "issuer https://idp.example.com\n"
	for _, tc := range []struct{ cfg, want string }{
		{iss, "resource is required"},
		{res, "at least one issuer"},
		{"resource /mcp\n" + iss, "absolute URL"},
		{"resource https://mcp.example.com/mcp#x\n" + iss, "fragment"},
		{"resource https://mcp.example.com/mcp?x=1\n" + iss, "query"},
		{"resource http://mcp.example.com/mcp\n" + iss, "http is allowed only on loopback"},
		{res + "issuer http://idp.example.com\n", "http is allowed only on loopback"},
		{res + "issuer https://idp.example.com {\nalgorithms HS256\n}\n", "HMAC"},
		{res + "issuer https://idp.example.com {\nalgorithms none\n}\n", "never accepted"},
		{res + "issuer https://idp.example.com {\nalgorithms RS257\n}\n", "unknown algorithm"},
		{res + "issuer https://idp.example.com {\njwks_file /nonexistent/jwks.json\n}\n", "reading jwks_file"},
		{res + "issuer https://idp.example.com {\njwks_uri http://idp.example.com/jwks\n}\n", "jwks_uri"},
		{res + "issuer https://idp.example.com {\nfoo\n}\n", "issuer: unrecognized subdirective"},
		{res + iss + "frobnicate\n", "unrecognized subdirective"},
		{res + iss + "clock_skew soon\n", "clock_skew: bad duration"},
		{res + iss + "require_scope a\"b\n", "not a valid scope"},
		{res + iss + "allow_origins https://app.example.com/path\n", "allow_origins"},
		{res + iss + "token_cache -1\n", "token_cache"},
	} {
		cfg := globalOptions + ":9080 {\nmcp_auth {\n" + tc.cfg + "}\n}\n"
		assertLoadError(t, cfg, tc.want)
	}
}

// assertLoadError is caddytest.AssertLoadError, reporting a config that
// loads instead of panicking on it.
func assertLoadError(t *testing.T, cfg, want string) {
	t.Helper()
	defer func() {
		if recover() != nil {
			t.Errorf("config loaded, want error %q:\n%s", want, cfg)
		}
	}()
	caddytest.AssertLoadError(t, cfg, "caddyfile", want)
}

// TestReloadKeepsKeys: a config reload reuses the issuer's key cache (a
// usage pool entry) instead of fetching the keys again, and tokens keep
// working across the reload.
func TestReloadKeepsKeys(t *testing.T) {
	e := newEnv(t, defaultSite)
	if resp, _ := e.do("POST", "/mcp", bearer(e.token(nil)), rpc); resp.StatusCode != 200 {
		t.Fatalf("before reload: %d", resp.StatusCode)
	}
	before := e.iss.JWKSFetches.Load()
	// The same issuer in a changed configuration.
	e.tester.InitServer(globalOptions+fmt.Sprintf(strings.Replace(defaultSite, `resource_name "Test MCP"`, `resource_name "Reloaded"`, 1), e.iss.URL, e.backend.srv.URL), "caddyfile")
	_, doc := e.do("GET", "/.well-known/oauth-protected-resource/mcp", nil, "")
	if !strings.Contains(doc, `"resource_name":"Reloaded"`) {
		t.Fatalf("reload not applied: %s", doc)
	}
	// A new token (not in the token cache, which belongs to the old handler)
	// must verify with the keys already held.
	if resp, _ := e.do("POST", "/mcp", bearer(e.token(func(c map[string]any) { c["jti"] = "after-reload" })), rpc); resp.StatusCode != 200 {
		t.Fatalf("after reload: %d", resp.StatusCode)
	}
	if n := e.iss.JWKSFetches.Load() - before; n != 0 {
		t.Fatalf("the reload fetched the JWKS %d more times", n)
	}
}

// TestKeyRotationThroughCaddy: the IdP rotates in a new key; a token
// signed with it is accepted without a reload (one refetch on the unknown
// kid), and once the old key is gone its tokens are refused, even though
// the token cache had them.
func TestKeyRotationThroughCaddy(t *testing.T) {
	e := newEnv(t, defaultSite)
	old := e.token(nil)
	if resp, _ := e.do("POST", "/mcp", bearer(old), rpc); resp.StatusCode != 200 {
		t.Fatalf("old key before rotation: %d", resp.StatusCode)
	}
	k2 := testissuer.NewRSA("k2")
	e.iss.SetKeys(k2)
	fresh := testissuer.Mint(testissuer.Token{Key: k2, Claims: e.iss.Claims(resource, "mcp:read")})
	if resp, _ := e.do("POST", "/mcp", bearer(fresh), rpc); resp.StatusCode != 200 {
		t.Fatalf("rotated-in key: %d %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
	resp, _ := e.do("POST", "/mcp", bearer(old), rpc)
	if resp.StatusCode != 401 || !strings.Contains(resp.Header.Get("WWW-Authenticate"), "unknown key") {
		t.Fatalf("rotated-out key: %d %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
}
