// Package hashcache is the bounded cache behind the verified-token and the
// introspection caches: keyed by a SHA-256 (the token itself is never
// stored), bounded in entries and bytes, sharded to keep lock contention
// low, and allocation-free on a hit. Entries carry their own expiry.
package hashcache

import "sync"

// Entry is what the cache holds.
type Entry interface {
	// Until is when the entry dies, in the caller's clock unit; it is dead
	// at and after that instant.
	Until() int64
	// Size approximates the memory the entry holds, in bytes.
	Size() int64
}

const shards = 32

// Cache is safe for concurrent use.
type Cache[E Entry] struct {
	shards     [shards]shard[E]
	maxEntries int   // per shard
	maxBytes   int64 // per shard
}

type shard[E Entry] struct {
	mu    sync.Mutex
	m     map[[32]byte]E
	bytes int64
}

// New returns a cache of at most about entries entries and maxBytes bytes;
// both bounds are split evenly across the shards.
func New[E Entry](entries int, maxBytes int64) *Cache[E] {
	c := &Cache[E]{maxEntries: (entries + shards - 1) / shards, maxBytes: maxBytes / shards}
	for i := range c.shards {
		c.shards[i].m = make(map[[32]byte]E)
	}
	return c
}

func (c *Cache[E]) shard(k [32]byte) *shard[E] { return &c.shards[k[0]%shards] }

// Get returns the entry for k if it is alive at now; a dead one is dropped.
func (c *Cache[E]) Get(k [32]byte, now int64) (E, bool) {
	s := c.shard(k)
	s.mu.Lock()
	e, ok := s.m[k]
	if ok && now >= e.Until() {
		delete(s.m, k)
		s.bytes -= e.Size()
		ok = false
	}
	s.mu.Unlock()
	if !ok {
		var zero E
		return zero, false
	}
	return e, true
}

// Remove drops the entry for k.
func (c *Cache[E]) Remove(k [32]byte) {
	s := c.shard(k)
	s.mu.Lock()
	if e, ok := s.m[k]; ok {
		delete(s.m, k)
		s.bytes -= e.Size()
	}
	s.mu.Unlock()
}

// Put stores e unless it is already dead at now or larger than a shard's
// byte bound. A full shard first drops its dead entries, then arbitrary
// ones (map iteration order is random, so this is random eviction).
func (c *Cache[E]) Put(k [32]byte, e E, now int64) {
	size := e.Size()
	if now >= e.Until() || c.maxEntries == 0 || size > c.maxBytes {
		return
	}
	s := c.shard(k)
	s.mu.Lock()
	defer s.mu.Unlock()
	if old, ok := s.m[k]; ok {
		s.bytes -= old.Size()
		delete(s.m, k)
	}
	if len(s.m) >= c.maxEntries || s.bytes+size > c.maxBytes {
		for ek, old := range s.m {
			if now >= old.Until() {
				delete(s.m, ek)
				s.bytes -= old.Size()
			}
		}
		for ek, old := range s.m {
			if len(s.m) < c.maxEntries && s.bytes+size <= c.maxBytes {
				break
			}
			delete(s.m, ek)
			s.bytes -= old.Size()
		}
	}
	s.m[k] = e
	s.bytes += size
}

// Len is the number of entries held, dead or alive.
func (c *Cache[E]) Len() int {
	n := 0
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		n += len(s.m)
		s.mu.Unlock()
	}
	return n
}
