// Package demomcp is the sample MCP server of the caddy-mcp-auth demo,
// written with the official Go SDK (github.com/modelcontextprotocol/go-sdk)
// and served over the Streamable HTTP transport.
//
// It knows nothing about OAuth: the gateway in front of it authenticates the
// caller and tells it who that is in the X-User request header.
//
// Tools:
//
//	whoami       the X-User header of the request, or "anonymous"
//	search       query -> a few fake results
//	add          a + b
//	delete_note  deletes a (fake) note; the demo protects it with scope mcp:admin
//	deploy       deploys a (fake) service; the demo protects it with a stronger acr
//	countdown    sends n progress notifications ~50ms apart over SSE, then returns
package demomcp

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// UserHeader is the request header the gateway sets to the authenticated
// user; whoami returns it.
const UserHeader = "X-User"

// Anonymous is what whoami returns without a UserHeader.
const Anonymous = "anonymous"

// MaxCountdown bounds the countdown tool's n.
const MaxCountdown = 100

// Options configures NewHandler. The zero value is what Handler uses.
type Options struct {
	// DisableLocalhostProtection turns off the SDK's DNS-rebinding
	// protection. With it on (the default), a request that arrives on a
	// loopback address but carries a non-loopback Host header (e.g. a
	// reverse proxy forwarding "Host: mcp.example.com" to 127.0.0.1:port) is
	// answered 403 "Forbidden: invalid Host header". Set it when the server
	// sits behind a proxy that passes the public Host through, or make the
	// proxy send a loopback Host instead (Caddy: header_up Host {upstream_hostport}).
	DisableLocalhostProtection bool

	// Stateless serves every request without an Mcp-Session-Id session.
	Stateless bool

	// ProgressInterval is the pause between countdown notifications.
	// Default 50ms.
	ProgressInterval time.Duration

	// Logger, if set, receives the SDK's server and transport logs.
	Logger *slog.Logger
}

// Handler returns the demo MCP server as a Streamable HTTP handler with
// default options (DNS-rebinding protection on, stateful sessions). Mount it
// at any path, e.g. /mcp.
func Handler() http.Handler { return NewHandler(Options{}) }

// NewHandler returns the demo MCP server as a Streamable HTTP handler.
func NewHandler(opts Options) http.Handler {
	server := NewServer(opts)
	return mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return server },
		&mcp.StreamableHTTPOptions{
			DisableLocalhostProtection: opts.DisableLocalhostProtection,
			Stateless:                  opts.Stateless,
			Logger:                     opts.Logger,
		})
}

// NewServer returns the demo MCP server with its tools, for use with any
// transport.
func NewServer(opts Options) *mcp.Server {
	if opts.ProgressInterval <= 0 {
		opts.ProgressInterval = 50 * time.Millisecond
	}
	s := mcp.NewServer(&mcp.Implementation{Name: "demo-mcp", Title: "caddy-mcp-auth demo MCP server", Version: "1.0.0"},
		&mcp.ServerOptions{
			Instructions: "Demo server for caddy-mcp-auth. whoami shows who the gateway says you are.",
			Logger:       opts.Logger,
		})
	yes := true
	mcp.AddTool(s, &mcp.Tool{
		Name:        "whoami",
		Description: "Returns the user the gateway authenticated (the X-User header), or \"anonymous\".",
		Annotations: &mcp.ToolAnnotations{ReadOnlyHint: true, IdempotentHint: true},
	}, whoami)
	mcp.AddTool(s, &mcp.Tool{
		Name:        "search",
		Description: "Searches the (fake) demo corpus and returns a few results.",
		Annotations: &mcp.ToolAnnotations{ReadOnlyHint: true, IdempotentHint: true},
	}, search)
	mcp.AddTool(s, &mcp.Tool{
		Name:        "add",
		Description: "Adds two numbers.",
		Annotations: &mcp.ToolAnnotations{ReadOnlyHint: true, IdempotentHint: true},
	}, add)
	mcp.AddTool(s, &mcp.Tool{
		Name:        "delete_note",
		Description: "Deletes a note (fake). The demo gateway requires scope mcp:admin for it.",
		Annotations: &mcp.ToolAnnotations{DestructiveHint: &yes, IdempotentHint: true},
	}, deleteNote)
	mcp.AddTool(s, &mcp.Tool{
		Name:        "deploy",
		Description: "Deploys a service (fake). The demo gateway requires a stronger authentication (acr) for it.",
		Annotations: &mcp.ToolAnnotations{DestructiveHint: &yes},
	}, deploy)
	mcp.AddTool(s, &mcp.Tool{
		Name: "countdown",
		Description: fmt.Sprintf("Counts down from n (1..%d), sending a progress notification every %s "+
			"(pass a progress token to receive them), then returns.", MaxCountdown, opts.ProgressInterval),
		Annotations: &mcp.ToolAnnotations{ReadOnlyHint: true, IdempotentHint: true},
	}, countdown(opts.ProgressInterval))
	return s
}

// ---- whoami --------------------------------------------------------------

type WhoamiOutput struct {
	User string `json:"user" jsonschema:"the authenticated user, or anonymous"`
}

func whoami(_ context.Context, req *mcp.CallToolRequest, _ struct{}) (*mcp.CallToolResult, WhoamiOutput, error) {
	user := userOf(req)
	return text(user), WhoamiOutput{User: user}, nil
}

// userOf returns the UserHeader of the HTTP request that carried req.
func userOf(req *mcp.CallToolRequest) string {
	if req.Extra != nil && req.Extra.Header != nil {
		if u := strings.TrimSpace(req.Extra.Header.Get(UserHeader)); u != "" {
			return u
		}
	}
	return Anonymous
}

