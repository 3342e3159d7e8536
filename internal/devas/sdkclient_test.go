package devas_test

// End-to-end check that the MCP Go SDK's OAuth client
// (auth.AuthorizationCodeHandler) works against devas: discovery through a
// minimal protected resource, dynamic registration, code+PKCE with the
// resource parameter, a 403 insufficient_scope step-up and an RFC 9470
// acr step-up (which the SDK does not do by itself; see internal/sdkclient).
//
// The "gateway" here is a test double, not caddy-mcp-auth.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jwt"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcpauth/caddy-mcp-auth/internal/demomcp"
	"github.com/mcpauth/caddy-mcp-auth/internal/devas"
	"github.com/mcpauth/caddy-mcp-auth/internal/sdkclient"
)

// testGateway is a tiny bearer-token protected resource in front of demomcp.
type testGateway struct {
	t        *testing.T
	issuer   string
	resource string // <gateway>/mcp
	prmURL   string
	keys     jwk.Set
	next     http.Handler

	mu     sync.Mutex
	scopes [][]string // scopes of the tokens that were let through, in order
}

func (g *testGateway) challenge(w http.ResponseWriter, status int, params string) {
	w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer resource_metadata=%q, %s`, g.prmURL, params))
	http.Error(w, http.StatusText(status), status)
}

func (g *testGateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/.well-known/oauth-protected-resource/mcp" {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{
			"resource":              g.resource,
			"authorization_servers": []string{g.issuer},
			"scopes_supported":      []string{"mcp:tools"},
		})
		return
	}
	if r.URL.Path != "/mcp" {
		http.NotFound(w, r)
		return
	}
	raw, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		g.challenge(w, http.StatusUnauthorized, `scope="mcp:tools"`)
		return
	}
	tok, err := jwt.Parse([]byte(raw), jwt.WithKeySet(g.keys), jwt.WithValidate(true),
		jwt.WithIssuer(g.issuer), jwt.WithAudience(g.resource))
	if err != nil {
		g.challenge(w, http.StatusUnauthorized, `error="invalid_token"`)
		return
	}
	var scope, acr string
	_ = tok.Get("scope", &scope)
	_ = tok.Get("acr", &acr)
	sub, _ := tok.Subject()
	granted := strings.Fields(scope)

	// Per-tool policy: peek at the JSON-RPC request.
	body, _ := io.ReadAll(r.Body)
	r.Body = io.NopCloser(bytes.NewReader(body))
	var msg struct {
		Method string `json:"method"`
		Params struct {
			Name string `json:"name"`
		} `json:"params"`
	}
	_ = json.Unmarshal(body, &msg)
	if msg.Method == "tools/call" {
		switch msg.Params.Name {
		case "delete_note":
			if !slices.Contains(granted, "mcp:admin") {
				g.challenge(w, http.StatusForbidden, `error="insufficient_scope", scope="mcp:tools mcp:admin"`)
				return
			}
		case "deploy":
			if acr != devas.DefaultStrongACR {
				g.challenge(w, http.StatusUnauthorized, fmt.Sprintf(`error="insufficient_user_authentication", acr_values=%q`, devas.DefaultStrongACR))
				return
			}
		}
	}
	g.mu.Lock()
	g.scopes = append(g.scopes, granted)
	g.mu.Unlock()
	r.Header.Set(demomcp.UserHeader, sub)
	g.next.ServeHTTP(w, r)
}

func TestSDKClientAgainstDevAS(t *testing.T) {
	as, err := devas.New(quietOptions())
	if err != nil {
		t.Fatal(err)
	}
	asTS := httptest.NewServer(as)
	t.Cleanup(asTS.Close)
	gw := &testGateway{t: t, issuer: asTS.URL, keys: fetchKeySet(t, asTS.URL+devas.PathJWKS), next: demomcp.Handler()}
	gwTS := httptest.NewServer(gw)
	t.Cleanup(gwTS.Close)
	gw.resource = gwTS.URL + "/mcp"
	gw.prmURL = gwTS.URL + "/.well-known/oauth-protected-resource/mcp"

	h, err := sdkclient.NewOAuthHandler(nil, "sdk e2e")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	client := mcp.NewClient(&mcp.Implementation{Name: "sdk-e2e", Version: "v0"}, nil)
	cs, err := client.Connect(ctx, &mcp.StreamableClientTransport{
		Endpoint:     gw.resource,
		OAuthHandler: h,
	}, nil)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { cs.Close() })

	text := func(name string, args map[string]any) string {
		t.Helper()
		res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: name, Arguments: args})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if res.IsError {
			t.Fatalf("%s: tool error %v", name, res.Content)
		}
		return res.Content[0].(*mcp.TextContent).Text
	}

	if got := text("whoami", nil); got != "demo-user" {
		t.Errorf("whoami = %q, want demo-user", got)
	}
	if n := as.TokensIssued(); n != 1 {
		t.Errorf("after connect: TokensIssued = %d, want 1", n)
	}

	// 403 insufficient_scope: the SDK re-authorizes with the union of the
	// granted and the challenged scopes and retries once.
	if got := text("delete_note", map[string]any{"id": "n1"}); !strings.Contains(got, `"deleted":true`) {
		t.Errorf("delete_note = %s", got)
	}
	if n := as.TokensIssued(); n != 2 {
		t.Errorf("after scope step-up: TokensIssued = %d, want 2", n)
	}
	gw.mu.Lock()
	last := slices.Clone(gw.scopes[len(gw.scopes)-1])
	gw.mu.Unlock()
	slices.Sort(last)
	if !slices.Equal(last, []string{"mcp:admin", "mcp:tools"}) {
		t.Errorf("scopes after step-up = %v", last)
	}

	// 401 insufficient_user_authentication with acr_values: only works
	// because the sdkclient handler forwards acr_values to the authorization request.
	if got := text("deploy", map[string]any{"service": "api"}); !strings.Contains(got, `"status":"deployed"`) {
		t.Errorf("deploy = %s", got)
	}
	if n := as.TokensIssued(); n != 3 {
		t.Errorf("after acr step-up: TokensIssued = %d, want 3", n)
	}
	// And the earlier grants are kept: delete_note needs no new token.
	text("delete_note", map[string]any{"id": "n2"})
	if n := as.TokensIssued(); n != 3 {
		t.Errorf("delete_note after acr step-up: TokensIssued = %d, want 3", n)
	}
}
