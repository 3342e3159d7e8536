package metadata

import (
	"strings"
	"testing"
)

func TestWellKnownPath(t *testing.T) {
	for res, want := range map[string]string{
		"https://mcp.example.com/mcp":       "/.well-known/oauth-protected-resource/mcp",
		"https://mcp.example.com/mcp/":      "/.well-known/oauth-protected-resource/mcp",
		"https://mcp.example.com/a/b/mcp":   "/.well-known/oauth-protected-resource/a/b/mcp",
		"https://mcp.example.com":           "/.well-known/oauth-protected-resource",
		"https://mcp.example.com/":          "/.well-known/oauth-protected-resource",
		"https://mcp.example.com/a%20b":     "/.well-known/oauth-protected-resource/a%20b",
		"http://127.0.0.1:8080/servers/mcp": "/.well-known/oauth-protected-resource/servers/mcp",
	} {
		got, err := WellKnownPath(res)
		if err != nil || got != want {
			t.Errorf("WellKnownPath(%q) = %q, %v; want %q", res, got, err, want)
		}
	}
	if u, _ := URL("https://mcp.example.com:8443/mcp"); u != "https://mcp.example.com:8443/.well-known/oauth-protected-resource/mcp" {
		t.Errorf("URL = %q", u)
	}
	if _, err := URL("/mcp"); err == nil {
		t.Error("relative resource accepted")
	}
}

func TestOrigin(t *testing.T) {
	for in, want := range map[string]string{
		"https://App.Example.com":     "https://app.example.com",
		"https://app.example.com:443": "https://app.example.com",
		"http://localhost:6274/":      "http://localhost:6274",
		"http://[::1]:80":             "http://[::1]",
		"https://x.example/path?q":    "https://x.example",
	} {
		if got, err := Origin(in); err != nil || got != want {
			t.Errorf("Origin(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}

func TestChallengeString(t *testing.T) {
	tests := []struct {
		c    Challenge
		want string
	}{
		{Challenge{ResourceMetadata: "https://h/.well-known/oauth-protected-resource/mcp"},
			`Bearer resource_metadata="https://h/.well-known/oauth-protected-resource/mcp"`},
		{Challenge{Scope: "mcp:read mcp:write", ResourceMetadata: "https://h/p"},
			`Bearer scope="mcp:read mcp:write", resource_metadata="https://h/p"`},
		{Challenge{Error: ErrInvalidToken, ErrorDescription: `bad "quoted" \ text` + "\n", ResourceMetadata: "https://h/p"},
			`Bearer error="invalid_token", error_description="bad quoted  text", resource_metadata="https://h/p"`},
		{Challenge{Error: ErrInsufficientUserAuthentication, ACRValues: "urn:mfa urn:pwd", MaxAge: 300, HasMaxAge: true, ResourceMetadata: "https://h/p"},
			`Bearer error="insufficient_user_authentication", acr_values="urn:mfa urn:pwd", max_age="300", resource_metadata="https://h/p"`},
		{Challenge{Error: ErrInsufficientUserAuthentication, HasMaxAge: true},
			`Bearer error="insufficient_user_authentication", max_age="0"`},
		{Challenge{}, `Bearer`},
	}
	for _, tt := range tests {
		got := tt.c.String()
		if got != tt.want {
			t.Errorf("got  %s\nwant %s", got, tt.want)
		}
		if strings.ContainsAny(got, "\r\n") {
			t.Errorf("challenge spans lines: %q", got)
		}
	}
}

func TestDocumentOmitsEmpty(t *testing.T) {
	b, err := Document{Resource: "https://h/mcp", AuthorizationServers: []string{"https://idp"}}.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != `{"resource":"https://h/mcp","authorization_servers":["https://idp"]}` {
		t.Fatalf("%s", b)
	}
	if _, err := (Document{}).Marshal(); err == nil {
		t.Fatal("document without resource marshalled")
	}
}

func TestScopeTokens(t *testing.T) {
	for s, ok := range map[string]bool{"mcp:read": true, "https://x/y": true, "": false, "a b": false, `a"b`: false, `a\b`: false, "é": false} {
		if ValidScopeToken(s) != ok {
			t.Errorf("ValidScopeToken(%q) != %v", s, ok)
		}
	}
	if SafeText("a\"b") || !SafeText("A different level: ok!") {
		t.Error("SafeText")
	}
}
