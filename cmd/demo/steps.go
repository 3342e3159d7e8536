package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcpauth/caddy-mcp-auth/internal/demomcp"
	"github.com/mcpauth/caddy-mcp-auth/internal/demostack"
	"github.com/mcpauth/caddy-mcp-auth/internal/sdkclient"
)

// stepTimeout bounds each step of the walkthrough.
const stepTimeout = 15 * time.Second

// walk is the state of the walkthrough: one official Go SDK client session
// through the gateway, its OAuth handler and the tracer under both.
type walk struct {
	out  io.Writer
	st   *demostack.Stack
	tr   *tracer
	auth *sdkclient.OAuthHandler
	cs   *mcp.ClientSession

	mu       sync.Mutex // guards cs and progress
	progress func(*mcp.ProgressNotificationParams)
}

// step is one numbered part of the walkthrough. run returns a one-line
// summary of what happened, or why the step did not go as expected.
type step struct {
	name  string
	about string
	run   func(w *walk, ctx context.Context, mark int) (string, error)
}

var steps = []step{
	{"connect + tools/list", "the client knows only the URL; the gateway's 401 tells it where to get a token", (*walk).connect},
	{"tools/call whoami", "the backend learns who the caller is from the X-User header the gateway sets", (*walk).whoami},
	{"tools/call search", "an ordinary call with the same token", (*walk).search},
	{"tools/call delete_note", "the Caddyfile requires scope mcp:admin for this tool: 403, step-up, retry", (*walk).deleteNote},
	{"tools/call whoami", "the stepped-up token still works for everything else", (*walk).whoamiAgain},
	{"tools/call deploy", "the Caddyfile requires acr urn:demo:mfa (max_age 10m): 401, re-authorization with acr_values, retry", (*walk).deploy},
	{"tools/call countdown", "progress notifications stream over SSE through the gateway as they happen", (*walk).countdown},
	{"what the MCP server saw", "tokens stop at the gateway", (*walk).backendView},
}

// runWalkthrough connects the SDK client through the gateway and runs every
// step. It returns the first failure, naming the step.
func runWalkthrough(ctx context.Context, out io.Writer, st *demostack.Stack) error {
	tr := newTracer(out, st)
	hc := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	h, err := sdkclient.NewOAuthHandler(hc, "caddy-mcp-auth demo client")
	if err != nil {
		return err
	}
	w := &walk{out: out, st: st, tr: tr, auth: h}
	defer w.close()

	for i, s := range steps {
		tr.printf("\n[%d/%d] %s — %s\n", i+1, len(steps), s.name, s.about)
		summary, err := runStep(ctx, w, s, tr.mark())
		if err != nil {
			tr.printf("    ✗ %v\n", err)
			return fmt.Errorf("step %d (%s): %w", i+1, s.name, err)
		}
		tr.printf("    ✓ %s\n", summary)
	}
	tr.printf("\nclosing the session\n")
	return w.close()
}

// runStep runs a step with a timeout. A step stuck where the SDK does not
// watch the context (it waits for the standalone SSE stream's response
// headers with the connection's own context) is abandoned.
func runStep(ctx context.Context, w *walk, s step, mark int) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, stepTimeout)
	defer cancel()
	type result struct {
		summary string
		err     error
	}
	done := make(chan result, 1)
	go func() {
		summary, err := s.run(w, ctx, mark)
		done <- result{summary, err}
	}()
	select {
	case r := <-done:
		return r.summary, r.err
	case <-ctx.Done():
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return "", fmt.Errorf("no answer within %v", stepTimeout)
		}
		return "", ctx.Err()
	}
}

func (w *walk) session() *mcp.ClientSession {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.cs
}

func (w *walk) close() error {
	w.mu.Lock()
	cs := w.cs
	w.cs = nil
	w.mu.Unlock()
	if cs == nil {
		return nil
	}
	done := make(chan error, 1)
	go func() { done <- cs.Close() }()
	select {
	case err := <-done:
		return err
	case <-time.After(5 * time.Second):
		return errors.New("closing the MCP session timed out")
	}
}

func (w *walk) onProgress(_ context.Context, req *mcp.ProgressNotificationClientRequest) {
	w.mu.Lock()
	f := w.progress
	w.mu.Unlock()
	if f != nil {
		f(req.Params)
	}
}

