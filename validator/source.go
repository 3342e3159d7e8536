package validator

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

// Limits on what is fetched from an authorization server.
const (
	// MaxDocumentSize bounds a JWK Set or metadata document.
	MaxDocumentSize = 1 << 20
	// DefaultFetchTimeout bounds one fetch, connection to last byte.
	DefaultFetchTimeout = 10 * time.Second
	// DefaultRefresh is how often keys are refreshed in the background.
	DefaultRefresh = 15 * time.Minute
	// DefaultRefetchFloor is the least time between two fetches caused by
	// requests (a token signed by an unknown key). Whatever the rate of such
	// tokens, the authorization server sees at most one fetch per floor.
	DefaultRefetchFloor = 10 * time.Second
	// retryMin and retryMax bound the background retry after a failed fetch.
	retryMin = time.Second
	retryMax = time.Minute
)

// ErrNoKeys means the key source has never obtained a usable key.
var ErrNoKeys = errors.New("no keys available yet")

// KeySourceConfig says where an issuer's keys come from.
type KeySourceConfig struct {
	// Issuer is the issuer identifier; when JWKSURI and JWKSFile are empty,
	// the JWK Set URL is discovered from its metadata (RFC 8414, then OpenID
	// Connect Discovery), and metadata naming another issuer is refused.
	Issuer string
	// JWKSURI is the JWK Set URL, if known.
	JWKSURI string
	// JWKSFile is a local JWK Set, read once; no fetching happens.
	JWKSFile string
	// Refresh is the background refresh period. Default: DefaultRefresh.
	Refresh time.Duration
	// RefetchFloor is the least time between request-driven fetches.
	// Default: DefaultRefetchFloor.
	RefetchFloor time.Duration
	// Client makes the requests. Default: a client with DefaultFetchTimeout
	// that refuses redirects from https to http.
	Client *http.Client
	// Logger receives warnings about fetch trouble. Default: a no-op logger.
	Logger *zap.Logger
}

// KeySource keeps the current keys of one issuer. It fetches them in the
// background, refreshes them periodically and on demand (rate-limited), and
// keeps serving the last good keys when the authorization server is down.
// A KeySource is safe for concurrent use and may be shared by several
// configurations (see Destruct).
type KeySource struct {
	cfg    KeySourceConfig
	keys   atomic.Pointer[KeySet]
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}

	mu         sync.Mutex
	inflight   chan struct{} // closed when the current fetch finishes
	lastDemand time.Time     // start of the last request-driven fetch
	jwksURI    string        // discovered or configured
	failing    bool          // last fetch failed; warn once per outage (guarded by mu)

	fetches atomic.Int64
	now     func() time.Time
}

// NewKeySource validates cfg and starts the source. A JWKSFile is read now,
// and an unreadable or keyless file is an error. For a URL the first fetch
// happens in the background: a server must be able to start while its
// authorization server is down.
func NewKeySource(cfg KeySourceConfig) (*KeySource, error) {
	if cfg.Refresh <= 0 {
		cfg.Refresh = DefaultRefresh
	}
	if cfg.RefetchFloor <= 0 {
		cfg.RefetchFloor = DefaultRefetchFloor
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if cfg.Client == nil {
		cfg.Client = DefaultHTTPClient()
	}
	s := &KeySource{cfg: cfg, jwksURI: cfg.JWKSURI, now: time.Now, done: make(chan struct{})}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	if cfg.JWKSFile != "" {
		doc, err := os.ReadFile(cfg.JWKSFile)
		if err != nil {
			s.cancel()
			return nil, fmt.Errorf("reading jwks_file: %w", err)
		}
		set, skipped, err := ParseKeySet(doc)
		if err != nil {
			s.cancel()
			return nil, fmt.Errorf("jwks_file %s: %w", cfg.JWKSFile, err)
		}
		if set.Len() == 0 {
			s.cancel()
			return nil, fmt.Errorf("jwks_file %s: no usable signature keys (skipped: %s)", cfg.JWKSFile, strings.Join(skipped, "; "))
		}
		s.keys.Store(set)
		close(s.done)
		return s, nil
	}
	go s.loop()
	return s, nil
}

// DefaultHTTPClient returns the client used for metadata and key fetches.
func DefaultHTTPClient() *http.Client {
	return &http.Client{
		Timeout: DefaultFetchTimeout,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= 3 {
				return errors.New("too many redirects")
			}
			if via[0].URL.Scheme == "https" && req.URL.Scheme != "https" {
				return errors.New("redirect from https to " + req.URL.Scheme + " refused")
			}
			return nil
		},
	}
}

