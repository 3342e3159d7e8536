// Package devas is a DEVELOPMENT-ONLY OAuth 2.1 authorization server for the
// caddy-mcp-auth demo and tests.
//
// It is built on the OpenID Provider framework of github.com/zitadel/oidc/v3
// (package op): this package only supplies an in-memory op.Storage, a few
// overrides of op.LegacyServer and the pieces zitadel does not have
// (RFC 7591 dynamic client registration, RFC 8707 resource indicators and
// RFC 9068 "at+jwt" access tokens).
//
// What it does:
//
//   - RFC 8414 metadata at /.well-known/oauth-authorization-server and OIDC
//     discovery at /.well-known/openid-configuration (same document).
//   - RFC 7591 dynamic registration of public clients (token_endpoint_auth_method
//     "none", loopback redirect URIs) at /register.
//   - Authorization code grant with mandatory PKCE S256 at /authorize and
//     /token. There is no login page and no consent screen: every
//     authorization request is approved at once for one fixed user.
//   - The RFC 8707 "resource" parameter becomes the access token's "aud".
//   - Access tokens are RS256 JWTs with the header typ "at+jwt" (RFC 9068),
//     verifiable with the JWKS at /jwks.
//   - Refresh tokens (rotated on every use) that keep the resource and can
//     narrow the scope.
//   - Knobs for RFC 9470 step-up tests: acr_values, max_age, prompt=login and a
//     settable login time.
//
// NEVER expose it to anything but the loopback interface: anybody who can
// reach it gets tokens for the demo user.
package devas

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// Defaults used when the corresponding Options field is empty.
const (
	DefaultSubject       = "demo-user"
	DefaultACR           = "urn:demo:pwd"
	DefaultStrongACR     = "urn:demo:mfa"
	DefaultResource      = "urn:devas:default-resource"
	DefaultTokenLifetime = 5 * time.Minute
	DefaultRefreshLife   = 24 * time.Hour
)

// Paths served by the server, relative to the issuer.
const (
	PathAuthorize    = "/authorize"
	PathToken        = "/token"
	PathRegister     = "/register"
	PathJWKS         = "/jwks"
	PathUserinfo     = "/userinfo"
	PathRevoke       = "/revoke"
	PathEndSession   = "/end_session"
	PathASMetadata   = "/.well-known/oauth-authorization-server"
	PathOIDCMetadata = "/.well-known/openid-configuration"
)

// Options configures a Server. The zero value is usable.
type Options struct {
	// Issuer overrides the issuer URL. It must be an http(s) URL without a
	// path. When empty, Start sets it to http://127.0.0.1:<port>; a Server
	// that is never started (for example one served by httptest) derives it
	// from the Host header of each request, which for httptest is
	// http://127.0.0.1:<port> as well.
	Issuer string

	// Subject is the "sub" of the one dev user. Default "demo-user".
	Subject string

	// Scopes are the scopes clients may ask for. A request for any other
	// scope fails with invalid_scope. "openid" and "offline_access" are
	// always allowed in addition. Default ["mcp:tools", "mcp:admin"].
	Scopes []string

	// DefaultScopes are granted when an authorization request has no scope
	// parameter. Default: the first entry of Scopes.
	DefaultScopes []string

	// DefaultResource is the access token audience used when neither the
	// authorization request nor the token request carries an RFC 8707
	// resource parameter. Default DefaultResource.
	DefaultResource string

	// ACRValues are the authentication context classes the dev user can
	// "achieve". An authorization request with acr_values gets the first of
	// its values that is listed here, otherwise DefaultACR.
	// Default [DefaultACR, DefaultStrongACR].
	ACRValues []string

	// DefaultACR is the acr of tokens whose request had no (satisfiable)
	// acr_values. Default "urn:demo:pwd".
	DefaultACR string

	// TokenLifetime is the access token lifetime. Default 5m.
	TokenLifetime time.Duration

	// RefreshTokenLifetime is the refresh token lifetime. Default 24h.
	RefreshTokenLifetime time.Duration

	// LoginTime is when the dev user "logged in": the auth_time of tokens
	// whose authorization request had neither max_age nor prompt=login.
	// Default: the time New was called. See also Server.SetLoginTime.
	LoginTime time.Time

	// Logger receives request logs. Default slog.Default().
	Logger *slog.Logger

	// Banner receives the loud development-only warning printed by Start.
	// Default os.Stderr; use io.Discard to silence it.
	Banner io.Writer
}

