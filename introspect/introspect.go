// Package introspect checks opaque access tokens with the authorization
// server's token introspection endpoint (RFC 7662), optionally accepting the
// signed JWT form of the answer (RFC 9701). It returns the same
// *validator.Claims and *validator.Error values as local JWT validation, so
// that the caller answers both kinds of token alike: a refused token is a
// 401 invalid_token, and an endpoint that cannot answer is a Temporary error
// (503 with Retry-After), never a 401 that would send clients into
// re-authorization loops.
//
// Answers are cached by the SHA-256 of the token (the token itself is never
// stored or logged): active answers for at most CacheTTL and never past the
// token's exp, refusals for NegativeTTL, failures not at all. Concurrent
// requests for one token share one call to the endpoint.
//
// The package has no Caddy imports.
package introspect

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"go.uber.org/zap"

	"github.com/mcpauth/caddy-mcp-auth/validator"
)

// Defaults for Config fields left zero.
const (
	DefaultCacheTTL     = 60 * time.Second
	DefaultNegativeTTL  = 5 * time.Second
	DefaultCacheEntries = 10000
	DefaultTimeout      = 10 * time.Second
	DefaultMaxResponse  = 64 << 10
	// DefaultCacheBytes bounds the memory the cache holds in answers.
	DefaultCacheBytes = 64 << 20
	// maxConcurrentCalls bounds the calls to the endpoint in flight at once
	// (distinct tokens; one token never has more than one). A flood of junk
	// tokens queues here instead of opening a connection each.
	maxConcurrentCalls = 64
	// discoveryFloor is the least time between two metadata discoveries
	// after a failed one.
	discoveryFloor = 10 * time.Second
)

// reasonInactive is the reason given for a token the endpoint says is not
// active (expired, revoked, unknown, or never issued).
const reasonInactive = validator.ReasonInactive

// Config configures one issuer's introspection.
type Config struct {
	// Issuer is the issuer identifier. An "iss" in the answer must equal it
	// byte for byte; without Endpoint, the endpoint is discovered from its
	// metadata.
	Issuer string
	// Endpoint is the introspection endpoint URL. Empty: the
	// introspection_endpoint of the issuer's metadata (RFC 8414, then OpenID
	// Connect Discovery), discovered on first use.
	Endpoint string
	// ClientID and ClientSecret authenticate the gateway to the endpoint.
	ClientID, ClientSecret string
	// ClientAuth is "basic" (client_secret_basic, the default) or "post"
	// (client_secret_post).
	ClientAuth string
	// Audiences are the accepted "aud" values; one must be in the answer.
	Audiences []string
	// AllowMissingAudience accepts answers without "aud", for authorization
	// servers that omit it. An "aud" that is present must still match.
	AllowMissingAudience bool
	// ScopeClaim is the member holding the scopes: "" means "scope" (a
	// space-delimited string); any other member may be a string or an array.
	ScopeClaim string
	// CacheTTL bounds how long an active answer is reused (never past the
	// token's exp). Default DefaultCacheTTL; negative: not cached.
	CacheTTL time.Duration
	// NegativeTTL is how long a refusal (inactive, wrong audience, ...) is
	// reused. Default DefaultNegativeTTL; negative: not cached.
	NegativeTTL time.Duration
	// CacheEntries bounds the cache. Default DefaultCacheEntries.
	CacheEntries int
	// Timeout bounds one call to the endpoint (and discovery).
	// Default DefaultTimeout.
	Timeout time.Duration
	// MaxResponse bounds the size of an answer. Default DefaultMaxResponse.
	MaxResponse int64
	// ClockSkew is the leeway for exp and nbf.
	ClockSkew time.Duration
	// Client makes the requests. Default validator.DefaultHTTPClient().
	// Redirects to another origin are refused whatever its policy.
	Client *http.Client
	// Logger receives warnings about the endpoint. Default: no-op.
	Logger *zap.Logger
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// Keys, when set, are the issuer's signing keys: the gateway then also
	// accepts signed answers (RFC 9701, application/token-introspection+jwt)
	// and verifies them with these keys.
	Keys validator.KeyProvider
}

// Introspector checks tokens with one issuer's introspection endpoint. It is
// safe for concurrent use.
type Introspector struct {
	issuer      string
	audiences   []string
	allowNoAud  bool
	scopeClaim  string
	clientID    string
	basicAuth   string // Authorization header value, "" for post
	postCreds   string // form suffix with the credentials, "" for basic
	accept      string
	cacheTTL    int64 // nanoseconds; <= 0: not cached
	negativeTTL int64
	timeout     time.Duration
	maxResponse int64
	skew        int64        // seconds
	client      *http.Client // for the introspection POST
	getClient   *http.Client // for metadata discovery
	logger      *zap.Logger
	now         func() time.Time
	keys        validator.KeyProvider

	cache *cache
	sem   chan struct{}

	mu      sync.Mutex
	flights map[[32]byte]*flight

	epMu        sync.Mutex
	endpoint    string
	discovering chan struct{}
	discErr     error
	discAt      time.Time

	calls       atomic.Int64
	failing     atomic.Bool // the endpoint failed; warned once
	credFailing atomic.Bool // the endpoint refused our credentials; logged once
}

