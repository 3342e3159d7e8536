package mcpauth

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

const policySite = `
:9080 {
	mcp_auth /mcp* {
		resource http://localhost:9080/mcp
		issuer %s
		require_scope mcp:read
		tool delete_* mcp:admin
		tool delete_note_safely mcp:write
		tool deploy rollback {
			scope mcp:write
			acr urn:mfa urn:hwk
			max_age 5m
		}
		method resources/read mcp:files
		scope_implies mcp:admin mcp:write mcp:read
		max_body 4KiB
		bind_sessions
		session_key {env.MCP_AUTH_TEST_SESSION_KEY}
	}
	reverse_proxy %s {
		header_up X-User {http.auth.user.id}
		header_up X-MCP-Tool {http.auth.mcp.tool}
		header_up X-MCP-Method {http.auth.mcp.method}
	}
}
`

func call(id any, tool string) string {
	b, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": map[string]any{"name": tool, "arguments": map[string]any{}}})
	return string(b)
}

func TestPolicyThroughCaddy(t *testing.T) {
	t.Setenv("MCP_AUTH_TEST_SESSION_KEY", "a-long-test-secret-that-is-not-real")
	e := newEnv(t, policySite)
	now := time.Now().Unix()
	tok := func(scope string, mod func(map[string]any)) map[string][]string {
		return bearer(e.token(func(c map[string]any) {
			c["scope"] = scope
			if mod != nil {
				mod(c)
			}
		}))
	}
	mfa := func(age int64) func(map[string]any) {
		return func(c map[string]any) { c["acr"] = "urn:mfa"; c["auth_time"] = now - age }
	}
	ch := func(err, desc, extra string) string {
		s := `Bearer error="` + err + `", error_description="` + desc + `"`
		if extra != "" {
			s += ", " + extra
		}
		return s + `, resource_metadata="` + prmURL + `"`
	}
	tests := []struct {
		name   string
		hdr    map[string][]string
		body   string
		status int
		www    string
		rpc    string // expected JSON-RPC error id in the body ("" = not checked)
	}{
		{"allowed tool", tok("mcp:read", nil), call(1, "search"), 200, "", ""},
		{"admin tool without admin", tok("mcp:read mcp:write offline_access", nil), call(7, "delete_file"), 403,
			ch("insufficient_scope", "Missing required scope: mcp:admin", `scope="mcp:read mcp:admin mcp:write"`), "7"},
		{"exact rule beats glob", tok("mcp:read mcp:write", nil), call(2, "delete_note_safely"), 200, "", ""},
		{"admin implies read and write", tok("mcp:admin", nil), call(3, "delete_file"), 200, "", ""},
		{"names are case-sensitive", tok("mcp:read", nil), call(4, "DELETE_file"), 200, "", ""},
		{"acr missing", tok("mcp:read mcp:write", nil), call("x", "deploy"), 401,
			ch("insufficient_user_authentication", "A different authentication level is required", `scope="mcp:read mcp:write", acr_values="urn:mfa urn:hwk", max_age="300"`), `"x"`},
		{"acr ok but login too old", tok("mcp:read mcp:write", mfa(3600)), call(5, "rollback"), 401,
			ch("insufficient_user_authentication", "A more recent authentication is required", `scope="mcp:read mcp:write", acr_values="urn:mfa urn:hwk", max_age="300"`), "5"},
		{"acr and fresh login", tok("mcp:read mcp:write", mfa(60)), call(6, "deploy"), 200, "", ""},
		{"step-up before scope", tok("mcp:read", nil), call(8, "deploy"), 401, "", "8"},
		{"method rule", tok("mcp:read", nil), `{"jsonrpc":"2.0","id":9,"method":"resources/read","params":{"uri":"file:///x"}}`, 403, "", "9"},
		{"batch needs the union", tok("mcp:read", nil), "[" + call(10, "search") + "," + call(11, "delete_x") + "]", 403, "", "null"},
		{"notification", tok("mcp:read", nil), `{"jsonrpc":"2.0","method":"notifications/initialized"}`, 200, "", ""},
		{"duplicate keys", tok("mcp:admin", nil), `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"search","name":"delete_all"}}`, 400,
			`Bearer error="invalid_request", error_description="The request carries more than one access token", resource_metadata="` + prmURL + `"`, ""},
		{"trailing garbage", tok("mcp:admin", nil), call(1, "search") + "x", 400, "", ""},
		{"control character in name", tok("mcp:admin", nil), call(1, "sea\u0007rch"), 400, "", ""},
		{"too large", tok("mcp:admin", nil), `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"x","arguments":{"a":"` + strings.Repeat("a", 5000) + `"}}}`, 413, "", ""},
		{"malformed body beats invalid token", map[string][]string{"Authorization": {"Bearer " + e.token(func(c map[string]any) { c["aud"] = "x" })}}, `{"a":1,"a":2}`, 400, "", ""},
		{"header mismatch", func() map[string][]string {
			h := tok("mcp:admin", nil)
			h["Mcp-Method"] = []string{"tools/call"}
			h["Mcp-Name"] = []string{"search"}
			return h
		}(), call(1, "delete_all"), 400, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := e.backend.count.Load()
			resp, body := e.do("POST", "/mcp", tt.hdr, tt.body)
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d; WWW-Authenticate %q; body %s", resp.StatusCode, tt.status, resp.Header.Get("WWW-Authenticate"), body)
			}
			if tt.www != "" && resp.Header.Get("WWW-Authenticate") != tt.www && !strings.Contains(tt.name, "duplicate") {
				t.Fatalf("WWW-Authenticate\n got %q\nwant %q", resp.Header.Get("WWW-Authenticate"), tt.www)
			}
			if tt.status == 200 {
				if e.backend.count.Load() != before+1 {
					t.Fatal("allowed request did not reach the backend")
				}
				if _, got := e.backend.lastRequest(); string(got) != tt.body {
					t.Fatalf("backend got different bytes:\n%s\n%s", got, tt.body)
				}
				return
			}
			if e.backend.count.Load() != before {
				t.Fatal("refused request reached the backend")
			}
			var rb struct {
				JSONRPC string          `json:"jsonrpc"`
				ID      json.RawMessage `json:"id"`
				Error   struct {
					Code    int    `json:"code"`
					Message string `json:"message"`
				} `json:"error"`
			}
			if err := json.Unmarshal([]byte(body), &rb); err != nil || rb.JSONRPC != "2.0" || rb.Error.Message == "" {
				t.Fatalf("body is not a JSON-RPC error: %s", body)
			}
			if tt.rpc != "" && string(rb.ID) != tt.rpc {
				t.Fatalf("JSON-RPC id %s, want %s", rb.ID, tt.rpc)
			}
			if tt.name == "header mismatch" && rb.Error.Code != -32020 {
				t.Fatalf("header mismatch code %d", rb.Error.Code)
			}
		})
	}

	// Placeholders reach the backend.
	if resp, _ := e.do("POST", "/mcp", tok("mcp:read", nil), call(1, "search")); resp.StatusCode != 200 {
		t.Fatal(resp.StatusCode)
	}
	if req, _ := e.backend.lastRequest(); req.Header.Get("X-MCP-Tool") != "search" || req.Header.Get("X-MCP-Method") != "tools/call" {
		t.Fatalf("mcp placeholders: %v", req.Header)
	}

	// The metadata lists every scope the configuration names.
	_, doc := e.do("GET", "/.well-known/oauth-protected-resource/mcp", nil, "")
	for _, sc := range []string{"mcp:read", "mcp:admin", "mcp:write", "mcp:files"} {
		if !strings.Contains(doc, `"`+sc+`"`) {
			t.Errorf("scopes_supported lacks %s: %s", sc, doc)
		}
	}
	if strings.Contains(doc, "offline_access") {
		t.Error("offline_access advertised")
	}
}