// Server is the development authorization server. It is an http.Handler;
// Start additionally runs it on a loopback listener.
type Server struct {
	opts     Options
	store    *storage
	provider *op.Provider
	handler  http.Handler
	log      *slog.Logger

	issuer    atomic.Pointer[string]
	loginTime atomic.Int64 // unix seconds

	mu      sync.Mutex
	httpSrv *http.Server
}

// New builds a Server. It generates a fresh RSA signing key, so tokens of one
// Server are never accepted by another.
func New(opts Options) (*Server, error) {
	if opts.Subject == "" {
		opts.Subject = DefaultSubject
	}
	if len(opts.Scopes) == 0 {
		opts.Scopes = []string{"mcp:tools", "mcp:admin"}
	}
	if len(opts.DefaultScopes) == 0 {
		opts.DefaultScopes = opts.Scopes[:1]
	}
	if opts.DefaultResource == "" {
		opts.DefaultResource = DefaultResource
	}
	if opts.DefaultACR == "" {
		opts.DefaultACR = DefaultACR
	}
	if len(opts.ACRValues) == 0 {
		opts.ACRValues = []string{DefaultACR, DefaultStrongACR}
	}
	if !slices.Contains(opts.ACRValues, opts.DefaultACR) {
		opts.ACRValues = append(slices.Clone(opts.ACRValues), opts.DefaultACR)
	}
	if opts.TokenLifetime <= 0 {
		opts.TokenLifetime = DefaultTokenLifetime
	}
	if opts.RefreshTokenLifetime <= 0 {
		opts.RefreshTokenLifetime = DefaultRefreshLife
	}
	if opts.LoginTime.IsZero() {
		opts.LoginTime = time.Now()
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Banner == nil {
		opts.Banner = os.Stderr
	}
	for _, sc := range append(slices.Clone(opts.Scopes), opts.DefaultScopes...) {
		if sc == "" || strings.ContainsAny(sc, " \"\\") {
			return nil, fmt.Errorf("devas: invalid scope %q", sc)
		}
	}
	for _, sc := range opts.DefaultScopes {
		if !slices.Contains(opts.Scopes, sc) && !isStandardScope(sc) {
			return nil, fmt.Errorf("devas: default scope %q is not in Scopes", sc)
		}
	}
	if opts.Issuer != "" {
		u, err := url.Parse(opts.Issuer)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
			(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
			return nil, fmt.Errorf("devas: Issuer %q must be an http(s) URL without path, query or fragment", opts.Issuer)
		}
		opts.Issuer = strings.TrimSuffix(opts.Issuer, "/")
	}

	keys, err := newSigningKey()
	if err != nil {
		return nil, err
	}
	s := &Server{opts: opts, log: opts.Logger}
	s.loginTime.Store(opts.LoginTime.Unix())
	if opts.Issuer != "" {
		iss := opts.Issuer
		s.issuer.Store(&iss)
	}
	s.store = newStorage(s, keys)

	config := &op.Config{
		CodeMethodS256:        true,
		GrantTypeRefreshToken: true,
		SupportedScopes:       s.supportedScopes(),
	}
	if _, err := rand.Read(config.CryptoKey[:]); err != nil {
		return nil, err
	}
	endpoints := op.Endpoints{
		Authorization: op.NewEndpoint(PathAuthorize),
		Token:         op.NewEndpoint(PathToken),
		Userinfo:      op.NewEndpoint(PathUserinfo),
		Revocation:    op.NewEndpoint(PathRevoke),
		EndSession:    op.NewEndpoint(PathEndSession),
		JwksURI:       op.NewEndpoint(PathJWKS),
	}
	provider, err := op.NewProvider(config, s.store, s.issuerFunc,
		// The issuer is http://127.0.0.1:<port>: http is only acceptable
		// because this server binds the loopback interface only.
		op.WithAllowInsecure(),
		op.WithCustomEndpoints(endpoints.Authorization, endpoints.Token, endpoints.Userinfo,
			endpoints.Revocation, endpoints.EndSession, endpoints.JwksURI),
	)
	if err != nil {
		return nil, fmt.Errorf("devas: %w", err)
	}
	s.provider = provider

	ext := &opServer{LegacyServer: op.NewLegacyServer(provider, endpoints), s: s}
	opHandler := op.RegisterLegacyServer(ext, op.AuthorizeCallbackHandler(provider))
	meta := op.RegisterMetadataServer(metadataServer{s: s})

	mux := http.NewServeMux()
	mux.HandleFunc(PathRegister, s.handleRegister)
	mux.Handle("/", opHandler)
	s.handler = op.NewIssuerInterceptor(provider.IssuerFromRequest).Handler(meta.Intercept(mux))

	s.log.Warn("devas: DEVELOPMENT-ONLY authorization server created: it approves every request for " +
		opts.Subject + " without login or consent; never expose it beyond 127.0.0.1")
	return s, nil
}

// issuerFunc is the op.NewProvider issuer callback.
func (s *Server) issuerFunc(bool) (op.IssuerFromRequest, error) {
	return func(r *http.Request) string {
		if iss := s.issuer.Load(); iss != nil {
			return *iss
		}
		return "http://" + r.Host
	}, nil
}

// ServeHTTP makes the Server an http.Handler (for httptest or a custom mux;
// it must be mounted at the root of the host).
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.handler.ServeHTTP(w, r)
}

