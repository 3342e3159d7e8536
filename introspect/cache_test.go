package introspect

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/mcpauth/caddy-mcp-auth/validator"
)

func TestCacheNeverOutlivesExp(t *testing.T) {
	clk := newClock()
	ep := newEndpoint(t)
	// The answer's exp is fixed: 30 s from now, far less than CacheTTL.
	ep.setDefault(jsonAnswer(active(clk, func(m map[string]any) { m["exp"] = clk.Unix(30 * time.Second) })))
	i, _ := newIntrospector(t, ep, clk, func(c *Config) { c.CacheTTL = 10 * time.Minute; c.ClockSkew = time.Minute })
	ctx := context.Background()
	if _, err := i.Introspect(ctx, "tok"); err != nil {
		t.Fatal(err)
	}
	clk.Add(29 * time.Second)
	if _, err := i.Introspect(ctx, "tok"); err != nil || i.Calls() != 1 {
		t.Fatalf("before exp: %v, calls %d", err, i.Calls())
	}
	// At exp the entry is gone even though the skew would still accept the
	// token: the endpoint is asked again.
	clk.Add(time.Second)
	if _, err := i.Introspect(ctx, "tok"); err != nil {
		t.Fatal(err)
	}
	if i.Calls() != 2 {
		t.Fatalf("entry outlived exp: calls %d", i.Calls())
	}
	clk.Add(2 * time.Minute)
	_, err := i.Introspect(ctx, "tok")
	wantErr(t, err, false, validator.ReasonExpired)
}

func TestRevocationVisibleAfterCacheTTL(t *testing.T) {
	clk := newClock()
	ep := newEndpoint(t)
	ep.setDefault(jsonAnswer(active(clk, nil)))
	i, _ := newIntrospector(t, ep, clk, func(c *Config) { c.CacheTTL = time.Minute })
	ctx := context.Background()
	if _, err := i.Introspect(ctx, "tok"); err != nil {
		t.Fatal(err)
	}
	ep.setDefault(jsonAnswer(map[string]any{"active": false})) // revoked
	clk.Add(59 * time.Second)
	if _, err := i.Introspect(ctx, "tok"); err != nil || i.Calls() != 1 {
		t.Fatalf("within CacheTTL: %v, calls %d", err, i.Calls())
	}
	clk.Add(time.Second)
	_, err := i.Introspect(ctx, "tok")
	wantErr(t, err, false, reasonInactive)
	if i.Calls() != 2 {
		t.Fatalf("calls %d", i.Calls())
	}
}

func TestActiveNotCachedWhenDisabled(t *testing.T) {
	clk := newClock()
	ep := newEndpoint(t)
	ep.setDefault(jsonAnswer(active(clk, nil)))
	i, _ := newIntrospector(t, ep, clk, func(c *Config) { c.CacheTTL = -1 })
	for n := 0; n < 3; n++ {
		if _, err := i.Introspect(context.Background(), "tok"); err != nil {
			t.Fatal(err)
		}
	}
	if i.Calls() != 3 {
		t.Fatalf("calls %d", i.Calls())
	}
}

func TestNegativeCache(t *testing.T) {
	clk := newClock()
	ep := newEndpoint(t)
	ep.set("junk", jsonAnswer(map[string]any{"active": false}))
	ep.set("other-aud", jsonAnswer(active(clk, func(m map[string]any) { m["aud"] = "https://other.example.com" })))
	i, _ := newIntrospector(t, ep, clk, func(c *Config) { c.NegativeTTL = 5 * time.Second })
	ctx := context.Background()
	for _, tok := range []string{"junk", "other-aud"} {
		for n := 0; n < 10; n++ {
			if _, err := i.Introspect(ctx, tok); err == nil {
				t.Fatal("accepted")
			}
		}
	}
	if i.Calls() != 2 {
		t.Fatalf("calls %d, want 2", i.Calls())
	}
	clk.Add(5 * time.Second)
	ep.set("junk", jsonAnswer(active(clk, nil))) // now active
	if _, err := i.Introspect(ctx, "junk"); err != nil {
		t.Fatal(err)
	}
	if i.Calls() != 3 {
		t.Fatalf("calls %d, want 3", i.Calls())
	}

	// Disabled: every refusal asks again.
	j, _ := newIntrospector(t, ep, clk, func(c *Config) { c.NegativeTTL = -1 })
	for n := 0; n < 3; n++ {
		_, _ = j.Introspect(ctx, "other-aud")
	}
	if j.Calls() != 3 {
		t.Fatalf("calls %d, want 3", j.Calls())
	}
}

