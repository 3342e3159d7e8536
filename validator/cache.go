package validator

import "github.com/mcpauth/caddy-mcp-auth/internal/hashcache"

// DefaultCacheBytes bounds the verified-token cache's memory when no bound
// is given.
const DefaultCacheBytes = 64 << 20

// entryOverhead approximates the memory of one cached token besides its
// payload: the Claims struct, slices and map bookkeeping.
const entryOverhead = 512

// cachedClaims is a verified token in the cache: alive until its exp (Unix
// seconds), never beyond.
type cachedClaims struct{ *Claims }

func (c cachedClaims) Until() int64 { return c.Expiry }
func (c cachedClaims) Size() int64  { return int64(len(c.raw)) + entryOverhead }

func newTokenCache(entries int, maxBytes int64) *hashcache.Cache[cachedClaims] {
	if maxBytes <= 0 {
		maxBytes = DefaultCacheBytes
	}
	return hashcache.New[cachedClaims](entries, maxBytes)
}
