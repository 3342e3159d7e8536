package hashcache

import (
	"crypto/sha256"
	"fmt"
	"testing"
)

type item struct{ until, size int64 }

func (i item) Until() int64 { return i.until }
func (i item) Size() int64  { return i.size }

func key(n int) [32]byte { return sha256.Sum256([]byte(fmt.Sprint(n))) }

func TestExpiry(t *testing.T) {
	c := New[item](10, 1<<20)
	c.Put(key(1), item{until: 10, size: 1}, 0)
	if _, ok := c.Get(key(1), 9); !ok {
		t.Fatal("miss before until")
	}
	if _, ok := c.Get(key(1), 10); ok {
		t.Fatal("hit at until")
	}
	if c.Len() != 0 {
		t.Fatal("dead entry kept after Get")
	}
	c.Put(key(1), item{until: 10, size: 1}, 10)
	if c.Len() != 0 {
		t.Fatal("dead entry stored")
	}
}

func TestRemoveAndReplace(t *testing.T) {
	c := New[item](10, 1<<20)
	c.Put(key(1), item{until: 10, size: 1}, 0)
	c.Put(key(1), item{until: 20, size: 1}, 0)
	if e, ok := c.Get(key(1), 15); !ok || e.until != 20 {
		t.Fatalf("replaced entry: %v %v", e, ok)
	}
	c.Remove(key(1))
	if _, ok := c.Get(key(1), 0); ok || c.Len() != 0 {
		t.Fatal("removed entry still there")
	}
}

func TestBounds(t *testing.T) {
	c := New[item](64, 1<<30)
	for n := 0; n < 10000; n++ {
		c.Put(key(n), item{until: 100, size: 1}, 0)
	}
	if l := c.Len(); l > 64+shards || l < 32 {
		t.Fatalf("entry bound: %d entries", l)
	}
	// Bytes: each shard holds at most maxBytes/shards.
	c = New[item](1<<20, shards*1000)
	for n := 0; n < 10000; n++ {
		c.Put(key(n), item{until: 100, size: 100}, 0)
	}
	if l := c.Len(); l > shards*10 {
		t.Fatalf("byte bound: %d entries of 100 B in %d B", l, shards*1000)
	}
	c.Put(key(-1), item{until: 100, size: 2000}, 0)
	if _, ok := c.Get(key(-1), 0); ok {
		t.Fatal("entry larger than a shard stored")
	}
}

// TestDeadEntriesGoFirst: a full shard drops its dead entries before any
// live one.
func TestDeadEntriesGoFirst(t *testing.T) {
	sameShard := func(n int) []int {
		var out []int
		for m := 0; len(out) < n; m++ {
			if key(m)[0]%shards == key(0)[0]%shards {
				out = append(out, m)
			}
		}
		return out
	}
	ks := sameShard(3)
	c := New[item](2*shards, 1<<30) // two entries per shard
	c.Put(key(ks[0]), item{until: 100, size: 1}, 0)
	c.Put(key(ks[1]), item{until: 5, size: 1}, 0)
	c.Put(key(ks[2]), item{until: 100, size: 1}, 10) // the shard is full; ks[1] is dead
	if _, ok := c.Get(key(ks[0]), 10); !ok {
		t.Fatal("a live entry was evicted while a dead one was there")
	}
	if _, ok := c.Get(key(ks[2]), 10); !ok {
		t.Fatal("new entry not stored")
	}
}

func TestZeroDisables(t *testing.T) {
	c := New[item](0, 1<<20)
	c.Put(key(1), item{until: 10, size: 1}, 0)
	if c.Len() != 0 {
		t.Fatal("a zero-entry cache stored something")
	}
}

func BenchmarkGet(b *testing.B) {
	c := New[item](1000, 1<<20)
	k := key(1)
	c.Put(k, item{until: 1 << 62, size: 1}, 0)
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := c.Get(k, 0); !ok {
			b.Fatal("miss")
		}
	}
}
