// Command goclient is the second, independent MCP client of the interop suite: the
// official Go SDK (github.com/modelcontextprotocol/go-sdk) with its own OAuth client
// (auth.AuthorizationCodeHandler on golang.org/x/oauth2). Our glue is the
// AuthorizationCodeFetcher, a headless browser (cookie jar, redirects followed until
// the AS sends it to the redirect URI), like ../ua.mjs.
//
//	go run . <mcp-url>
//
// Prints "ok go-client/<name>" / "FAIL go-client/<name>: why"; exit 1 on failure.
// STEPUP=0 skips the step-up scenario; EXPECT_USER (default alice) is the X-User the
// gateway should forward.
package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/modelcontextprotocol/go-sdk/oauthex"
)

const redirectURL = "http://127.0.0.1:8977/callback"

var failed int

func report(name string, err error, detail string) {
	if err != nil {
		failed++
		fmt.Printf("FAIL go-client/%s: %s\n", name, strings.Join(strings.Fields(err.Error()), " "))
		return
	}
	if detail != "" {
		fmt.Printf("ok go-client/%s (%s)\n", name, detail)
	} else {
		fmt.Printf("ok go-client/%s\n", name)
	}
}

// browser follows the authorization URL through the AS's auto-login and auto-consent.
type browser struct {
	mu     sync.Mutex
	client *http.Client
	urls   []*url.URL // authorization URLs seen, in order
}

func newBrowser() *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{client: &http.Client{
		Jar:     jar,
		Timeout: 20 * time.Second,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if strings.HasPrefix(req.URL.String(), redirectURL) || len(via) > 15 {
				return http.ErrUseLastResponse
			}
			return nil
		},
	}}
}

func (b *browser) fetchCode(ctx context.Context, args *auth.AuthorizationArgs) (*auth.AuthorizationResult, error) {
	u, err := url.Parse(args.URL)
	if err != nil {
		return nil, err
	}
	b.mu.Lock()
	b.urls = append(b.urls, u)
	b.mu.Unlock()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, args.URL, nil)
	resp, err := b.client.Do(req)
	if err != nil {
		return nil, err
	}
	resp.Body.Close()
	loc := resp.Header.Get("Location")
	if !strings.HasPrefix(loc, redirectURL) {
		return nil, fmt.Errorf("authorization flow stopped at %s: HTTP %d (Location %q)", resp.Request.URL, resp.StatusCode, loc)
	}
	back, _ := url.Parse(loc)
	q := back.Query()
	if e := q.Get("error"); e != "" {
		return nil, fmt.Errorf("authorization error %s: %s", e, q.Get("error_description"))
	}
	return &auth.AuthorizationResult{Code: q.Get("code"), State: q.Get("state"), Iss: q.Get("iss")}, nil
}

func (b *browser) authorizations() []*url.URL {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]*url.URL(nil), b.urls...)
}

// tokenRecorder sees the Authorization header of every MCP request.
type tokenRecorder struct {
	mu   sync.Mutex
	last string
	base http.RoundTripper
}

func (t *tokenRecorder) RoundTrip(r *http.Request) (*http.Response, error) {
	if h := r.Header.Get("Authorization"); h != "" {
		t.mu.Lock()
		t.last = strings.TrimPrefix(h, "Bearer ")
		t.mu.Unlock()
	}
	return t.base.RoundTrip(r)
}

func (t *tokenRecorder) claims() map[string]any {
	t.mu.Lock()
	defer t.mu.Unlock()
	parts := strings.Split(t.last, ".")
	if len(parts) != 3 {
		return nil
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return nil
	}
	var c map[string]any
	_ = json.Unmarshal(raw, &c)
	return c
}

