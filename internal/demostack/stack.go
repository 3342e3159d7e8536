// Package demostack starts the caddy-mcp-auth demo: the development
// authorization server (internal/devas), the sample MCP server
// (internal/demomcp) and an in-process Caddy configured from Caddyfile.demo,
// all on 127.0.0.1. cmd/demo and the end-to-end tests (e2e) share it, so the
// tests exercise exactly what the demo shows.
//
// Caddy is a process-wide singleton: only one Stack can run at a time.
package demostack

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"

	// Caddy's standard modules (reverse_proxy, ...) and the caddyfile adapter.
	_ "github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	_ "github.com/caddyserver/caddy/v2/modules/standard"

	// The mcp_auth handler and Caddyfile directive.
	_ "github.com/mcpauth/caddy-mcp-auth"

	"github.com/mcpauth/caddy-mcp-auth/internal/demomcp"
	"github.com/mcpauth/caddy-mcp-auth/internal/devas"
)

// CaddyfileName is the gateway configuration at the repository root.
const CaddyfileName = "Caddyfile.demo"

// Environment variables read by Caddyfile.demo ({$NAME} placeholders,
// substituted when the Caddyfile is adapted).
const (
	EnvGatewayPort = "DEMO_GATEWAY_PORT" // port of the gateway
	EnvIssuer      = "DEMO_ISSUER"       // http://127.0.0.1:<port> of devas
	EnvBackend     = "DEMO_BACKEND"      // 127.0.0.1:<port> of the MCP server
)

// What the demo's authorization server offers; Caddyfile.demo asks for these.
var (
	Scopes    = []string{"mcp:tools", "mcp:admin"}
	ACRValues = []string{devas.DefaultACR, devas.DefaultStrongACR} // urn:demo:pwd, urn:demo:mfa
)

// MCPPath is where the MCP server is mounted, on the backend and the gateway.
const MCPPath = "/mcp"

// startTimeout bounds every wait during Start.
const startTimeout = 10 * time.Second

// Options configures Start. The zero value is usable.
type Options struct {
	// Caddyfile is the path of the gateway configuration. Default: the
	// first Caddyfile.demo found in the working directory or its parents.
	Caddyfile string

	// Banner receives devas's loud development-only warning. Default
	// os.Stderr; io.Discard silences it.
	Banner io.Writer

	// Logger receives the logs of devas and the MCP server. Default: none.
	Logger *slog.Logger

	// ProgressInterval is the pause between countdown notifications of the
	// MCP server. Default 50ms.
	ProgressInterval time.Duration
}

// BackendRequest is what the MCP server behind the gateway received.
type BackendRequest struct {
	Method string
	Path   string
	Host   string
	// User is the X-User header the gateway set.
	User string
	// Authorization is the Authorization header that reached the backend;
	// mcp_auth removes it, so it must be empty.
	Authorization string
}

// Stack is a running demo.
type Stack struct {
	// AS is the development authorization server.
	AS *devas.Server
	// Issuer is the AS's issuer URL, http://127.0.0.1:<port>.
	Issuer string
	// Backend is the MCP server's own endpoint, http://127.0.0.1:<port>/mcp,
	// reachable without a token: only the gateway should use it.
	Backend string
	// Gateway is Caddy's origin, http://127.0.0.1:<port>.
	Gateway string
	// Resource is the protected MCP endpoint, Gateway + "/mcp".
	Resource string
	// PRMURL is the resource's RFC 9728 metadata URL.
	PRMURL string
	// Caddyfile is the path of the configuration Caddy runs.
	Caddyfile string
	// CaddyJSON is the adapted configuration.
	CaddyJSON []byte
	// Warnings are the Caddyfile adapter's warnings.
	Warnings []caddyconfig.Warning

	backendSrv *http.Server

	mu   sync.Mutex
	seen []BackendRequest

	closeOnce sync.Once
	closeErr  error
}

// running guards the Caddy singleton.
var running sync.Mutex

