package mcpauth

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/mcpauth/caddy-mcp-auth/internal/testissuer"
)

const benchIssuer = "https://idp.example.com"

// provisionForTest provisions a handler whose issuer keys come from a file,
// so no network is involved.
func provisionForTest(tb testing.TB, key *testissuer.Key, mod func(*Handler)) *Handler {
	tb.Helper()
	dir := tb.TempDir()
	iss := testissuer.New(key)
	jwks := iss.JWKSDocument()
	iss.Close()
	path := filepath.Join(dir, "jwks.json")
	if err := os.WriteFile(path, jwks, 0o600); err != nil {
		tb.Fatal(err)
	}
	h := &Handler{
		Resource:     "https://mcp.example.com/mcp",
		Issuers:      []*IssuerConfig{{Issuer: benchIssuer, JWKSFile: path}},
		RequireScope: []string{"mcp:read"},
	}
	if mod != nil {
		mod(h)
	}
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	tb.Cleanup(cancel)
	if err := h.Provision(ctx); err != nil {
		tb.Fatal(err)
	}
	// The test context logs at debug level; benchmarks measure with the
	// production default, where debug lines are not written.
	h.logger = zap.NewNop()
	tb.Cleanup(func() { _ = h.Cleanup() })
	return h
}

func benchToken(key *testissuer.Key) string {
	now := time.Now().Unix()
	return testissuer.Mint(testissuer.Token{Key: key, Claims: map[string]any{
		"iss": benchIssuer, "sub": "248289761001", "aud": "https://mcp.example.com/mcp", "exp": now + 3600, "iat": now,
		"client_id": "s6BhdRkqt3", "jti": "dbe39bf3a3ba4238a513f51d6e1691c4", "scope": "mcp:read mcp:write",
	}})
}

type nopWriter struct{ h http.Header }

func (w *nopWriter) Header() http.Header         { return w.h }
func (w *nopWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *nopWriter) WriteHeader(int)             {}

// BenchmarkServeHTTP runs requests through the handler with a no-op next
// handler. The request and replacer are reused, as Caddy's server reuses
// neither; so this measures the handler's own cost.
func BenchmarkServeHTTP(b *testing.B) {
	key := testissuer.NewRSA("k")
	tok := benchToken(key)
	next := caddyhttp.HandlerFunc(func(http.ResponseWriter, *http.Request) error { return nil })
	run := func(b *testing.B, h *Handler, authz string, wantErr bool) {
		req := httptest.NewRequest("POST", "https://mcp.example.com/mcp", strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"tools/list"}`))
		repl := caddy.NewReplacer()
		req = req.WithContext(context.WithValue(req.Context(), caddy.ReplacerCtxKey, repl))
		w := &nopWriter{h: http.Header{}}
		b.ReportAllocs()
		for b.Loop() {
			if authz != "" {
				req.Header["Authorization"] = []string{authz}
			}
			err := h.ServeHTTP(w, req, next)
			if (err != nil) != wantErr {
				b.Fatal(err)
			}
			clear(w.h)
		}
	}
	b.Run("cached_token", func(b *testing.B) {
		run(b, provisionForTest(b, key, nil), "Bearer "+tok, false)
	})
	b.Run("fresh_token_no_cache", func(b *testing.B) {
		zero := 0
		run(b, provisionForTest(b, key, func(h *Handler) { h.TokenCache = &zero }), "Bearer "+tok, false)
	})
	b.Run("no_token_401", func(b *testing.B) {
		// Without handle_errors the handler writes the 401 itself.
		run(b, provisionForTest(b, key, nil), "", false)
	})
	b.Run("metadata", func(b *testing.B) {
		h := provisionForTest(b, key, nil)
		req := httptest.NewRequest("GET", "https://mcp.example.com/.well-known/oauth-protected-resource/mcp", nil)
		w := &nopWriter{h: http.Header{}}
		b.ReportAllocs()
		for b.Loop() {
			if err := h.ServeHTTP(w, req, next); err != nil {
				b.Fatal(err)
			}
			clear(w.h)
		}
	})
}

// toolsCall returns a tools/call body of about size bytes.
func toolsCall(size int) []byte {
	head := `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"search","arguments":{"q":"`
	tail := `"}}}`
	pad := size - len(head) - len(tail)
	if pad < 0 {
		pad = 0
	}
	return []byte(head + strings.Repeat("a", pad) + tail)
}

// BenchmarkServeHTTPInspect is a request with a tool rule configured, so
// the body is read and inspected, with a cached token. Each iteration gives
// the request a fresh body reader (one small allocation of the benchmark).
func BenchmarkServeHTTPInspect(b *testing.B) {
	key := testissuer.NewRSA("k")
	tok := "Bearer " + benchToken(key)
	next := caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		_, err := io.Copy(io.Discard, r.Body)
		return err
	})
	for _, size := range []struct {
		name string
		n    int
	}{{"1KiB", 1 << 10}, {"64KiB", 64 << 10}, {"1MiB", 1<<20 - 64}} {
		b.Run(size.name, func(b *testing.B) {
			h := provisionForTest(b, key, func(h *Handler) {
				h.Tools = []Rule{{Patterns: []string{"delete_*"}, Scopes: []string{"mcp:admin"}}}
			})
			body := toolsCall(size.n)
			req := httptest.NewRequest("POST", "https://mcp.example.com/mcp", nil)
			repl := caddy.NewReplacer()
			req = req.WithContext(context.WithValue(req.Context(), caddy.ReplacerCtxKey, repl))
			rd := bytes.NewReader(body)
			w := &nopWriter{h: http.Header{}}
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				rd.Reset(body)
				req.Body = io.NopCloser(rd)
				req.ContentLength = int64(len(body))
				req.Header["Authorization"] = []string{tok}
				if err := h.ServeHTTP(w, req, next); err != nil {
					b.Fatal(err)
				}
				clear(w.h)
			}
		})
	}
}