// flight is one call to the endpoint that concurrent requests for the same
// token wait for.
type flight struct {
	done    chan struct{}
	waiters atomic.Int32
	claims  *validator.Claims
	err     error
}

// New checks cfg and returns an Introspector. It makes no request: the
// endpoint is discovered, when needed, on first use, so that a server can
// start while its authorization server is down.
func New(cfg Config) (*Introspector, error) {
	if cfg.Issuer == "" {
		return nil, errors.New("introspection: no issuer")
	}
	if cfg.Endpoint != "" {
		if err := checkEndpoint(cfg.Endpoint); err != nil {
			return nil, fmt.Errorf("introspection_endpoint: %w", err)
		}
	} else if _, err := validator.DiscoveryURLs(cfg.Issuer); err != nil {
		return nil, fmt.Errorf("introspection: no introspection_endpoint, and the issuer cannot be used for discovery: %w", err)
	}
	if cfg.ClientID == "" {
		return nil, errors.New("introspection: client_id is required")
	}
	if len(cfg.Audiences) == 0 {
		return nil, errors.New("introspection: no accepted audience")
	}
	if cfg.ClockSkew < 0 {
		return nil, errors.New("introspection: clock skew must not be negative")
	}
	if cfg.CacheEntries < 0 {
		return nil, errors.New("introspection: cache entries must not be negative")
	}
	i := &Introspector{
		issuer:      cfg.Issuer,
		audiences:   cfg.Audiences,
		allowNoAud:  cfg.AllowMissingAudience,
		scopeClaim:  cfg.ScopeClaim,
		clientID:    cfg.ClientID,
		endpoint:    cfg.Endpoint,
		timeout:     cfg.Timeout,
		maxResponse: cfg.MaxResponse,
		skew:        int64(cfg.ClockSkew / time.Second),
		logger:      cfg.Logger,
		now:         cfg.Now,
		keys:        cfg.Keys,
		sem:         make(chan struct{}, maxConcurrentCalls),
		flights:     make(map[[32]byte]*flight),
	}
	if i.scopeClaim == "scope" {
		i.scopeClaim = ""
	}
	id, secret := url.QueryEscape(cfg.ClientID), url.QueryEscape(cfg.ClientSecret)
	switch cfg.ClientAuth {
	case "", "basic", "client_secret_basic":
		// RFC 6749 §2.3.1: both parts form-urlencoded, then Basic.
		i.basicAuth = "Basic " + base64.StdEncoding.EncodeToString([]byte(id+":"+secret))
	case "post", "client_secret_post":
		i.postCreds = "&client_id=" + id
		if cfg.ClientSecret != "" {
			i.postCreds += "&client_secret=" + secret
		}
	default:
		return nil, fmt.Errorf("introspection: client_auth %q: want basic or post", cfg.ClientAuth)
	}
	i.accept = "application/json"
	if cfg.Keys != nil {
		i.accept = mediaTypeJWT + ", application/json;q=0.5"
	}
	switch {
	case cfg.CacheTTL == 0:
		i.cacheTTL = int64(DefaultCacheTTL)
	case cfg.CacheTTL > 0:
		i.cacheTTL = int64(cfg.CacheTTL)
	}
	switch {
	case cfg.NegativeTTL == 0:
		i.negativeTTL = int64(DefaultNegativeTTL)
	case cfg.NegativeTTL > 0:
		i.negativeTTL = int64(cfg.NegativeTTL)
	}
	if cfg.CacheEntries == 0 {
		cfg.CacheEntries = DefaultCacheEntries
	}
	i.cache = newCache(cfg.CacheEntries, DefaultCacheBytes)
	if i.timeout <= 0 {
		i.timeout = DefaultTimeout
	}
	if i.maxResponse <= 0 {
		i.maxResponse = DefaultMaxResponse
	}
	if i.logger == nil {
		i.logger = zap.NewNop()
	}
	if i.now == nil {
		i.now = time.Now
	}
	i.getClient = cfg.Client
	if i.getClient == nil {
		i.getClient = validator.DefaultHTTPClient()
	}
	i.client = sameOriginClient(i.getClient)
	return i, nil
}