func text(r *mcp.CallToolResult) string {
	var sb strings.Builder
	for _, c := range r.Content {
		if t, ok := c.(*mcp.TextContent); ok {
			sb.WriteString(t.Text)
		}
	}
	return sb.String()
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: goclient <mcp-url>")
		os.Exit(2)
	}
	serverURL := os.Args[1]
	expectUser := os.Getenv("EXPECT_USER")
	if expectUser == "" {
		expectUser = "alice"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	b := newBrowser()
	handler, err := auth.NewAuthorizationCodeHandler(&auth.AuthorizationCodeHandlerConfig{
		RedirectURL: redirectURL,
		DynamicClientRegistrationConfig: &auth.DynamicClientRegistrationConfig{Metadata: &oauthex.ClientRegistrationMetadata{
			ClientName:              "caddy-mcp-auth interop client (MCP Go SDK)",
			RedirectURIs:            []string{redirectURL},
			TokenEndpointAuthMethod: "none",
			GrantTypes:              []string{"authorization_code", "refresh_token"},
			ResponseTypes:           []string{"code"},
		}},
		AuthorizationCodeFetcher: b.fetchCode,
	})
	if err != nil {
		report("setup", err, "")
		os.Exit(1)
	}
	rec := &tokenRecorder{base: http.DefaultTransport}
	transport := &mcp.StreamableClientTransport{
		Endpoint:     serverURL,
		OAuthHandler: handler,
		HTTPClient:   &http.Client{Transport: rec},
	}
	var progressMu sync.Mutex
	var progress []float64
	client := mcp.NewClient(&mcp.Implementation{Name: "caddy-mcp-auth-interop-goclient", Version: "1.0.0"}, &mcp.ClientOptions{
		ProgressNotificationHandler: func(_ context.Context, r *mcp.ProgressNotificationClientRequest) {
			progressMu.Lock()
			progress = append(progress, r.Params.Progress)
			progressMu.Unlock()
		},
	})

	// 401 -> PRM -> AS metadata -> DCR -> PKCE + resource -> token, all inside Connect.
	session, err := client.Connect(ctx, transport, nil)
	if err == nil && len(b.authorizations()) == 0 {
		err = errors.New("connected without any authorization: is the endpoint protected?")
	}
	detail := ""
	if err == nil {
		a := b.authorizations()[0]
		q := a.Query()
		if q.Get("code_challenge_method") != "S256" {
			err = fmt.Errorf("authorization without PKCE S256: %s", a)
		} else if q.Get("resource") != serverURL {
			err = fmt.Errorf("authorization resource=%q, want %q", q.Get("resource"), serverURL)
		}
		c := rec.claims()
		detail = fmt.Sprintf("scope=%s token aud=%v scope=%v", q.Get("scope"), c["aud"], c["scope"])
	}
	report("oauth-flow-and-connect", err, detail)
	if err != nil {
		os.Exit(1)
	}
	defer session.Close()

	tools, err := session.ListTools(ctx, nil)
	if err == nil {
		names := map[string]bool{}
		for _, t := range tools.Tools {
			names[t.Name] = true
		}
		for _, n := range []string{"echo", "whoami", "admin_action", "stream"} {
			if !names[n] {
				err = fmt.Errorf("tool %s missing", n)
			}
		}
	}
	report("tools-list", err, "")

	r, err := session.CallTool(ctx, &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"message": "hello from Go"}})
	if err == nil && text(r) != "hello from Go" {
		err = fmt.Errorf("unexpected echo result %q", text(r))
	}
	report("call-echo", err, "")

	r, err = session.CallTool(ctx, &mcp.CallToolParams{Name: "whoami"})
	if err == nil && text(r) != expectUser {
		err = fmt.Errorf("x-user seen by the server: %q (expected %q)", text(r), expectUser)
	}
	report("call-whoami", err, "")

	p := &mcp.CallToolParams{Name: "stream", Arguments: map[string]any{"count": 5, "delayMs": 50}}
	p.SetProgressToken("go-progress")
	r, err = session.CallTool(ctx, p)
	progressMu.Lock()
	n := len(progress)
	progressMu.Unlock()
	if err == nil && (text(r) != "streamed 5" || n != 5) {
		err = fmt.Errorf("result %q with %d progress notifications (want 5)", text(r), n)
	}
	report("call-stream-sse-progress", err, fmt.Sprintf("%d progress notifications", n))

	if os.Getenv("STEPUP") == "0" {
		fmt.Println("skip go-client/step-up (STEPUP=0)")
	} else {
		before := len(b.authorizations())
		r, err = session.CallTool(ctx, &mcp.CallToolParams{Name: "admin_action"})
		detail = ""
		if err == nil && text(r) != "admin action done" {
			err = fmt.Errorf("unexpected admin_action result %q (isError=%v)", text(r), r.IsError)
		}
		if err == nil {
			if a := b.authorizations(); len(a) == before {
				err = errors.New("admin_action succeeded without re-authorization: was it not protected by mcp:admin?")
			} else {
				detail = fmt.Sprintf("re-authorized with scope=%q", a[len(a)-1].Query().Get("scope"))
			}
		}
		report("step-up-insufficient-scope", err, detail)
		r, err = session.CallTool(ctx, &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"message": "still here"}})
		if err == nil && text(r) != "still here" {
			err = fmt.Errorf("unexpected echo result %q", text(r))
		}
		report("echo-after-step-up", err, "")
	}
	if failed > 0 {
		os.Exit(1)
	}
}
