package demomcp_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcpauth/caddy-mcp-auth/internal/demomcp"
)

// recorder is an http.RoundTripper that sets X-User (when user is non-empty)
// and remembers the Content-Type of every POST response.
type recorder struct {
	user string

	mu           sync.Mutex
	contentTypes []string
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	if r.user != "" {
		req = req.Clone(req.Context())
		req.Header.Set(demomcp.UserHeader, r.user)
	}
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err == nil && req.Method == http.MethodPost {
		r.mu.Lock()
		r.contentTypes = append(r.contentTypes, resp.Header.Get("Content-Type"))
		r.mu.Unlock()
	}
	return resp, err
}

func (r *recorder) lastContentType() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.contentTypes) == 0 {
		return ""
	}
	return r.contentTypes[len(r.contentTypes)-1]
}

func connect(t *testing.T, endpoint string, rt *recorder, opts *mcp.ClientOptions) *mcp.ClientSession {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	client := mcp.NewClient(&mcp.Implementation{Name: "demomcp-test", Version: "v0"}, opts)
	cs, err := client.Connect(ctx, &mcp.StreamableClientTransport{
		Endpoint:   endpoint,
		HTTPClient: &http.Client{Transport: rt},
	}, nil)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { cs.Close() })
	return cs
}

// call calls a tool and decodes the JSON text content into a map.
func call(t *testing.T, cs *mcp.ClientSession, params *mcp.CallToolParams) (map[string]any, *mcp.CallToolResult) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := cs.CallTool(ctx, params)
	if err != nil {
		t.Fatalf("CallTool(%s): %v", params.Name, err)
	}
	if res.IsError || len(res.Content) == 0 {
		return nil, res
	}
	var out map[string]any
	if tc, ok := res.Content[0].(*mcp.TextContent); ok {
		if err := json.Unmarshal([]byte(tc.Text), &out); err != nil {
			// whoami answers plain text.
			out = map[string]any{"text": tc.Text}
		}
	}
	return out, res
}