// Calls is the number of requests made to the introspection endpoint.
func (i *Introspector) Calls() int64 { return i.calls.Load() }

// Preallocated refusals of tokens that are not worth a call.
var (
	errEmpty     = &validator.Error{Reason: validator.ReasonMalformed, Detail: "empty token"}
	errTooLarge  = &validator.Error{Reason: validator.ReasonTooLarge}
	errMalformed = &validator.Error{Reason: validator.ReasonMalformed, Detail: "not a token68"}
	errCancelled = &validator.Error{Reason: validator.ReasonIntrospectionUnavailable, Temporary: true, Detail: "request ended while waiting for token introspection"}
)

// Introspect checks tok and returns its claims. Errors are *validator.Error:
// a Temporary one means the endpoint could not give a usable answer, not
// that the token is bad.
func (i *Introspector) Introspect(ctx context.Context, tok string) (*validator.Claims, error) {
	if tok == "" {
		return nil, errEmpty
	}
	if len(tok) > validator.MaxTokenSize {
		return nil, errTooLarge
	}
	if !validator.IsToken68(tok) {
		return nil, errMalformed
	}
	// The token is hashed without copying it: Sum256 only reads.
	sum := sha256.Sum256(unsafe.Slice(unsafe.StringData(tok), len(tok)))
	if e, ok := i.cache.Get(sum, i.now().UnixNano()); ok {
		return e.claims, e.err
	}

	i.mu.Lock()
	// Looked up again under the lock: a flight that just ended has filled
	// the cache before leaving the map.
	if e, ok := i.cache.Get(sum, i.now().UnixNano()); ok {
		i.mu.Unlock()
		return e.claims, e.err
	}
	f := i.flights[sum]
	if f == nil {
		f = &flight{done: make(chan struct{})}
		i.flights[sum] = f
		// The call runs apart from this request, so that a client hanging
		// up does not abort an answer others wait for; Timeout bounds it.
		go i.run(context.WithoutCancel(ctx), sum, tok, f)
	}
	f.waiters.Add(1)
	i.mu.Unlock()

	select {
	case <-f.done:
		return f.claims, f.err
	case <-ctx.Done():
		return nil, errCancelled
	}
}

// run makes the call for one flight, caches its outcome and releases the
// waiters.
func (i *Introspector) run(ctx context.Context, sum [32]byte, tok string, f *flight) {
	ctx, cancel := context.WithTimeout(ctx, i.timeout)
	defer cancel()
	c, a, err := i.introspect(ctx, tok)
	f.claims, f.err = c, err
	now := i.now().UnixNano()
	var ve *validator.Error
	switch {
	case err == nil:
		if i.cacheTTL > 0 {
			until := now + i.cacheTTL
			if a.exp != 0 && a.exp < until {
				// An entry never outlives the token's exp.
				until = a.exp
			}
			i.cache.Put(sum, entry{claims: c, until: until, size: a.size}, now)
		}
	case errors.As(err, &ve) && !ve.Temporary:
		if i.negativeTTL > 0 {
			i.cache.Put(sum, entry{err: err, until: now + i.negativeTTL}, now)
		}
	}
	i.mu.Lock()
	delete(i.flights, sum)
	i.mu.Unlock()
	close(f.done)
}

// temporary builds the error for an endpoint that gave no usable answer.
func temporary(detail string) *validator.Error {
	return &validator.Error{Reason: validator.ReasonIntrospectionUnavailable, Temporary: true, Detail: detail}
}

func refuse(r validator.Reason, detail string) *validator.Error {
	return &validator.Error{Reason: r, Detail: detail}
}

// sameOriginClient returns a copy of c that follows redirects only within
// the origin of the first request: the request body carries the token (and,
// with client_secret_post, the secret), and a 307/308 would resend it.
func sameOriginClient(c *http.Client) *http.Client {
	cc := *c
	next := c.CheckRedirect
	cc.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		first := via[0].URL
		if !strings.EqualFold(req.URL.Scheme, first.Scheme) || !strings.EqualFold(req.URL.Host, first.Host) {
			return errors.New("redirect to another origin refused")
		}
		if next != nil {
			return next(req, via)
		}
		if len(via) >= 3 {
			return errors.New("too many redirects")
		}
		return nil
	}
	return &cc
}

// checkEndpoint accepts https URLs, and http on loopback, without
// credentials or fragment.
func checkEndpoint(raw string) error {
	if err := validator.CheckURL(raw); err != nil {
		return err
	}
	u, err := url.Parse(raw)
	if err != nil {
		return err
	}
	if u.User != nil {
		return errors.New("the URL must not contain credentials; use client_id and client_secret")
	}
	if u.Fragment != "" {
		return errors.New("the URL must not contain a fragment")
	}
	return nil
}
