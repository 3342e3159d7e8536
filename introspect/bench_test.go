package introspect

import (
	"context"
	"testing"
)

// BenchmarkIntrospectCached measures a cache hit, the cost every request
// with a recently seen token pays.
func BenchmarkIntrospectCached(b *testing.B) {
	clk := newClock()
	ep := newEndpoint(b)
	const tok = "2YotnFZFEjr1zCsicMWpAA-a-typical-opaque-access-token-0123456789"
	ep.set(tok, jsonAnswer(active(clk, nil)))
	i, _ := newIntrospector(b, ep, clk, nil)
	ctx := context.Background()
	if _, err := i.Introspect(ctx, tok); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := i.Introspect(ctx, tok); err != nil {
			b.Fatal(err)
		}
	}
	if i.Calls() != 1 {
		b.Fatalf("calls %d", i.Calls())
	}
}

// BenchmarkIntrospectCachedParallel is the same under contention.
func BenchmarkIntrospectCachedParallel(b *testing.B) {
	clk := newClock()
	ep := newEndpoint(b)
	const tok = "2YotnFZFEjr1zCsicMWpAA-a-typical-opaque-access-token-0123456789"
	ep.set(tok, jsonAnswer(active(clk, nil)))
	i, _ := newIntrospector(b, ep, clk, nil)
	ctx := context.Background()
	if _, err := i.Introspect(ctx, tok); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := i.Introspect(ctx, tok); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
