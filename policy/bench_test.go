package policy

import (
	"strconv"
	"strings"
	"testing"
	"time"
)

// benchBody builds a tools/call request of roughly size bytes whose bulk is
// in "arguments": half a long text with escapes and some non-ASCII, half an
// array of small objects, so both the string fast path and the
// object/duplicate-key path are exercised.
func benchBody(size int) string {
	var b strings.Builder
	b.WriteString(`{"jsonrpc":"2.0","id":42,"method":"tools/call","params":{"name":"search","_meta":{"progressToken":"p-1"},"arguments":{"query":"`)
	line := `The quick brown fox \"jumps\" over the lazy dog; naïve café ünïcödé — \u00e9\n`
	for b.Len() < size/2 {
		b.WriteString(line)
	}
	b.WriteString(`","rows":[`)
	for i := 0; b.Len() < size-60; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`{"id":` + strconv.Itoa(i) + `,"score":-1.25e-3,"ok":true,"tag":"row","v":null}`)
	}
	b.WriteString(`]}}}`)
	return b.String()
}

func benchInspect(b *testing.B, size int) {
	p := mustCompile(b, Config{
		RequireScope: []string{"mcp"},
		Tools:        []Rule{{Patterns: []string{"search"}, Scopes: []string{"mcp:search"}}},
	})
	body := []byte(benchBody(size))
	if _, err := p.Inspect(body, "", ""); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := p.Inspect(body, "", ""); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkInspect1KiB(b *testing.B)  { benchInspect(b, 1<<10) }
func BenchmarkInspect64KiB(b *testing.B) { benchInspect(b, 64<<10) }
func BenchmarkInspect1MiB(b *testing.B)  { benchInspect(b, 1<<20) }

// BenchmarkInspectLargeObject measures the sorted duplicate-key path.
func BenchmarkInspectLargeObject(b *testing.B) {
	p := mustCompile(b, Config{Tools: []Rule{{Patterns: []string{"*"}, Scopes: []string{"s"}}}})
	body := []byte(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"x","arguments":` + manyKeys(500, false) + `}}`)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := p.Inspect(body, "", ""); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRequirementsCheck(b *testing.B) {
	p := mustCompile(b, Config{
		RequireScope: []string{"mcp"},
		Methods:      []Rule{{Patterns: []string{"tools/*"}, Scopes: []string{"tools"}}},
		Tools: []Rule{
			{Patterns: []string{"delete_*"}, Scopes: []string{"admin"}, ACR: []string{"urn:mfa"}},
			{Patterns: []string{"*"}, Scopes: []string{"use"}},
		},
		ScopeImplies: map[string][]string{"admin": {"use", "tools"}},
	})
	req, err := p.Inspect([]byte(call("delete_user")), "", "")
	if err != nil {
		b.Fatal(err)
	}
	grant := Grant{Scopes: []string{"openid", "mcp", "admin"}, ACR: "urn:mfa"}
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		if d := p.Check(p.Requirements(req), grant, now); d.Outcome != Allow {
			b.Fatal(d)
		}
	}
}