// Keys returns the current key set, nil when none was ever obtained.
func (s *KeySource) Keys() *KeySet { return s.keys.Load() }

// Fetches counts fetch attempts of the JWK Set (not of metadata).
func (s *KeySource) Fetches() int64 { return s.fetches.Load() }

// Destruct stops background work. It satisfies caddy.Destructor, so a
// KeySource can live in a caddy.UsagePool across config reloads.
func (s *KeySource) Destruct() error {
	s.cancel()
	<-s.done
	return nil
}

// loop fetches once now, then every Refresh; after a failure it retries
// sooner, backing off, while keeping the keys it has.
func (s *KeySource) loop() {
	defer close(s.done)
	wait := time.Duration(0)
	backoff := retryMin
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-time.After(wait):
		}
		if err := s.fetchShared(s.ctx, true); err != nil {
			wait = backoff
			backoff = min(backoff*2, retryMax, s.cfg.Refresh)
		} else {
			wait = s.cfg.Refresh
			backoff = retryMin
		}
	}
}

// Refetch is called when a token names a key the set lacks, or when no keys
// are known yet. It fetches unless another request-driven fetch started less
// than RefetchFloor ago; if a fetch is under way it waits for it (bounded by
// ctx). It returns the key set current afterwards.
func (s *KeySource) Refetch(ctx context.Context) *KeySet {
	if s.cfg.JWKSFile != "" {
		return s.Keys()
	}
	_ = s.fetchShared(ctx, false)
	return s.Keys()
}

// fetchShared runs at most one fetch at a time; concurrent callers wait for
// the one in flight. Request-driven calls (force false) are rate-limited.
func (s *KeySource) fetchShared(ctx context.Context, force bool) error {
	s.mu.Lock()
	if ch := s.inflight; ch != nil {
		s.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
		}
		return nil
	}
	if !force {
		// Only request-driven fetches count against the floor: a key
		// rotated in just after a background refresh must not be refused
		// for a whole floor, and a flood of unknown kids still causes at
		// most one fetch per floor.
		if !s.lastDemand.IsZero() && s.now().Sub(s.lastDemand) < s.cfg.RefetchFloor {
			s.mu.Unlock()
			return nil
		}
		s.lastDemand = s.now()
	}
	ch := make(chan struct{})
	s.inflight = ch
	s.mu.Unlock()

	// The fetch runs on the source's context, not the request's: a client
	// that hangs up must not abort a fetch that others are waiting for.
	err := s.fetch(s.ctx)

	// The outcome is recorded before the next fetch may start, under the
	// same lock that hands out the in-flight slot.
	s.mu.Lock()
	s.inflight = nil
	wasFailing := s.failing
	s.failing = err != nil && s.ctx.Err() == nil
	close(ch)
	s.mu.Unlock()

	if err == nil {
		if wasFailing {
			s.cfg.Logger.Info("JWKS fetch recovered", zap.String("issuer", s.cfg.Issuer))
		}
		return nil
	}
	if s.ctx.Err() != nil {
		return err
	}
	// Warn on the first failure of an outage; later ones at debug level, so
	// a long outage does not flood the log.
	level := zap.DebugLevel
	if !wasFailing {
		level = zap.WarnLevel
	}
	if c := s.cfg.Logger.Check(level, "JWKS fetch failed; keeping the keys already known"); c != nil {
		c.Write(zap.String("issuer", s.cfg.Issuer), zap.Int("known_keys", s.Keys().Len()), zap.Error(err))
	}
	select {
	case <-ctx.Done():
	default:
	}
	return err
}

func (s *KeySource) fetch(ctx context.Context) error {
	s.mu.Lock()
	uri := s.jwksURI
	s.mu.Unlock()
	if uri == "" {
		var err error
		uri, err = Discover(ctx, s.cfg.Client, s.cfg.Issuer)
		if err != nil {
			return err
		}
		s.mu.Lock()
		s.jwksURI = uri
		s.mu.Unlock()
	}
	s.fetches.Add(1)
	doc, err := getJSON(ctx, s.cfg.Client, uri)
	if err != nil {
		return fmt.Errorf("fetching JWK Set %s: %w", uri, err)
	}
	set, skipped, err := ParseKeySet(doc)
	if err != nil {
		return fmt.Errorf("JWK Set %s: %w", uri, err)
	}
	if len(skipped) > 0 {
		if c := s.cfg.Logger.Check(zap.DebugLevel, "skipped JWKS keys that cannot verify signatures"); c != nil {
			c.Write(zap.String("issuer", s.cfg.Issuer), zap.Strings("skipped", skipped))
		}
	}
	if set.Len() == 0 {
		// An empty set would lock everyone out; keep the old keys instead.
		return fmt.Errorf("JWK Set %s has no usable signature keys", uri)
	}
	s.keys.Store(set)
	return nil
}

