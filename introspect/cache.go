package introspect

import (
	"sync"

	"github.com/mcpauth/caddy-mcp-auth/validator"
)

const cacheShards = 32

// entryOverhead approximates the memory of one entry besides its answer.
const entryOverhead = 256

// entry is a cached outcome: claims for an active answer, or the refusal.
type entry struct {
	claims *validator.Claims
	err    error
	until  int64 // Unix nanoseconds; the entry is dead at and after this
	size   int64 // bytes of the answer held by claims
}

// cache holds recent outcomes keyed by the SHA-256 of the token (the token
// itself is never stored), bounded in entries and bytes, sharded to keep
// lock contention low, and allocation-free on a hit.
type cache struct {
	shards     [cacheShards]cacheShard
	maxEntries int // per shard
	maxBytes   int64
}

type cacheShard struct {
	mu      sync.Mutex
	entries map[[32]byte]entry
	bytes   int64
}

func newCache(entries int, maxBytes int64) *cache {
	c := &cache{maxEntries: (entries + cacheShards - 1) / cacheShards, maxBytes: maxBytes / cacheShards}
	for i := range c.shards {
		c.shards[i].entries = make(map[[32]byte]entry)
	}
	return c
}

func (c *cache) shard(k [32]byte) *cacheShard { return &c.shards[k[0]%cacheShards] }

func (e *entry) cost() int64 { return e.size + entryOverhead }

// get returns the live entry for k at now (Unix nanoseconds).
func (c *cache) get(k [32]byte, now int64) (entry, bool) {
	s := c.shard(k)
	s.mu.Lock()
	e, ok := s.entries[k]
	if ok && now >= e.until {
		delete(s.entries, k)
		s.bytes -= e.cost()
		ok = false
	}
	s.mu.Unlock()
	return e, ok
}

// put stores e unless it is already dead. A full shard first drops its dead
// entries, then arbitrary ones (map iteration order is random).
func (c *cache) put(k [32]byte, e entry, now int64) {
	if now >= e.until || c.maxEntries == 0 {
		return
	}
	size := e.cost()
	if size > c.maxBytes {
		return
	}
	s := c.shard(k)
	s.mu.Lock()
	defer s.mu.Unlock()
	if old, ok := s.entries[k]; ok {
		s.bytes -= old.cost()
		delete(s.entries, k)
	}
	if len(s.entries) >= c.maxEntries || s.bytes+size > c.maxBytes {
		for ek, old := range s.entries {
			if now >= old.until {
				delete(s.entries, ek)
				s.bytes -= old.cost()
			}
		}
		for ek, old := range s.entries {
			if len(s.entries) < c.maxEntries && s.bytes+size <= c.maxBytes {
				break
			}
			delete(s.entries, ek)
			s.bytes -= old.cost()
		}
	}
	s.entries[k] = e
	s.bytes += size
}

// len is the number of entries, dead or alive.
func (c *cache) len() int {
	n := 0
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		n += len(s.entries)
		s.mu.Unlock()
	}
	return n
}
