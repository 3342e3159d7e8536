// Package e2e holds the end-to-end tests of caddy-mcp-auth: the official Go
// SDK client and server on either side of a real, in-process Caddy loaded
// from Caddyfile.demo, with the development authorization server, started
// the same way as `go run ./cmd/demo` (internal/demostack).
//
// Caddy is a process-wide singleton, so the tests of this package share one
// stack and never run in parallel.
package e2e