// Start serves on a loopback listener and returns the issuer URL,
// http://127.0.0.1:<port>. addr is "host:port" where host must be empty,
// "127.0.0.1" or "localhost" (all bind 127.0.0.1) and port may be "0".
func (s *Server) Start(addr string) (issuerURL string, err error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("devas: bad address %q: %w", addr, err)
	}
	switch host {
	case "", "127.0.0.1", "localhost":
	default:
		return "", fmt.Errorf("devas: refusing to bind %q: the dev authorization server binds 127.0.0.1 only", host)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.httpSrv != nil {
		return "", errors.New("devas: already started")
	}
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", port))
	if err != nil {
		return "", fmt.Errorf("devas: %w", err)
	}
	issuerURL = "http://" + ln.Addr().String()
	if s.opts.Issuer != "" {
		issuerURL = s.opts.Issuer
	} else {
		s.issuer.Store(&issuerURL)
	}
	s.httpSrv = &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	go func(srv *http.Server) {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("devas: serve failed", "err", err)
		}
	}(s.httpSrv)
	s.printBanner(issuerURL)
	return issuerURL, nil
}

// Close stops a server started with Start. It is a no-op otherwise.
func (s *Server) Close() error {
	s.mu.Lock()
	srv := s.httpSrv
	s.mu.Unlock()
	if srv == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		return srv.Close()
	}
	return nil
}

// Issuer returns the issuer URL if it is known (Options.Issuer or after
// Start), else "".
func (s *Server) Issuer() string {
	if iss := s.issuer.Load(); iss != nil {
		return *iss
	}
	return ""
}

// TokensIssued reports how many access tokens the server has issued
// (authorization code and refresh grants together).
func (s *Server) TokensIssued() int64 { return s.store.issued.Load() }

// ClientsRegistered reports how many clients registered dynamically.
func (s *Server) ClientsRegistered() int {
	s.store.mu.Lock()
	defer s.store.mu.Unlock()
	return len(s.store.clients)
}

// SetLoginTime sets when the dev user "logged in", i.e. the auth_time of
// tokens from later authorization requests without max_age or prompt=login.
// Set it in the past to make a step-up (max_age) challenge necessary.
// Tokens from refresh grants keep the auth_time of their original grant.
func (s *Server) SetLoginTime(t time.Time) { s.loginTime.Store(t.Unix()) }

// LoginTime returns the current login time (second precision).
func (s *Server) LoginTime() time.Time { return time.Unix(s.loginTime.Load(), 0) }

// Options returns the effective options (defaults filled in).
func (s *Server) Options() Options { return s.opts }

func (s *Server) supportedScopes() []string {
	out := slices.Clone(s.opts.Scopes)
	for _, sc := range []string{oidc.ScopeOpenID, oidc.ScopeOfflineAccess} {
		if !slices.Contains(out, sc) {
			out = append(out, sc)
		}
	}
	return out
}

func (s *Server) scopeAllowed(sc string) bool {
	return slices.Contains(s.opts.Scopes, sc) || isStandardScope(sc)
}

func isStandardScope(sc string) bool {
	return sc == oidc.ScopeOpenID || sc == oidc.ScopeOfflineAccess
}

func (s *Server) printBanner(issuer string) {
	line := strings.Repeat("!", 78)
	fmt.Fprintf(s.opts.Banner, "%s\n"+
		"!!  devas: DEVELOPMENT-ONLY OAuth 2.1 authorization server at %s\n"+
		"!!  Every authorization request is approved automatically for %q,\n"+
		"!!  without login or consent. Do NOT use it for anything real.\n"+
		"%s\n", line, issuer, s.opts.Subject, line)
}
