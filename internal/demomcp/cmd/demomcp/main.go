// Command demomcp serves the demo MCP server (Streamable HTTP) for the
// caddy-mcp-auth demo.
//
//	go run ./internal/demomcp/cmd/demomcp -addr 127.0.0.1:9001
package main

import (
	"errors"
	"flag"
	"fmt"
	"log"
	"log/slog"
	"net/http"
	"os"
	"time"

	"github.com/mcpauth/caddy-mcp-auth/internal/demomcp"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:9001", "listen address")
	path := flag.String("path", "/mcp", "path of the MCP endpoint")
	anyHost := flag.Bool("allow-any-host", false, "disable the SDK's DNS-rebinding protection (needed when a proxy forwards a non-loopback Host to a loopback listener)")
	stateless := flag.Bool("stateless", false, "serve without Mcp-Session-Id sessions")
	verbose := flag.Bool("v", false, "log SDK activity")
	flag.Parse()

	opts := demomcp.Options{DisableLocalhostProtection: *anyHost, Stateless: *stateless}
	if *verbose {
		opts.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	mux := http.NewServeMux()
	mux.Handle(*path, demomcp.NewHandler(opts))
	fmt.Printf("demo MCP server: http://%s%s\n", *addr, *path)
	srv := &http.Server{Addr: *addr, Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Fatal(err)
	}
}