// token returns the claims of the client's current access token.
func (w *walk) token(ctx context.Context) (*sdkclient.Claims, error) {
	tok, err := w.auth.AccessToken(ctx)
	if err != nil {
		return nil, err
	}
	if tok == "" {
		return nil, errors.New("the client has no access token")
	}
	return sdkclient.DecodeClaims(tok)
}

// call runs a tool and decodes its result text (the JSON of its output)
// into out, when out is not nil.
func (w *walk) call(ctx context.Context, params *mcp.CallToolParams, out any) (string, error) {
	cs := w.session()
	if cs == nil {
		return "", errors.New("not connected")
	}
	res, err := cs.CallTool(ctx, params)
	if err != nil {
		return "", err
	}
	var text string
	for _, c := range res.Content {
		if t, ok := c.(*mcp.TextContent); ok {
			text += t.Text
		}
	}
	if res.IsError {
		return "", fmt.Errorf("%s: tool error: %s", params.Name, text)
	}
	if out != nil {
		if err := json.Unmarshal([]byte(text), out); err != nil {
			return "", fmt.Errorf("%s: result %q: %v", params.Name, text, err)
		}
	}
	return text, nil
}

// count returns the exchanges with the gateway that got status and, if not
// empty, the challenge error code.
func count(evs []exchange, status int, code string) []exchange {
	var out []exchange
	for _, e := range evs {
		if e.Server == "gateway" && e.Status == status && (code == "" || e.Error == code) {
			out = append(out, e)
		}
	}
	return out
}

// tokensIssued counts successful token requests.
func tokensIssued(evs []exchange) int {
	n := 0
	for _, e := range evs {
		if e.Server == "AS" && e.Path == "/token" && e.Status == http.StatusOK {
			n++
		}
	}
	return n
}

// challenges counts 401 and 403 answers of the gateway.
func challenges(evs []exchange) int {
	return len(count(evs, http.StatusUnauthorized, "")) + len(count(evs, http.StatusForbidden, ""))
}

func (w *walk) connect(ctx context.Context, mark int) (string, error) {
	client := mcp.NewClient(&mcp.Implementation{Name: "caddy-mcp-auth-demo", Version: "1.0.0"},
		&mcp.ClientOptions{ProgressNotificationHandler: w.onProgress})
	cs, err := client.Connect(ctx, &mcp.StreamableClientTransport{
		Endpoint: w.st.Resource,
		// No overall timeout: the standalone SSE stream lives as long as
		// the session. The tracer's transport bounds the wait for headers.
		HTTPClient:   &http.Client{Transport: w.tr},
		OAuthHandler: w.auth,
	}, nil)
	if err != nil {
		return "", fmt.Errorf("connect: %w", err)
	}
	w.mu.Lock()
	w.cs = cs
	w.mu.Unlock()
	tools, err := cs.ListTools(ctx, nil)
	if err != nil {
		return "", fmt.Errorf("tools/list: %w", err)
	}

	evs := w.tr.since(mark)
	first := count(evs, http.StatusUnauthorized, "")
	if len(first) == 0 {
		return "", errors.New("the gateway never answered 401: is mcp_auth in front of the MCP server?")
	}
	if got := first[0].Params["resource_metadata"]; got != w.st.PRMURL {
		return "", fmt.Errorf("401 resource_metadata = %q, want %q", got, w.st.PRMURL)
	}
	if n := tokensIssued(evs); n != 1 {
		return "", fmt.Errorf("%d tokens issued, want 1", n)
	}
	c, err := w.token(ctx)
	if err != nil {
		return "", err
	}
	if !slices.Contains(c.Audiences(), w.st.Resource) {
		return "", fmt.Errorf("token aud = %v, want %s", c.Audiences(), w.st.Resource)
	}
	var names []string
	for _, t := range tools.Tools {
		names = append(names, t.Name)
	}
	for _, want := range []string{"whoami", "search", "delete_note", "deploy", "countdown"} {
		if !slices.Contains(names, want) {
			return "", fmt.Errorf("tools/list has no %s: %v", want, names)
		}
	}
	return fmt.Sprintf("%d tools: %s; token for aud=%s, scope=%q", len(names), strings.Join(names, ", "), strings.Join(c.Audiences(), ","), c.Scope), nil
}