func TestTemporaryFailuresNotCached(t *testing.T) {
	clk := newClock()
	ep := newEndpoint(t)
	ep.setDefault(rawAnswer(503, "", ""))
	i, _ := newIntrospector(t, ep, clk, nil)
	ctx := context.Background()
	for n := 0; n < 3; n++ {
		_, err := i.Introspect(ctx, "tok")
		wantErr(t, err, true, 0)
	}
	if i.Calls() != 3 {
		t.Fatalf("calls %d", i.Calls())
	}
	ep.setDefault(jsonAnswer(active(clk, nil)))
	if _, err := i.Introspect(ctx, "tok"); err != nil {
		t.Fatal(err)
	}
	if i.cache.Len() != 1 {
		t.Fatalf("cache len %d", i.cache.Len())
	}
}

func waitWaiters(t *testing.T, i *Introspector, tok string, n int32) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		i.mu.Lock()
		var got int32
		for _, f := range i.flights {
			got += f.waiters.Load()
		}
		i.mu.Unlock()
		if got >= n {
			return
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatalf("waiters did not reach %d", n)
}

func TestSingleflight(t *testing.T) {
	clk := newClock()
	ep := newEndpoint(t)
	ep.setDefault(jsonAnswer(active(clk, nil)))
	gate := make(chan struct{})
	ep.setGate(gate)
	// With caching off, only the shared flight can keep this to one call.
	i, _ := newIntrospector(t, ep, clk, func(c *Config) { c.CacheTTL = -1 })
	const n = 50
	var wg sync.WaitGroup
	results := make([]*validator.Claims, n)
	errs := make([]error, n)
	for k := 0; k < n; k++ {
		wg.Add(1)
		go func(k int) {
			defer wg.Done()
			results[k], errs[k] = i.Introspect(context.Background(), "tok")
		}(k)
	}
	waitWaiters(t, i, "tok", n)
	close(gate)
	wg.Wait()
	for k := 0; k < n; k++ {
		if errs[k] != nil || results[k] != results[0] {
			t.Fatalf("result %d: %v", k, errs[k])
		}
	}
	if i.Calls() != 1 {
		t.Fatalf("calls %d, want 1", i.Calls())
	}
}

func TestWaiterBoundedByContext(t *testing.T) {
	clk := newClock()
	ep := newEndpoint(t)
	ep.setDefault(jsonAnswer(active(clk, nil)))
	gate := make(chan struct{})
	ep.setGate(gate)
	opened := false
	// A failure before the gate opens must not leave the endpoint hanging.
	t.Cleanup(func() {
		if !opened {
			close(gate)
		}
	})
	i, _ := newIntrospector(t, ep, clk, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := i.Introspect(ctx, "tok")
	wantErr(t, err, true, 0)
	if time.Since(start) > 2*time.Second {
		t.Fatal("waiter not bounded by its context")
	}
	// The call goes on for the others and fills the cache.
	opened = true
	close(gate)
	deadline := time.Now().Add(5 * time.Second)
	for i.cache.Len() == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if _, err := i.Introspect(context.Background(), "tok"); err != nil {
		t.Fatal(err)
	}
	if i.Calls() != 1 {
		t.Fatalf("calls %d", i.Calls())
	}
}

func TestCacheBounded(t *testing.T) {
	clk := newClock()
	ep := newEndpoint(t)
	ep.setDefault(jsonAnswer(active(clk, nil)))
	i, _ := newIntrospector(t, ep, clk, func(c *Config) { c.CacheEntries = 64 })
	for n := 0; n < 300; n++ {
		if _, err := i.Introspect(context.Background(), fmt.Sprintf("tok-%d", n)); err != nil {
			t.Fatal(err)
		}
	}
	if l := i.cache.Len(); l > 64 || l == 0 {
		t.Fatalf("cache len %d", l)
	}
}

func TestCacheKeyIsHash(t *testing.T) {
	c := newCache(10, 1<<20)
	var k [32]byte
	k[0] = 1
	c.Put(k, entry{err: errEmpty, until: 10}, 0)
	if _, ok := c.Get(k, 9); !ok {
		t.Fatal("miss before until")
	}
	if _, ok := c.Get(k, 10); ok {
		t.Fatal("hit at until")
	}
	if c.Len() != 0 {
		t.Fatal("dead entry kept")
	}
	c.Put(k, entry{err: errEmpty, until: 10}, 10)
	if c.Len() != 0 {
		t.Fatal("dead entry stored")
	}
}