// ---- search --------------------------------------------------------------

type SearchInput struct {
	Query string `json:"query" jsonschema:"what to search for"`
	Limit int    `json:"limit,omitempty" jsonschema:"maximum number of results (1-5, default 3)"`
}

type SearchResult struct {
	Title   string `json:"title"`
	URL     string `json:"url"`
	Snippet string `json:"snippet"`
}

type SearchOutput struct {
	Query   string         `json:"query"`
	Results []SearchResult `json:"results"`
}

func search(_ context.Context, _ *mcp.CallToolRequest, in SearchInput) (*mcp.CallToolResult, SearchOutput, error) {
	q := strings.TrimSpace(in.Query)
	if q == "" {
		return nil, SearchOutput{}, fmt.Errorf("query must not be empty")
	}
	limit := in.Limit
	if limit <= 0 {
		limit = 3
	}
	limit = min(limit, 5)
	out := SearchOutput{Query: q}
	kinds := []string{"Guide", "FAQ", "Reference", "Blog post", "Changelog"}
	for i := range limit {
		sum := sha256.Sum256([]byte(fmt.Sprintf("%s#%d", q, i)))
		id := hex.EncodeToString(sum[:4])
		out.Results = append(out.Results, SearchResult{
			Title:   fmt.Sprintf("%s: %s", kinds[i], q),
			URL:     "https://docs.example.com/" + id,
			Snippet: fmt.Sprintf("Everything you wanted to know about %q (result %d of %d).", q, i+1, limit),
		})
	}
	return nil, out, nil
}

// ---- add -----------------------------------------------------------------

type AddInput struct {
	A float64 `json:"a" jsonschema:"first addend"`
	B float64 `json:"b" jsonschema:"second addend"`
}

type AddOutput struct {
	Sum float64 `json:"sum"`
}

func add(_ context.Context, _ *mcp.CallToolRequest, in AddInput) (*mcp.CallToolResult, AddOutput, error) {
	return nil, AddOutput{Sum: in.A + in.B}, nil
}

// ---- delete_note ---------------------------------------------------------

type DeleteNoteInput struct {
	ID string `json:"id" jsonschema:"ID of the note to delete"`
}

type DeleteNoteOutput struct {
	ID        string `json:"id"`
	Deleted   bool   `json:"deleted"`
	DeletedBy string `json:"deleted_by"`
}

func deleteNote(_ context.Context, req *mcp.CallToolRequest, in DeleteNoteInput) (*mcp.CallToolResult, DeleteNoteOutput, error) {
	if strings.TrimSpace(in.ID) == "" {
		return nil, DeleteNoteOutput{}, fmt.Errorf("id must not be empty")
	}
	return nil, DeleteNoteOutput{ID: in.ID, Deleted: true, DeletedBy: userOf(req)}, nil
}

// ---- deploy --------------------------------------------------------------

type DeployInput struct {
	Service     string `json:"service" jsonschema:"service to deploy"`
	Environment string `json:"environment,omitempty" jsonschema:"target environment (default production)"`
}

type DeployOutput struct {
	DeploymentID string `json:"deployment_id"`
	Service      string `json:"service"`
	Environment  string `json:"environment"`
	Status       string `json:"status"`
	DeployedBy   string `json:"deployed_by"`
}

func deploy(_ context.Context, req *mcp.CallToolRequest, in DeployInput) (*mcp.CallToolResult, DeployOutput, error) {
	if strings.TrimSpace(in.Service) == "" {
		return nil, DeployOutput{}, fmt.Errorf("service must not be empty")
	}
	env := in.Environment
	if env == "" {
		env = "production"
	}
	sum := sha256.Sum256([]byte(in.Service + "/" + env + "/" + time.Now().String()))
	return nil, DeployOutput{
		DeploymentID: "dep-" + hex.EncodeToString(sum[:4]),
		Service:      in.Service,
		Environment:  env,
		Status:       "deployed",
		DeployedBy:   userOf(req),
	}, nil
}

// ---- countdown -----------------------------------------------------------

type CountdownInput struct {
	N int `json:"n" jsonschema:"how many progress notifications to send (1-100)"`
}

type CountdownOutput struct {
	Sent    int    `json:"sent"`
	Message string `json:"message"`
}

func countdown(interval time.Duration) mcp.ToolHandlerFor[CountdownInput, CountdownOutput] {
	return func(ctx context.Context, req *mcp.CallToolRequest, in CountdownInput) (*mcp.CallToolResult, CountdownOutput, error) {
		if in.N < 1 || in.N > MaxCountdown {
			return nil, CountdownOutput{}, fmt.Errorf("n must be between 1 and %d", MaxCountdown)
		}
		token := req.Params.GetProgressToken()
		sent := 0
		for i := range in.N {
			if i > 0 {
				select {
				case <-ctx.Done():
					return nil, CountdownOutput{}, ctx.Err()
				case <-time.After(interval):
				}
			}
			// Progress notifications are only allowed for requests that
			// carry a progress token.
			if token == nil {
				continue
			}
			err := req.Session.NotifyProgress(ctx, &mcp.ProgressNotificationParams{
				ProgressToken: token,
				Progress:      float64(i + 1),
				Total:         float64(in.N),
				Message:       fmt.Sprintf("T-%d", in.N-i),
			})
			if err != nil {
				return nil, CountdownOutput{}, fmt.Errorf("sending progress: %w", err)
			}
			sent++
		}
		return nil, CountdownOutput{Sent: sent, Message: "liftoff"}, nil
	}
}

func text(s string) *mcp.CallToolResult {
	return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: s}}}
}