func (w *walk) whoami(ctx context.Context, mark int) (string, error) {
	user, err := w.call(ctx, &mcp.CallToolParams{Name: "whoami"}, nil)
	if err != nil {
		return "", err
	}
	c, err := w.token(ctx)
	if err != nil {
		return "", err
	}
	if user != c.Subject || user != w.st.AS.Options().Subject {
		return "", fmt.Errorf("whoami = %q, want the token's sub %q", user, c.Subject)
	}
	if n := challenges(w.tr.since(mark)); n != 0 {
		return "", fmt.Errorf("%d unexpected challenges", n)
	}
	return fmt.Sprintf("whoami = %q: the X-User header the gateway forwarded, the token's sub", user), nil
}

func (w *walk) search(ctx context.Context, mark int) (string, error) {
	var out demomcp.SearchOutput
	if _, err := w.call(ctx, &mcp.CallToolParams{Name: "search", Arguments: map[string]any{"query": "protected resource metadata", "limit": 2}}, &out); err != nil {
		return "", err
	}
	if len(out.Results) != 2 {
		return "", fmt.Errorf("search returned %d results, want 2", len(out.Results))
	}
	if n := challenges(w.tr.since(mark)); n != 0 {
		return "", fmt.Errorf("%d unexpected challenges", n)
	}
	return fmt.Sprintf("%d results, first %q", len(out.Results), out.Results[0].Title), nil
}

func (w *walk) deleteNote(ctx context.Context, mark int) (string, error) {
	var out demomcp.DeleteNoteOutput
	if _, err := w.call(ctx, &mcp.CallToolParams{Name: "delete_note", Arguments: map[string]any{"id": "note-42"}}, &out); err != nil {
		return "", err
	}
	evs := w.tr.since(mark)
	if n := len(count(evs, http.StatusForbidden, "insufficient_scope")); n != 1 {
		return "", fmt.Errorf("%d 403 insufficient_scope challenges, want exactly 1 (is the `tool delete_note mcp:admin` rule loaded?)", n)
	}
	if n := tokensIssued(evs); n != 1 {
		return "", fmt.Errorf("%d tokens issued, want 1", n)
	}
	c, err := w.token(ctx)
	if err != nil {
		return "", err
	}
	if !slices.Contains(strings.Fields(c.Scope), "mcp:admin") {
		return "", fmt.Errorf("token scope after step-up = %q, want mcp:admin in it", c.Scope)
	}
	if !out.Deleted {
		return "", fmt.Errorf("delete_note returned %+v", out)
	}
	return fmt.Sprintf("%s deleted by %s after one step-up; the token now has scope %q", out.ID, out.DeletedBy, c.Scope), nil
}

func (w *walk) whoamiAgain(ctx context.Context, mark int) (string, error) {
	user, err := w.call(ctx, &mcp.CallToolParams{Name: "whoami"}, nil)
	if err != nil {
		return "", err
	}
	if user != w.st.AS.Options().Subject {
		return "", fmt.Errorf("whoami = %q, want %q", user, w.st.AS.Options().Subject)
	}
	evs := w.tr.since(mark)
	if n := challenges(evs); n != 0 {
		return "", fmt.Errorf("%d unexpected challenges", n)
	}
	if n := tokensIssued(evs); n != 0 {
		return "", fmt.Errorf("%d new tokens, want none", n)
	}
	return fmt.Sprintf("whoami = %q with the same token, no new challenge", user), nil
}

