package e2e

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/modelcontextprotocol/go-sdk/oauthex"

	"github.com/mcpauth/caddy-mcp-auth/internal/demomcp"
	"github.com/mcpauth/caddy-mcp-auth/internal/demostack"
	"github.com/mcpauth/caddy-mcp-auth/internal/sdkclient"
)

// progressInterval is the MCP server's pause between countdown
// notifications.
const progressInterval = 60 * time.Millisecond

// stack is shared by every test: Caddy is a process-wide singleton.
var stack *demostack.Stack

func TestMain(m *testing.M) {
	// zitadel/oidc logs its routes through the default logger.
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	st, err := demostack.Start(ctx, demostack.Options{Banner: io.Discard, ProgressInterval: progressInterval})
	cancel()
	if err != nil {
		fmt.Fprintf(os.Stderr, "e2e: starting the demo stack: %v\n", err)
		os.Exit(1)
	}
	stack = st
	code := m.Run()
	if err := st.Close(); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: stopping the demo stack: %v\n", err)
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// client is an SDK client session through the gateway.
type client struct {
	t    *testing.T
	rec  *recorder
	auth *sdkclient.OAuthHandler
	cs   *mcp.ClientSession

	progress chan *mcp.ProgressNotificationParams
}

func connect(t *testing.T, ctx context.Context, rec *recorder) *client {
	t.Helper()
	hc := &http.Client{Transport: rec, Timeout: 30 * time.Second}
	h, err := sdkclient.NewOAuthHandler(hc, "e2e")
	if err != nil {
		t.Fatal(err)
	}
	c := &client{t: t, rec: rec, auth: h, progress: make(chan *mcp.ProgressNotificationParams, 100)}
	mc := mcp.NewClient(&mcp.Implementation{Name: "e2e", Version: "v0"}, &mcp.ClientOptions{
		ProgressNotificationHandler: func(_ context.Context, req *mcp.ProgressNotificationClientRequest) {
			c.progress <- req.Params
		},
	})
	cs, err := mc.Connect(ctx, &mcp.StreamableClientTransport{
		Endpoint:     stack.Resource,
		HTTPClient:   hc,
		OAuthHandler: h,
	}, nil)
	if err != nil {
		t.Fatalf("connect through the gateway: %v", err)
	}
	c.cs = cs
	t.Cleanup(func() { cs.Close() })
	return c
}

// call runs a tool and returns its text result.
func (c *client) call(ctx context.Context, params *mcp.CallToolParams) string {
	c.t.Helper()
	res, err := c.cs.CallTool(ctx, params)
	if err != nil {
		c.t.Fatalf("%s: %v", params.Name, err)
	}
	var text string
	for _, ct := range res.Content {
		if tc, ok := ct.(*mcp.TextContent); ok {
			text += tc.Text
		}
	}
	if res.IsError {
		c.t.Fatalf("%s: tool error: %s", params.Name, text)
	}
	return text
}

func (c *client) claims(ctx context.Context) *sdkclient.Claims {
	c.t.Helper()
	tok, err := c.auth.AccessToken(ctx)
	if err != nil || tok == "" {
		c.t.Fatalf("access token: %q, %v", tok, err)
	}
	cl, err := sdkclient.DecodeClaims(tok)
	if err != nil {
		c.t.Fatal(err)
	}
	return cl
}

// challenges returns the gateway's answers with status and error code
// ("" for no error parameter).
func challenges(exs []exchange, status int, code string) []exchange {
	gw := strings.TrimPrefix(stack.Gateway, "http://")
	var out []exchange
	for _, e := range exs {
		if e.Host == gw && e.Status == status && e.Challenge != nil && e.Challenge["error"] == code {
			out = append(out, e)
		}
	}
	return out
}

func anyChallenge(exs []exchange) []exchange {
	var out []exchange
	for _, e := range exs {
		if e.Status == http.StatusUnauthorized || e.Status == http.StatusForbidden {
			out = append(out, e)
		}
	}
	return out
}

func tokensIssued(exs []exchange) int {
	as := strings.TrimPrefix(stack.Issuer, "http://")
	n := 0
	for _, e := range exs {
		if e.Host == as && e.Path == "/token" && e.Method == http.MethodPost && e.Status == http.StatusOK {
			n++
		}
	}
	return n
}

func TestCaddyfileDemo(t *testing.T) {
	if len(stack.Warnings) > 0 {
		t.Errorf("adapting %s: warnings %v", stack.Caddyfile, stack.Warnings)
	}
	var cfg struct {
		Admin struct {
			Disabled bool `json:"disabled"`
		} `json:"admin"`
	}
	if err := json.Unmarshal(stack.CaddyJSON, &cfg); err != nil {
		t.Fatal(err)
	}
	if !cfg.Admin.Disabled {
		t.Error("admin API is enabled; Caddyfile.demo must say admin off")
	}
	for _, want := range []string{`"handler":"mcp_auth"`, `"resource":"` + stack.Resource + `"`} {
		if !strings.Contains(string(stack.CaddyJSON), want) {
			t.Errorf("adapted config lacks %s", want)
		}
	}
}

// TestChallengeAndMetadata checks what a client without a token sees.
func TestChallengeAndMetadata(t *testing.T) {
	before := len(stack.BackendRequests())
	resp, err := http.Post(stack.Resource, "application/json",
		strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"tools/list"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("no token: status %d, want 401", resp.StatusCode)
	}
	cs, err := oauthex.ParseWWWAuthenticate(resp.Header.Values("WWW-Authenticate"))
	if err != nil || len(cs) != 1 || cs[0].Scheme != "bearer" {
		t.Fatalf("WWW-Authenticate %q: %v", resp.Header.Values("WWW-Authenticate"), err)
	}
	if got := cs[0].Params["resource_metadata"]; got != stack.PRMURL {
		t.Errorf("resource_metadata = %q, want %q", got, stack.PRMURL)
	}
	if got := cs[0].Params["scope"]; got != "mcp:tools" {
		t.Errorf("scope = %q, want mcp:tools", got)
	}
	if after := len(stack.BackendRequests()); after != before {
		t.Errorf("a request without a token reached the MCP server")
	}

	resp, err = http.Get(stack.PRMURL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var prm struct {
		Resource             string   `json:"resource"`
		AuthorizationServers []string `json:"authorization_servers"`
		ScopesSupported      []string `json:"scopes_supported"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&prm); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("PRM: %d %v", resp.StatusCode, err)
	}
	if prm.Resource != stack.Resource {
		t.Errorf("PRM resource = %q, want the endpoint %q", prm.Resource, stack.Resource)
	}
	if !slices.Equal(prm.AuthorizationServers, []string{stack.Issuer}) {
		t.Errorf("PRM authorization_servers = %v, want [%s]", prm.AuthorizationServers, stack.Issuer)
	}
	if !slices.Contains(prm.ScopesSupported, "mcp:tools") {
		t.Errorf("PRM scopes_supported = %v, want mcp:tools in it", prm.ScopesSupported)
	}
}

// TestFlow is the demo's walkthrough as assertions, in order, with one
// client session.
func TestFlow(t *testing.T) {
	ctx := testContext(t)
	rec := newRecorder()
	subject := stack.AS.Options().Subject
	c := connect(t, ctx, rec)

	t.Run("connect", func(t *testing.T) {
		exs := rec.since(0)
		first := challenges(exs, http.StatusUnauthorized, "")
		if len(first) != 1 {
			t.Fatalf("%d plain 401 challenges, want 1: %+v", len(first), exs)
		}
		if got := first[0].Challenge["resource_metadata"]; got != stack.PRMURL {
			t.Errorf("401 resource_metadata = %q, want %q", got, stack.PRMURL)
		}
		if n := tokensIssued(exs); n != 1 {
			t.Errorf("%d tokens issued while connecting, want 1", n)
		}
		tok, _ := c.auth.AccessToken(ctx)
		hdr, err := jwtHeader(tok)
		if err != nil {
			t.Fatal(err)
		}
		if hdr["typ"] != "at+jwt" {
			t.Errorf("token typ = %v, want at+jwt (RFC 9068)", hdr["typ"])
		}
		cl := c.claims(ctx)
		if !slices.Equal(cl.Audiences(), []string{stack.Resource}) {
			t.Errorf("token aud = %v, want [%s]", cl.Audiences(), stack.Resource)
		}
		if cl.Issuer != stack.Issuer || cl.Subject != subject {
			t.Errorf("token iss, sub = %q, %q; want %q, %q", cl.Issuer, cl.Subject, stack.Issuer, subject)
		}
		if cl.Scope != "mcp:tools" {
			t.Errorf("token scope = %q, want mcp:tools (the challenge's scope)", cl.Scope)
		}
	})

	t.Run("tools/list", func(t *testing.T) {
		res, err := c.cs.ListTools(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, tool := range res.Tools {
			names = append(names, tool.Name)
		}
		for _, want := range []string{"whoami", "search", "add", "delete_note", "deploy", "countdown"} {
			if !slices.Contains(names, want) {
				t.Errorf("tools/list = %v, lacks %s", names, want)
			}
		}
	})

	t.Run("whoami", func(t *testing.T) {
		if got := c.call(ctx, &mcp.CallToolParams{Name: "whoami"}); got != subject {
			t.Errorf("whoami = %q, want devas's subject %q", got, subject)
		}
	})

	t.Run("search", func(t *testing.T) {
		var out demomcp.SearchOutput
		text := c.call(ctx, &mcp.CallToolParams{Name: "search", Arguments: map[string]any{"query": "caddy"}})
		if err := json.Unmarshal([]byte(text), &out); err != nil || len(out.Results) != 3 {
			t.Errorf("search = %s (%v)", text, err)
		}
	})

	t.Run("delete_note step-up", func(t *testing.T) {
		mark := rec.mark()
		var out demomcp.DeleteNoteOutput
		text := c.call(ctx, &mcp.CallToolParams{Name: "delete_note", Arguments: map[string]any{"id": "n1"}})
		if err := json.Unmarshal([]byte(text), &out); err != nil || !out.Deleted || out.DeletedBy != subject {
			t.Errorf("delete_note = %s (%v)", text, err)
		}
		exs := rec.since(mark)
		if n := len(challenges(exs, http.StatusForbidden, "insufficient_scope")); n != 1 {
			t.Errorf("%d 403 insufficient_scope, want exactly 1", n)
		}
		if n := len(anyChallenge(exs)); n != 1 {
			t.Errorf("%d challenges in all, want 1: %+v", n, anyChallenge(exs))
		}
		if n := tokensIssued(exs); n != 1 {
			t.Errorf("%d tokens issued, want 1", n)
		}
		if sc := strings.Fields(c.claims(ctx).Scope); !slices.Contains(sc, "mcp:admin") || !slices.Contains(sc, "mcp:tools") {
			t.Errorf("scope after step-up = %v, want mcp:tools and mcp:admin", sc)
		}
	})

	t.Run("whoami after step-up", func(t *testing.T) {
		mark := rec.mark()
		if got := c.call(ctx, &mcp.CallToolParams{Name: "whoami"}); got != subject {
			t.Errorf("whoami = %q, want %q", got, subject)
		}
		if exs := rec.since(mark); len(anyChallenge(exs)) != 0 || tokensIssued(exs) != 0 {
			t.Errorf("whoami after step-up needed a new token: %+v", exs)
		}
	})

	t.Run("deploy acr step-up", func(t *testing.T) {
		mark := rec.mark()
		var out demomcp.DeployOutput
		text := c.call(ctx, &mcp.CallToolParams{Name: "deploy", Arguments: map[string]any{"service": "api"}})
		if err := json.Unmarshal([]byte(text), &out); err != nil || out.Status != "deployed" || out.DeployedBy != subject {
			t.Errorf("deploy = %s (%v)", text, err)
		}
		exs := rec.since(mark)
		ch := challenges(exs, http.StatusUnauthorized, "insufficient_user_authentication")
		if len(ch) != 1 {
			t.Fatalf("%d 401 insufficient_user_authentication, want exactly 1: %+v", len(ch), exs)
		}
		if got := ch[0].Challenge["acr_values"]; got != "urn:demo:mfa" {
			t.Errorf("acr_values = %q, want urn:demo:mfa", got)
		}
		if got := ch[0].Challenge["max_age"]; got != "600" {
			t.Errorf("max_age = %q, want 600 (max_age 10m)", got)
		}
		if got := ch[0].Challenge["resource_metadata"]; got != stack.PRMURL {
			t.Errorf("resource_metadata = %q, want %q", got, stack.PRMURL)
		}
		if n := len(anyChallenge(exs)); n != 1 {
			t.Errorf("%d challenges in all, want 1", n)
		}
		if n := tokensIssued(exs); n != 1 {
			t.Errorf("%d tokens issued, want 1", n)
		}
		cl := c.claims(ctx)
		if cl.ACR != "urn:demo:mfa" {
			t.Errorf("acr after step-up = %q, want urn:demo:mfa", cl.ACR)
		}
		if time.Since(time.Unix(cl.AuthTime, 0)) > time.Minute {
			t.Errorf("auth_time %d is not fresh (max_age)", cl.AuthTime)
		}
		// The earlier grant is kept: delete_note needs no new token.
		mark = rec.mark()
		c.call(ctx, &mcp.CallToolParams{Name: "delete_note", Arguments: map[string]any{"id": "n2"}})
		if exs := rec.since(mark); len(anyChallenge(exs)) != 0 {
			t.Errorf("delete_note after the acr step-up was challenged: %+v", anyChallenge(exs))
		}
	})

	t.Run("countdown streams", func(t *testing.T) {
		const n = 5
		evMark := len(rec.events())
		params := &mcp.CallToolParams{Name: "countdown", Arguments: map[string]any{"n": n}}
		params.SetProgressToken("cd")
		start := time.Now()
		var out demomcp.CountdownOutput
		text := c.call(ctx, params)
		if err := json.Unmarshal([]byte(text), &out); err != nil || out.Sent != n {
			t.Fatalf("countdown = %s (%v)", text, err)
		}
		// On the wire: n progress notifications, then the result, each
		// when the server sent it.
		evs := rec.events()[evMark:]
		var progress []time.Time
		var result time.Time
		for _, e := range evs {
			switch {
			case e.Method == "notifications/progress":
				if !result.IsZero() {
					t.Errorf("a progress notification arrived after the result")
				}
				progress = append(progress, e.At)
			case e.Result:
				result = e.At
			}
		}
		if len(progress) != n || result.IsZero() {
			t.Fatalf("SSE events: %d progress notifications and result %v, want %d and a result", len(progress), !result.IsZero(), n)
		}
		// The server pauses between notifications; a buffering proxy would
		// deliver them all at once, with the result.
		if gap := result.Sub(progress[0]); gap < time.Duration(n-2)*progressInterval {
			t.Errorf("first notification arrived only %v before the result (server sends one every %v): the stream is buffered", gap, progressInterval)
		}
		t.Logf("first notification after %v, result after %v", progress[0].Sub(start), result.Sub(start))
		// And the SDK delivered every one of them.
		timeout := time.After(2 * time.Second)
		for i := range n {
			select {
			case p := <-c.progress:
				if p.ProgressToken != "cd" || p.Progress != float64(i+1) {
					t.Errorf("notification %d: token %v progress %v", i, p.ProgressToken, p.Progress)
				}
			case <-timeout:
				t.Fatalf("the client handler got %d of %d notifications", i, n)
			}
		}
	})

	t.Run("tokens never reach the backend", func(t *testing.T) {
		reqs := stack.BackendRequests()
		if len(reqs) == 0 {
			t.Fatal("no request reached the MCP server")
		}
		for _, r := range reqs {
			if r.Authorization != "" {
				t.Errorf("%s %s reached the MCP server with an Authorization header", r.Method, r.Path)
			}
			if r.User != subject {
				t.Errorf("%s %s reached the MCP server with X-User %q, want %q", r.Method, r.Path, r.User, subject)
			}
			if backend, _ := url.Parse(stack.Backend); r.Host != backend.Host {
				t.Errorf("%s %s reached the MCP server with Host %q, want its own address", r.Method, r.Path, r.Host)
			}
		}
	})
}

// TestClientCannotSetXUser: the gateway replaces an X-User header sent by
// the client with the token's subject.
func TestClientCannotSetXUser(t *testing.T) {
	ctx := testContext(t)
	rec := newRecorder()
	rec.inject = http.Header{"X-User": {"mallory"}}
	c := connect(t, ctx, rec)
	if got, want := c.call(ctx, &mcp.CallToolParams{Name: "whoami"}), stack.AS.Options().Subject; got != want {
		t.Errorf("whoami with a forged X-User = %q, want %q", got, want)
	}
}

// TestTokenForAnotherResource: a token the same AS issued for another
// resource (RFC 8707) is refused.
func TestTokenForAnotherResource(t *testing.T) {
	ctx := testContext(t)
	other := stack.Gateway + "/other-mcp"
	tok := mintToken(t, ctx, other, "mcp:tools mcp:admin")
	cl, err := sdkclient.DecodeClaims(tok)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(cl.Audiences(), []string{other}) {
		t.Fatalf("minted token aud = %v, want [%s]", cl.Audiences(), other)
	}

	before := len(stack.BackendRequests())
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, stack.Resource,
		strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"e2e","version":"0"}}}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("token for %s: status %d, want 401", other, resp.StatusCode)
	}
	cs, err := oauthex.ParseWWWAuthenticate(resp.Header.Values("WWW-Authenticate"))
	if err != nil || len(cs) == 0 {
		t.Fatalf("WWW-Authenticate %q: %v", resp.Header.Values("WWW-Authenticate"), err)
	}
	if got := cs[0].Params["error"]; got != "invalid_token" {
		t.Errorf("error = %q, want invalid_token", got)
	}
	if got := cs[0].Params["resource_metadata"]; got != stack.PRMURL {
		t.Errorf("resource_metadata = %q, want %q", got, stack.PRMURL)
	}
	if len(stack.BackendRequests()) != before {
		t.Error("the request reached the MCP server")
	}
}

// mintToken gets a token from devas for resource, by hand: dynamic
// registration, authorization with PKCE, code exchange.
func mintToken(t *testing.T, ctx context.Context, resource, scope string) string {
	t.Helper()
	const redirect = "http://127.0.0.1/e2e/callback"
	post := func(path, ctype, body string, out any) {
		t.Helper()
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, stack.Issuer+path, strings.NewReader(body))
		req.Header.Set("Content-Type", ctype)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode/100 != 2 {
			t.Fatalf("POST %s: %s: %s", path, resp.Status, b)
		}
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("POST %s: %v", path, err)
		}
	}

	var reg struct {
		ClientID string `json:"client_id"`
	}
	post("/register", "application/json", fmt.Sprintf(`{"redirect_uris":[%q],"token_endpoint_auth_method":"none","grant_types":["authorization_code"],"response_types":["code"],"client_name":"e2e other resource"}`, redirect), &reg)

	verifier := rand.Text() + rand.Text()
	sum := sha256.Sum256([]byte(verifier))
	q := url.Values{
		"response_type":         {"code"},
		"client_id":             {reg.ClientID},
		"redirect_uri":          {redirect},
		"scope":                 {scope},
		"state":                 {"st"},
		"code_challenge":        {base64.RawURLEncoding.EncodeToString(sum[:])},
		"code_challenge_method": {"S256"},
		"resource":              {resource},
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, stack.Issuer+"/authorize?"+q.Encode(), nil)
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noRedirect.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || resp.StatusCode != http.StatusFound || loc.Query().Get("code") == "" {
		t.Fatalf("authorize: %s, Location %q", resp.Status, resp.Header.Get("Location"))
	}

	var tok struct {
		AccessToken string `json:"access_token"`
	}
	post("/token", "application/x-www-form-urlencoded", url.Values{
		"grant_type":    {"authorization_code"},
		"code":          {loc.Query().Get("code")},
		"redirect_uri":  {redirect},
		"client_id":     {reg.ClientID},
		"code_verifier": {verifier},
		"resource":      {resource},
	}.Encode(), &tok)
	if tok.AccessToken == "" {
		t.Fatal("no access_token")
	}
	return tok.AccessToken
}

func jwtHeader(tok string) (map[string]any, error) {
	h, _, ok := strings.Cut(tok, ".")
	if !ok {
		return nil, fmt.Errorf("not a JWT")
	}
	b, err := base64.RawURLEncoding.DecodeString(h)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	return m, json.Unmarshal(b, &m)
}