func TestTools(t *testing.T) {
	ts := httptest.NewServer(demomcp.Handler())
	t.Cleanup(ts.Close) // LIFO: runs after cs.Close, else the open SSE GET blocks ts.Close
	rt := &recorder{user: "alice"}
	cs := connect(t, ts.URL, rt, nil)

	tools, err := cs.ListTools(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, tool := range tools.Tools {
		names = append(names, tool.Name)
	}
	slices.Sort(names)
	if want := []string{"add", "countdown", "delete_note", "deploy", "search", "whoami"}; !slices.Equal(names, want) {
		t.Fatalf("tools = %v, want %v", names, want)
	}

	out, _ := call(t, cs, &mcp.CallToolParams{Name: "whoami"})
	if out["text"] != "alice" {
		t.Errorf("whoami = %v, want alice", out)
	}

	out, _ = call(t, cs, &mcp.CallToolParams{Name: "search", Arguments: map[string]any{"query": "oauth", "limit": 2}})
	if res, _ := out["results"].([]any); len(res) != 2 || out["query"] != "oauth" {
		t.Errorf("search = %v", out)
	}
	if _, res := call(t, cs, &mcp.CallToolParams{Name: "search", Arguments: map[string]any{"query": " "}}); !res.IsError {
		t.Error("empty search query did not fail")
	}

	out, _ = call(t, cs, &mcp.CallToolParams{Name: "add", Arguments: map[string]any{"a": 2, "b": 3.5}})
	if out["sum"] != 5.5 {
		t.Errorf("add = %v, want sum 5.5", out)
	}
	if _, res := call(t, cs, &mcp.CallToolParams{Name: "add", Arguments: map[string]any{"a": "two", "b": 3}}); !res.IsError {
		t.Error("add with a string argument did not fail")
	}

	out, _ = call(t, cs, &mcp.CallToolParams{Name: "delete_note", Arguments: map[string]any{"id": "n-42"}})
	if out["deleted"] != true || out["id"] != "n-42" || out["deleted_by"] != "alice" {
		t.Errorf("delete_note = %v", out)
	}

	out, _ = call(t, cs, &mcp.CallToolParams{Name: "deploy", Arguments: map[string]any{"service": "api"}})
	if out["status"] != "deployed" || out["environment"] != "production" || out["deployed_by"] != "alice" {
		t.Errorf("deploy = %v", out)
	}
}

func TestWhoamiAnonymous(t *testing.T) {
	ts := httptest.NewServer(demomcp.Handler())
	t.Cleanup(ts.Close)
	cs := connect(t, ts.URL, &recorder{}, nil)
	out, _ := call(t, cs, &mcp.CallToolParams{Name: "whoami"})
	if out["text"] != demomcp.Anonymous {
		t.Errorf("whoami without X-User = %v, want anonymous", out)
	}
}

func TestCountdownStreamsProgress(t *testing.T) {
	ts := httptest.NewServer(demomcp.Handler())
	t.Cleanup(ts.Close)

	type note struct {
		at       time.Time
		progress float64
		msg      string
	}
	var mu sync.Mutex
	var notes []note
	rt := &recorder{}
	cs := connect(t, ts.URL, rt, &mcp.ClientOptions{
		ProgressNotificationHandler: func(_ context.Context, req *mcp.ProgressNotificationClientRequest) {
			mu.Lock()
			defer mu.Unlock()
			notes = append(notes, note{time.Now(), req.Params.Progress, req.Params.Message})
		},
	})

	const n = 5
	params := &mcp.CallToolParams{Name: "countdown", Arguments: map[string]any{"n": n}}
	params.SetProgressToken("cd-1")
	start := time.Now()
	out, _ := call(t, cs, params)
	elapsed := time.Since(start)
	if out["sent"] != float64(n) || out["message"] != "liftoff" {
		t.Errorf("countdown = %v", out)
	}
	if ct := rt.lastContentType(); !strings.HasPrefix(ct, "text/event-stream") {
		t.Errorf("countdown response Content-Type = %q, want text/event-stream", ct)
	}
	if elapsed < (n-1)*40*time.Millisecond {
		t.Errorf("countdown took %v, want about %v", elapsed, (n-1)*50*time.Millisecond)
	}

	// The SDK client runs notification handlers asynchronously, so the last
	// one may land just after the call returns: wait for it, bounded.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		mu.Lock()
		got := len(notes)
		mu.Unlock()
		if got >= n || time.Now().After(deadline) {
			break
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(notes) != n {
		t.Fatalf("got %d progress notifications, want %d", len(notes), n)
	}
	for i, nt := range notes {
		if nt.progress != float64(i+1) {
			t.Errorf("notification %d: progress %v", i, nt.progress)
		}
	}
	// They arrived while the call was running, not all at the end.
	if spread := notes[n-1].at.Sub(notes[0].at); spread < (n-1)*30*time.Millisecond {
		t.Errorf("notifications arrived within %v, want them spread over ~%v", spread, (n-1)*50*time.Millisecond)
	}
	if _, res := call(t, cs, &mcp.CallToolParams{Name: "countdown", Arguments: map[string]any{"n": 0}}); !res.IsError {
		t.Error("countdown n=0 did not fail")
	}
}

// TestDNSRebindingProtection documents the SDK behaviour a reverse proxy
// runs into: on a loopback listener, a non-loopback Host is refused unless
// DisableLocalhostProtection is set.
func TestDNSRebindingProtection(t *testing.T) {
	initialize := `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"raw","version":"0"}}}`
	post := func(url, host string) (int, string) {
		req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(initialize))
		req.Host = host
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}

	def := httptest.NewServer(demomcp.Handler())
	defer def.Close()
	if code, body := post(def.URL, "mcp.example.com"); code != http.StatusForbidden || !strings.Contains(body, "invalid Host header") {
		t.Errorf("default handler, public Host: %d %q, want 403 invalid Host header", code, body)
	}
	if code, _ := post(def.URL, "localhost:8443"); code != http.StatusOK {
		t.Errorf("default handler, loopback Host: %d, want 200", code)
	}

	open := httptest.NewServer(demomcp.NewHandler(demomcp.Options{DisableLocalhostProtection: true}))
	defer open.Close()
	if code, body := post(open.URL, "mcp.example.com"); code != http.StatusOK {
		t.Errorf("DisableLocalhostProtection, public Host: %d %q, want 200", code, body)
	}
}

func TestStateless(t *testing.T) {
	ts := httptest.NewServer(demomcp.NewHandler(demomcp.Options{Stateless: true}))
	t.Cleanup(ts.Close)
	cs := connect(t, ts.URL, &recorder{user: "bob"}, nil)
	out, _ := call(t, cs, &mcp.CallToolParams{Name: "whoami"})
	if out["text"] != "bob" {
		t.Errorf("stateless whoami = %v", out)
	}
}