// Start starts the authorization server, the MCP server and Caddy. Close
// stops them.
func Start(ctx context.Context, opts Options) (st *Stack, err error) {
	if !running.TryLock() {
		return nil, errors.New("demostack: a stack is already running in this process (Caddy is a process-wide singleton)")
	}
	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()

	st = &Stack{}
	defer func() {
		if err != nil {
			st.shutdown(false)
			running.Unlock()
			st = nil
		}
	}()

	if st.Caddyfile = opts.Caddyfile; st.Caddyfile == "" {
		if st.Caddyfile, err = FindCaddyfile(); err != nil {
			return st, err
		}
	}
	body, err := os.ReadFile(st.Caddyfile)
	if err != nil {
		return st, fmt.Errorf("demostack: %w", err)
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}

	// 1. The development authorization server.
	st.AS, err = devas.New(devas.Options{
		Scopes:    Scopes,
		ACRValues: ACRValues,
		Logger:    logger,
		Banner:    opts.Banner,
	})
	if err != nil {
		return st, err
	}
	if st.Issuer, err = st.AS.Start("127.0.0.1:0"); err != nil {
		return st, err
	}

	// 2. The MCP server, with its DNS-rebinding protection on.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return st, fmt.Errorf("demostack: backend: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle(MCPPath, st.record(demomcp.NewHandler(demomcp.Options{
		ProgressInterval: opts.ProgressInterval,
		Logger:           logger,
	})))
	st.backendSrv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go st.backendSrv.Serve(ln)
	backendAddr := ln.Addr().String()
	st.Backend = "http://" + backendAddr + MCPPath

	// 3. Caddy, from the Caddyfile as a user would run it. The gateway port
	// is picked before Caddy binds it; on the rare collision, try another.
	if err := os.Setenv(EnvIssuer, st.Issuer); err != nil {
		return st, err
	}
	if err := os.Setenv(EnvBackend, backendAddr); err != nil {
		return st, err
	}
	for attempt := 1; ; attempt++ {
		port, perr := freePort()
		if perr != nil {
			return st, perr
		}
		err = st.loadCaddy(body, port)
		if err == nil {
			break
		}
		if attempt == 3 || !strings.Contains(err.Error(), "address already in use") {
			return st, err
		}
	}
	if err := st.waitReady(ctx); err != nil {
		return st, err
	}
	return st, nil
}

// loadCaddy adapts the Caddyfile with the gateway port set and loads it.
func (st *Stack) loadCaddy(body []byte, port int) error {
	if err := os.Setenv(EnvGatewayPort, strconv.Itoa(port)); err != nil {
		return err
	}
	adapter := caddyconfig.GetAdapter("caddyfile")
	if adapter == nil {
		return errors.New("demostack: the caddyfile adapter is not registered")
	}
	cfg, warnings, err := adapter.Adapt(body, map[string]any{"filename": st.Caddyfile})
	if err != nil {
		return fmt.Errorf("demostack: adapting %s: %w", st.Caddyfile, err)
	}
	st.Warnings, st.CaddyJSON = warnings, cfg
	if err := caddy.Load(cfg, true); err != nil {
		return fmt.Errorf("demostack: starting Caddy: %w", err)
	}
	st.Gateway = "http://127.0.0.1:" + strconv.Itoa(port)
	st.Resource = st.Gateway + MCPPath
	st.PRMURL = st.Gateway + "/.well-known/oauth-protected-resource" + MCPPath
	return nil
}

// waitReady waits until the gateway serves its metadata.
func (st *Stack) waitReady(ctx context.Context) error {
	hc := &http.Client{Timeout: 2 * time.Second}
	var last error
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, st.PRMURL, nil)
		if err != nil {
			return err
		}
		resp, err := hc.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("GET %s: %s", st.PRMURL, resp.Status)
		}
		last = err
		select {
		case <-ctx.Done():
			return fmt.Errorf("demostack: gateway not ready: %v", last)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// record wraps the MCP server to remember what reached it.
func (st *Stack) record(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		st.mu.Lock()
		if len(st.seen) < 10000 {
			st.seen = append(st.seen, BackendRequest{
				Method:        r.Method,
				Path:          r.URL.Path,
				Host:          r.Host,
				User:          r.Header.Get(demomcp.UserHeader),
				Authorization: r.Header.Get("Authorization"),
			})
		}
		st.mu.Unlock()
		next.ServeHTTP(w, r)
	})
}

// BackendRequests returns the requests the MCP server received so far.
func (st *Stack) BackendRequests() []BackendRequest {
	st.mu.Lock()
	defer st.mu.Unlock()
	return append([]BackendRequest(nil), st.seen...)
}

// Close stops Caddy, the MCP server and the authorization server.
func (st *Stack) Close() error {
	st.closeOnce.Do(func() {
		st.closeErr = st.shutdown(true)
		running.Unlock()
	})
	return st.closeErr
}

func (st *Stack) shutdown(caddyLoaded bool) error {
	var errs []error
	if caddyLoaded || st.Gateway != "" {
		if err := caddy.Stop(); err != nil {
			errs = append(errs, fmt.Errorf("stopping Caddy: %w", err))
		}
	}
	if st.backendSrv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		if err := st.backendSrv.Shutdown(ctx); err != nil {
			st.backendSrv.Close()
		}
		cancel()
	}
	if st.AS != nil {
		if err := st.AS.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// FindCaddyfile looks for Caddyfile.demo in the working directory and its
// parents, so the demo and the tests work from anywhere in the repository.
func FindCaddyfile() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		p := filepath.Join(dir, CaddyfileName)
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("demostack: %s not found in the working directory or its parents; run from the caddy-mcp-auth repository", CaddyfileName)
		}
		dir = parent
	}
}

// freePort asks the kernel for a free loopback port.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}
