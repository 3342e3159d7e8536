// Command demo shows caddy-mcp-auth end to end, in one process:
//
//	go run ./cmd/demo                    # walk through the OAuth flow, exit 0 if all went as expected
//	go run ./cmd/demo -serve             # ... then keep running, for the MCP Inspector
//	go run ./cmd/demo -serve -skip-walkthrough
//
// It starts, on 127.0.0.1 ports chosen at start:
//
//   - a DEVELOPMENT-ONLY OAuth 2.1 authorization server (internal/devas)
//     that approves every request without login or consent;
//   - the sample MCP server (internal/demomcp, the official Go SDK);
//   - Caddy with mcp_auth in front of it, configured from Caddyfile.demo;
//
// and then connects the official Go SDK client through Caddy, printing every
// HTTP exchange of the flow with the spec section behind it.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/mcpauth/caddy-mcp-auth/internal/demostack"
)

func main() {
	os.Exit(run())
}

func run() int {
	serve := flag.Bool("serve", false, "keep running after the walkthrough, for the MCP Inspector or other clients (Ctrl-C stops)")
	skip := flag.Bool("skip-walkthrough", false, "with -serve: start the servers without running the walkthrough")
	caddyfile := flag.String("caddyfile", "", "gateway configuration (default: "+demostack.CaddyfileName+" in this directory or a parent)")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: go run ./cmd/demo [-serve [-skip-walkthrough]] [-caddyfile path]\n\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() > 0 {
		flag.Usage()
		return 2
	}
	if *skip && !*serve {
		fmt.Fprintln(os.Stderr, "demo: -skip-walkthrough only makes sense with -serve")
		return 2
	}

	// Libraries that log through the default logger (zitadel/oidc lists its
	// routes at info level) would clutter the walkthrough.
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	out := os.Stdout
	began := time.Now()

	fmt.Fprintln(out, "caddy-mcp-auth demo: an MCP server made an OAuth 2.1 protected resource by Caddy")
	fmt.Fprintln(out)
	st, err := demostack.Start(ctx, demostack.Options{Caddyfile: *caddyfile, Banner: out})
	if err != nil {
		fmt.Fprintf(os.Stderr, "demo: %v\n", err)
		return 2
	}
	defer func() {
		if err := st.Close(); err != nil {
			fmt.Fprintf(os.Stderr, "demo: shutting down: %v\n", err)
		}
	}()
	for _, w := range st.Warnings {
		fmt.Fprintf(out, "Caddyfile warning: %s\n", w)
	}
	printServers(out, st)

	if !*skip {
		if err := runWalkthrough(ctx, out, st); err != nil {
			if ctx.Err() != nil {
				fmt.Fprintln(out, "\ninterrupted")
				return 130
			}
			fmt.Fprintf(out, "\nFAILED: %v\n", err)
			fmt.Fprintf(os.Stderr, "demo: %v\n", err)
			return 1
		}
		fmt.Fprintf(out, "\nall steps passed in %s\n", time.Since(began).Round(time.Millisecond))
	}
	if !*serve {
		return 0
	}

	printServe(out, st)
	<-ctx.Done()
	fmt.Fprintln(out, "\nstopping…")
	return 0
}

func printServers(out io.Writer, st *demostack.Stack) {
	fmt.Fprintf(out, `
  authorization server  %s   DEVELOPMENT ONLY: auto-approves everything, never expose it
  MCP server (backend)  %s   official Go SDK, knows nothing about OAuth
  gateway (Caddy)       %s   mcp_auth + reverse_proxy, from %s
`, st.Issuer, st.Backend, st.Resource, relPath(st.Caddyfile))
}

func printServe(out io.Writer, st *demostack.Stack) {
	fmt.Fprintf(out, `
The gateway keeps running. Point the MCP Inspector at it:

    npx @modelcontextprotocol/inspector

  In the web UI it opens (http://localhost:6274) choose transport
  "Streamable HTTP", enter the URL

    %s

  and Connect. Use 127.0.0.1, not localhost: the URL must be the resource
  the gateway protects. The Inspector then runs the same OAuth flow as the
  walkthrough; the development AS approves it at once (no login page).

  The current Inspector (v2) sends its MCP and OAuth requests from its local
  backend, not from the browser, so no Origin header reaches the gateway.
  The v1 Inspector (npx @modelcontextprotocol/inspector@v1-latest) does the
  same "Via Proxy"; with "Direct" the browser calls the gateway itself, which
  is why Caddyfile.demo allows the origins http://localhost:6274 and
  http://127.0.0.1:6274 (CORS; the AS answers CORS requests too).

  Or from a terminal, with the Inspector's CLI:

    npx @modelcontextprotocol/inspector --cli %s --transport http --method tools/list

Any MCP client with OAuth support works the same way. Press Ctrl-C to stop.
`, st.Resource, st.Resource)
}

// relPath shows a path relative to the working directory when it is inside.
func relPath(p string) string {
	wd, err := os.Getwd()
	if err != nil {
		return p
	}
	if r, ok := strings.CutPrefix(p, wd+string(os.PathSeparator)); ok {
		return r
	}
	return p
}