// getJSON GETs url and returns its body, at most MaxDocumentSize bytes.
func getJSON(ctx context.Context, client *http.Client, u string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
		return nil, fmt.Errorf("status %d", resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxDocumentSize+1))
	if err != nil {
		return nil, err
	}
	if len(body) > MaxDocumentSize {
		return nil, fmt.Errorf("document larger than %d bytes", MaxDocumentSize)
	}
	return body, nil
}

// DiscoveryURLs lists where an issuer's metadata may be, in the order MCP
// clients try them (MCP 2025-11-25 "Authorization Server Metadata
// Discovery"): RFC 8414 path insertion, OpenID Connect path insertion, then
// OpenID Connect path appending.
func DiscoveryURLs(issuer string) ([]string, error) {
	u, err := url.Parse(issuer)
	if err != nil {
		return nil, err
	}
	if u.Scheme == "" || u.Host == "" {
		return nil, fmt.Errorf("issuer %q is not an absolute URL", issuer)
	}
	origin := u.Scheme + "://" + u.Host
	p := strings.TrimSuffix(u.EscapedPath(), "/")
	if p == "" {
		return []string{
			origin + "/.well-known/oauth-authorization-server",
			origin + "/.well-known/openid-configuration",
		}, nil
	}
	return []string{
		origin + "/.well-known/oauth-authorization-server" + p,
		origin + "/.well-known/openid-configuration" + p,
		origin + p + "/.well-known/openid-configuration",
	}, nil
}

// Discover finds the JWK Set URL of issuer from its metadata.
func Discover(ctx context.Context, client *http.Client, issuer string) (string, error) {
	return DiscoverEndpoint(ctx, client, issuer, "jwks_uri")
}

// DiscoverEndpoint reads the URL-valued member (jwks_uri,
// introspection_endpoint, ...) of issuer's metadata, trying DiscoveryURLs
// in order. A document whose "issuer" is not byte-identical to issuer is
// refused (RFC 8414 §3.3), as is a URL that is not https (except on
// loopback). Documents are at most MaxDocumentSize bytes.
func DiscoverEndpoint(ctx context.Context, client *http.Client, issuer, member string) (string, error) {
	urls, err := DiscoveryURLs(issuer)
	if err != nil {
		return "", err
	}
	var errs []error
	for _, u := range urls {
		doc, err := getJSON(ctx, client, u)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", u, err))
			continue
		}
		var md map[string]json.RawMessage
		var iss, endpoint string
		if err := json.Unmarshal(doc, &md); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", u, err))
			continue
		}
		if json.Unmarshal(md["issuer"], &iss) != nil || iss != issuer {
			errs = append(errs, fmt.Errorf("%s: metadata names issuer %q, not %q; refused", u, iss, issuer))
			continue
		}
		if json.Unmarshal(md[member], &endpoint) != nil || endpoint == "" {
			errs = append(errs, fmt.Errorf("%s: no %s", u, member))
			continue
		}
		if err := CheckURL(endpoint); err != nil {
			errs = append(errs, fmt.Errorf("%s: %s: %w", u, member, err))
			continue
		}
		return endpoint, nil
	}
	return "", fmt.Errorf("discovering %s of %s: %w", member, issuer, errors.Join(errs...))
}

// CheckURL accepts absolute https URLs, and http URLs whose host is
// loopback (localhost, 127.0.0.0/8, ::1), for development and tests.
func CheckURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return err
	}
	if u.Host == "" {
		return fmt.Errorf("%q is not an absolute URL", raw)
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if IsLoopback(u.Hostname()) {
			return nil
		}
		return fmt.Errorf("%q: http is allowed only on loopback hosts; use https", raw)
	default:
		return fmt.Errorf("%q: scheme must be https", raw)
	}
}

// IsLoopback reports whether host names this machine only.
func IsLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