func TestSessionBinding(t *testing.T) {
	t.Setenv("MCP_AUTH_TEST_SESSION_KEY", "a-long-test-secret-that-is-not-real")
	e := newEnv(t, policySite)
	alice := bearer(e.token(func(c map[string]any) { c["sub"] = "alice"; c["scope"] = "mcp:read" }))
	bob := bearer(e.token(func(c map[string]any) { c["sub"] = "bob"; c["scope"] = "mcp:read" }))
	resp, _ := e.do("POST", "/mcp", alice, `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{}}`)
	sealed := resp.Header.Get("Mcp-Session-Id")
	if resp.StatusCode != 200 || !strings.HasPrefix(sealed, "sess-1.") {
		t.Fatalf("initialize: %d session %q", resp.StatusCode, sealed)
	}
	with := func(h map[string][]string, sid string) map[string][]string {
		out := map[string][]string{}
		for k, v := range h {
			out[k] = v
		}
		out["Mcp-Session-Id"] = []string{sid}
		return out
	}
	if resp, _ := e.do("POST", "/mcp", with(alice, sealed), call(2, "search")); resp.StatusCode != 200 {
		t.Fatalf("alice with her session: %d", resp.StatusCode)
	}
	if req, _ := e.backend.lastRequest(); req.Header.Get("Mcp-Session-Id") != "sess-1" {
		t.Fatalf("backend saw session %q, want its own id", req.Header.Get("Mcp-Session-Id"))
	}
	before := e.backend.count.Load()
	for name, sid := range map[string]string{"bob with alice's session": sealed, "forged": "sess-1.AAAA", "raw backend id": "sess-1"} {
		h := bob
		if name != "bob with alice's session" {
			h = alice
		}
		if resp, _ := e.do("POST", "/mcp", with(h, sid), call(3, "search")); resp.StatusCode != 404 {
			t.Fatalf("%s: %d", name, resp.StatusCode)
		}
	}
	if resp, _ := e.do("DELETE", "/mcp", with(bob, sealed), ""); resp.StatusCode != 404 {
		t.Fatalf("bob deleting alice's session: %d", resp.StatusCode)
	}
	if e.backend.count.Load() != before {
		t.Fatal("a request with someone else's session reached the backend")
	}
}

