package validator

import (
	"sync"
)

const cacheShards = 32

// entryOverhead approximates the memory of one cached entry besides its
// payload: the Claims struct, slices and map bookkeeping.
const entryOverhead = 512

// Cache holds recently verified tokens, keyed by the SHA-256 of the token
// (the token itself is never stored). It is bounded in entries and in bytes,
// sharded to keep lock contention low, and allocation-free on a hit.
type Cache struct {
	shards     [cacheShards]cacheShard
	maxEntries int // per shard
	maxBytes   int64
}

type cacheShard struct {
	mu      sync.Mutex
	entries map[[32]byte]*Claims
	bytes   int64
}

// DefaultCacheBytes bounds the cache's memory when no bound is given.
const DefaultCacheBytes = 64 << 20

// NewCache returns a cache holding at most entries tokens and about
// maxBytes of their data.
func NewCache(entries int, maxBytes int64) *Cache {
	if maxBytes <= 0 {
		maxBytes = DefaultCacheBytes
	}
	per := (entries + cacheShards - 1) / cacheShards
	c := &Cache{maxEntries: per, maxBytes: maxBytes / cacheShards}
	for i := range c.shards {
		c.shards[i].entries = make(map[[32]byte]*Claims)
	}
	return c
}

func (c *Cache) shard(k [32]byte) *cacheShard { return &c.shards[k[0]%cacheShards] }

func entrySize(cl *Claims) int64 { return int64(len(cl.raw)) + entryOverhead }

// get returns the claims for k if cached and unexpired at now (Unix seconds).
func (c *Cache) get(k [32]byte, now int64) *Claims {
	s := c.shard(k)
	s.mu.Lock()
	cl := s.entries[k]
	if cl != nil && now >= cl.Expiry {
		delete(s.entries, k)
		s.bytes -= entrySize(cl)
		cl = nil
	}
	s.mu.Unlock()
	return cl
}

func (c *Cache) remove(k [32]byte) {
	s := c.shard(k)
	s.mu.Lock()
	if cl := s.entries[k]; cl != nil {
		delete(s.entries, k)
		s.bytes -= entrySize(cl)
	}
	s.mu.Unlock()
}

// put stores cl unless it is already expired. When the shard is full it
// first drops expired entries, then arbitrary ones (Go's map iteration order
// is randomised, which makes this random eviction).
func (c *Cache) put(k [32]byte, cl *Claims, now int64) {
	if now >= cl.Expiry || c.maxEntries == 0 {
		return
	}
	size := entrySize(cl)
	if size > c.maxBytes {
		return
	}
	s := c.shard(k)
	s.mu.Lock()
	defer s.mu.Unlock()
	if old := s.entries[k]; old != nil {
		s.bytes -= entrySize(old)
		delete(s.entries, k)
	}
	if len(s.entries) >= c.maxEntries || s.bytes+size > c.maxBytes {
		for ek, e := range s.entries {
			if now >= e.Expiry {
				delete(s.entries, ek)
				s.bytes -= entrySize(e)
			}
		}
		for ek, e := range s.entries {
			if len(s.entries) < c.maxEntries && s.bytes+size <= c.maxBytes {
				break
			}
			delete(s.entries, ek)
			s.bytes -= entrySize(e)
		}
	}
	s.entries[k] = cl
	s.bytes += size
}

// Len is the number of cached tokens.
func (c *Cache) Len() int {
	n := 0
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		n += len(s.entries)
		s.mu.Unlock()
	}
	return n
}