func (w *walk) deploy(ctx context.Context, mark int) (string, error) {
	var out demomcp.DeployOutput
	if _, err := w.call(ctx, &mcp.CallToolParams{Name: "deploy", Arguments: map[string]any{"service": "api", "environment": "staging"}}, &out); err != nil {
		return "", err
	}
	evs := w.tr.since(mark)
	ch := count(evs, http.StatusUnauthorized, "insufficient_user_authentication")
	if len(ch) != 1 {
		return "", fmt.Errorf("%d 401 insufficient_user_authentication challenges, want exactly 1 (is the `tool deploy { acr … }` rule loaded?)", len(ch))
	}
	if got := ch[0].Params["acr_values"]; !slices.Contains(strings.Fields(got), "urn:demo:mfa") {
		return "", fmt.Errorf("challenge acr_values = %q, want urn:demo:mfa", got)
	}
	if n := tokensIssued(evs); n != 1 {
		return "", fmt.Errorf("%d tokens issued, want 1", n)
	}
	c, err := w.token(ctx)
	if err != nil {
		return "", err
	}
	if c.ACR != "urn:demo:mfa" {
		return "", fmt.Errorf("token acr after step-up = %q, want urn:demo:mfa", c.ACR)
	}
	if out.Status != "deployed" {
		return "", fmt.Errorf("deploy returned %+v", out)
	}
	return fmt.Sprintf("%s %s to %s by %s; the token now has acr=%s, scope %q", out.DeploymentID, out.Status, out.Environment, out.DeployedBy, c.ACR, c.Scope), nil
}

func (w *walk) countdown(ctx context.Context, mark int) (string, error) {
	const n = 5
	start := time.Now()
	var (
		mu     sync.Mutex
		got    []time.Duration
		failed string
	)
	w.mu.Lock()
	w.progress = func(p *mcp.ProgressNotificationParams) {
		at := time.Since(start)
		mu.Lock()
		got = append(got, at)
		if p.ProgressToken != "countdown-1" {
			failed = fmt.Sprintf("progress token %v", p.ProgressToken)
		}
		mu.Unlock()
		w.tr.printf("      progress %g/%g %q at +%dms\n", p.Progress, p.Total, p.Message, at.Milliseconds())
	}
	w.mu.Unlock()
	defer func() {
		w.mu.Lock()
		w.progress = nil
		w.mu.Unlock()
	}()

	params := &mcp.CallToolParams{Name: "countdown", Arguments: map[string]any{"n": n}}
	params.SetProgressToken("countdown-1")
	var out demomcp.CountdownOutput
	if _, err := w.call(ctx, params, &out); err != nil {
		return "", err
	}
	done := time.Since(start)
	// The SDK hands notifications to the handler on its own goroutines, so
	// the last one may reach it just after CallTool has returned.
	for wait := time.Now(); ; time.Sleep(5 * time.Millisecond) {
		mu.Lock()
		k := len(got)
		mu.Unlock()
		if k >= n || time.Since(wait) > time.Second {
			break
		}
	}
	w.tr.printf("      result %q at +%dms\n", out.Message, done.Milliseconds())

	mu.Lock()
	defer mu.Unlock()
	if failed != "" {
		return "", errors.New(failed)
	}
	if len(got) != n || out.Sent != n {
		return "", fmt.Errorf("%d progress notifications arrived, the server sent %d, want %d", len(got), out.Sent, n)
	}
	// The server waits ~50ms between notifications; if the gateway
	// buffered the stream, they would all arrive together with the result.
	if spread := got[n-1] - got[0]; spread < 100*time.Millisecond {
		return "", fmt.Errorf("progress notifications arrived within %v of each other: the stream was buffered", spread)
	}
	if n := challenges(w.tr.since(mark)); n != 0 {
		return "", fmt.Errorf("%d unexpected challenges", n)
	}
	return fmt.Sprintf("%d notifications over %dms, then %q: streamed, not buffered", n, (got[n-1] - got[0]).Milliseconds(), out.Message), nil
}

func (w *walk) backendView(ctx context.Context, mark int) (string, error) {
	reqs := w.st.BackendRequests()
	users := map[string]bool{}
	for _, r := range reqs {
		if r.Authorization != "" {
			return "", fmt.Errorf("%s %s reached the MCP server with an Authorization header", r.Method, r.Path)
		}
		users[r.User] = true
	}
	if len(reqs) == 0 {
		return "", errors.New("no request reached the MCP server")
	}
	var us []string
	for u := range users {
		us = append(us, fmt.Sprintf("%q", u))
	}
	slices.Sort(us)
	return fmt.Sprintf("%d requests reached the MCP server, none with an Authorization header; X-User: %s", len(reqs), strings.Join(us, ", ")), nil
}
