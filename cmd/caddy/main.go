// Command caddy builds Caddy with its standard modules plus mcp_auth, so
// that `go run ./cmd/caddy run --config Caddyfile` works without xcaddy.
package main

import (
	caddycmd "github.com/caddyserver/caddy/v2/cmd"

	// Standard Caddy modules.
	_ "github.com/caddyserver/caddy/v2/modules/standard"

	// This module.
	_ "github.com/mcpauth/caddy-mcp-auth"
)

func main() {
	caddycmd.Main()
}