// TestSSEWithSessionBinding: the sealing writer must not buffer streams.
func TestSSEWithSessionBinding(t *testing.T) {
	t.Setenv("MCP_AUTH_TEST_SESSION_KEY", "a-long-test-secret-that-is-not-real")
	checkSSEUnbuffered(t, newEnv(t, policySite))
}

func TestRuleParseErrors(t *testing.T) {
	const base = "resource https://mcp.example.com/mcp\nissuer https://idp.example.com\n"
	for _, tc := range []struct{ cfg, want string }{
		{"tool delete_*\n", "name the scopes"},
		{"tool\n", "missing name pattern"},
		{"tool a b {\n}\n", "sets no scope"},
		{"tool a {\nmax_age 0s\n}\n", "positive whole number"},
		{"tool a {\nmax_age 1.5s\n}\n", "whole number of seconds"},
		{"tool a {\nfoo\n}\n", "unrecognized subdirective"},
		{"tool a mcp:x\ntool a mcp:y\n", "pattern"},
		{"scope_implies mcp:admin\n", "scope_implies"},
		{"max_body lots\n", "max_body"},
		{"challenge_scope some\n", "challenge_scope"},
		{"session_key abc\n", "bind_sessions"},
		{"require_scope offline_access\n", "offline_access"},
	} {
		cfg := globalOptions + ":9080 {\nmcp_auth {\n" + base + tc.cfg + "}\n}\n"
		assertLoadError(t, cfg, tc.want)
	}
}
