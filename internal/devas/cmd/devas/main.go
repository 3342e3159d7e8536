// Command devas runs the DEVELOPMENT-ONLY authorization server of the
// caddy-mcp-auth demo on 127.0.0.1.
//
//	go run ./internal/devas/cmd/devas -addr 127.0.0.1:9000 -resource http://localhost:8080/mcp
package main

import (
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/mcpauth/caddy-mcp-auth/internal/devas"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:9000", "listen address (the host must be 127.0.0.1 or localhost)")
	scopes := flag.String("scopes", "mcp:tools,mcp:admin", "comma-separated scopes clients may request")
	defScopes := flag.String("default-scopes", "", "comma-separated scopes granted when a request has none (default: the first of -scopes)")
	resource := flag.String("resource", "", "audience of tokens requested without an RFC 8707 resource parameter (default "+devas.DefaultResource+")")
	acrs := flag.String("acr-values", devas.DefaultACR+","+devas.DefaultStrongACR, "comma-separated acr values the dev user can reach")
	lifetime := flag.Duration("token-lifetime", devas.DefaultTokenLifetime, "access token lifetime")
	subject := flag.String("subject", devas.DefaultSubject, "sub of the dev user")
	loginAge := flag.Duration("login-age", 0, "pretend the dev user logged in this long ago (auth_time of requests without max_age/prompt=login)")
	flag.Parse()

	srv, err := devas.New(devas.Options{
		Subject:         *subject,
		Scopes:          split(*scopes),
		DefaultScopes:   split(*defScopes),
		DefaultResource: *resource,
		ACRValues:       split(*acrs),
		TokenLifetime:   *lifetime,
		LoginTime:       time.Now().Add(-*loginAge),
	})
	if err != nil {
		log.Fatal(err)
	}
	issuer, err := srv.Start(*addr)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("issuer: %s\nmetadata: %s/.well-known/oauth-authorization-server\n", issuer, issuer)

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	<-sig
	srv.Close()
}

func split(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}
