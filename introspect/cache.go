package introspect

import (
	"github.com/mcpauth/caddy-mcp-auth/internal/hashcache"
	"github.com/mcpauth/caddy-mcp-auth/validator"
)

// entryOverhead approximates the memory of one entry besides its answer.
const entryOverhead = 256

// entry is a cached outcome: claims for an active answer, or the refusal.
type entry struct {
	claims *validator.Claims
	err    error
	until  int64 // Unix nanoseconds; the entry is dead at and after this
	size   int64 // bytes of the answer held by claims
}

// Until and Size make an entry a hashcache.Entry.
func (e entry) Until() int64 { return e.until }
func (e entry) Size() int64  { return e.size + entryOverhead }

// cache holds recent outcomes keyed by the SHA-256 of the token.
type cache = hashcache.Cache[entry]

func newCache(entries int, maxBytes int64) *cache { return hashcache.New[entry](entries, maxBytes) }
