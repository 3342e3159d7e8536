package policy

import (
	"slices"
	"strings"
	"testing"
	"time"
)

func mustCompile(t testing.TB, cfg Config) *Policy {
	t.Helper()
	p, err := Compile(cfg)
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	return p
}

func TestCompileErrors(t *testing.T) {
	ok := []string{"s"}
	cases := []struct {
		name string
		cfg  Config
		want string // substring of the error
	}{
		{"negative max_body", Config{MaxBody: -1}, "max_body: must not be negative"},
		{"bad challenge mode", Config{ChallengeScopeMode: "union"}, `challenge_scope: unknown mode "union"`},
		{"require_scope with space", Config{RequireScope: []string{"a b"}}, `require_scope: invalid scope "a b"`},
		{"require_scope empty string", Config{RequireScope: []string{""}}, `require_scope: invalid scope ""`},
		{"require_scope quote", Config{RequireScope: []string{`a"b`}}, `require_scope: invalid scope`},
		{"require_scope backslash", Config{RequireScope: []string{`a\b`}}, `require_scope: invalid scope`},
		{"require_scope non-ASCII", Config{RequireScope: []string{"é"}}, `require_scope: invalid scope`},
		{"require_scope DEL", Config{RequireScope: []string{"a\x7f"}}, `require_scope: invalid scope`},
		{"require_scope offline_access", Config{RequireScope: []string{"offline_access"}}, "require_scope: offline_access"},
		{"method without patterns", Config{Methods: []Rule{{Scopes: ok}}}, "method rule 1: no patterns"},
		{"tool empty pattern", Config{Tools: []Rule{{Patterns: []string{""}, Scopes: ok}}}, `tool "": bad pattern "": empty pattern`},
		{"tool trailing backslash", Config{Tools: []Rule{{Patterns: []string{`a\`}, Scopes: ok}}}, `tool "a\\": bad pattern`},
		{"tool bad escape", Config{Tools: []Rule{{Patterns: []string{`a\b`}, Scopes: ok}}}, `backslash may only escape`},
		{"tool control char", Config{Tools: []Rule{{Patterns: []string{"a\nb"}, Scopes: ok}}}, "control character"},
		{"tool invalid UTF-8", Config{Tools: []Rule{{Patterns: []string{"a\xff"}, Scopes: ok}}}, "not valid UTF-8"},
		{"tool no requirement", Config{Tools: []Rule{{Patterns: []string{"delete_*"}}}}, `tool "delete_*": needs at least one of scope, acr or max_age`},
		{"block names all patterns", Config{Tools: []Rule{{Patterns: []string{"a", "b"}}}}, `tool "a" "b": needs at least one`},
		{"method no requirement", Config{Methods: []Rule{{Patterns: []string{"resources/read"}}}}, `method "resources/read": needs at least one`},
		{"tool bad scope", Config{Tools: []Rule{{Patterns: []string{"x"}, Scopes: []string{"a,b c"}}}}, `tool "x": invalid scope "a,b c"`},
		{"tool offline_access", Config{Tools: []Rule{{Patterns: []string{"x"}, Scopes: []string{"offline_access"}}}}, `tool "x": offline_access`},
		{"tool bad acr", Config{Tools: []Rule{{Patterns: []string{"x"}, ACR: []string{"urn:a b"}}}}, `tool "x": invalid acr value "urn:a b"`},
		{"tool empty acr", Config{Tools: []Rule{{Patterns: []string{"x"}, ACR: []string{""}}}}, `tool "x": invalid acr value ""`},
		{"tool negative max_age", Config{Tools: []Rule{{Patterns: []string{"x"}, MaxAge: -time.Second}}}, `tool "x": max_age must not be negative`},
		{"tool fractional max_age", Config{Tools: []Rule{{Patterns: []string{"x"}, MaxAge: 1500 * time.Millisecond}}}, `tool "x": max_age must be a whole number of seconds`},
		{"duplicate exact tool", Config{Tools: []Rule{{Patterns: []string{"x"}, Scopes: ok}, {Patterns: []string{"x"}, Scopes: ok}}}, `tool "x": pattern "x" is already used`},
		{"duplicate glob tool", Config{Tools: []Rule{{Patterns: []string{"x*", "x*"}, Scopes: ok}}}, `pattern "x*" is already used`},
		{"duplicate exact via escape", Config{Methods: []Rule{{Patterns: []string{"a*"}, Scopes: ok}, {Patterns: []string{`a\*`}, Scopes: ok}, {Patterns: []string{`a\*`}, Scopes: ok}}}, "already used"},
		{"implies bad key", Config{ScopeImplies: map[string][]string{"a b": {"c"}}}, `scope_implies "a b": invalid scope`},
		{"implies bad value", Config{ScopeImplies: map[string][]string{"a": {"c d"}}}, `scope_implies "a": invalid scope "c d"`},
		{"implies empty list", Config{ScopeImplies: map[string][]string{"a": nil}}, `scope_implies "a": needs at least one implied scope`},
		{"implies offline_access", Config{ScopeImplies: map[string][]string{"offline_access": {"a"}}}, `scope_implies "offline_access": offline_access`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Compile(tc.cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Compile error = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestCompileAccepts(t *testing.T) {
	p := mustCompile(t, Config{
		RequireScope: []string{"mcp", "mcp"},
		ScopeImplies: map[string][]string{"a": {"b"}, "b": {"a"}, "c": {"c"}}, // cycles are fine
		Methods:      []Rule{{Patterns: []string{"m"}, MaxAge: 5 * time.Minute}},
		Tools:        []Rule{{Patterns: []string{`lit\*\?\\`, "x?", "*"}, ACR: []string{"urn:mfa"}}},
	})
	if p.MaxBody() != DefaultMaxBody {
		t.Errorf("MaxBody = %d, want default %d", p.MaxBody(), DefaultMaxBody)
	}
	if !p.NeedsBody() {
		t.Error("NeedsBody = false with rules present")
	}
	if got := mustCompile(t, Config{RequireScope: []string{"a"}, MaxBody: 10}); got.NeedsBody() || got.MaxBody() != 10 {
		t.Errorf("no rules: NeedsBody = %v, MaxBody = %d", got.NeedsBody(), got.MaxBody())
	}
	if got := mustCompile(t, Config{Tools: []Rule{{Patterns: []string{"x"}, Scopes: []string{"s"}}}}); !got.NeedsBody() {
		t.Error("tool rule only: NeedsBody = false")
	}
}

func TestAllScopes(t *testing.T) {
	p := mustCompile(t, Config{
		RequireScope: []string{"mcp:basic"},
		Methods:      []Rule{{Patterns: []string{"resources/*"}, Scopes: []string{"mcp:read", "mcp:basic"}}},
		Tools:        []Rule{{Patterns: []string{"delete_*"}, Scopes: []string{"mcp:admin"}}, {Patterns: []string{"x"}, ACR: []string{"urn:mfa"}}},
		ScopeImplies: map[string][]string{"mcp:root": {"mcp:admin"}},
	})
	want := []string{"mcp:admin", "mcp:basic", "mcp:read", "mcp:root"}
	got := p.AllScopes()
	if !slices.Equal(got, want) {
		t.Fatalf("AllScopes = %v, want %v", got, want)
	}
	got[0] = "mutated"
	if p.AllScopes()[0] != "mcp:admin" {
		t.Fatal("AllScopes returned the policy's own slice")
	}
}

func TestGlob(t *testing.T) {
	cases := []struct {
		pat, name string
		want      bool
	}{
		{"delete_*", "delete_user", true},
		{"delete_*", "delete_", true},
		{"delete_*", "Delete_user", false},
		{"delete_*", "xdelete_user", false},
		{"*", "", true},
		{"*", "anything/at all", true},
		{"*_user", "delete_user", true},
		{"*_user", "delete_users", false},
		{"a*b*c", "abc", true},
		{"a*b*c", "aXbYbZc", true},
		{"a*b*c", "aXbYc_", false},
		{"a*b*c", "acb", false},
		{"a**b", "ab", true},
		{"?", "é", true},        // one rune, two bytes
		{"?", "ab", false},      // two runes
		{"?", "", false},        // exactly one
		{"a?c", "a😀c", true},    // four-byte rune
		{"??", "é", false},      // é is one rune, not two
		{"*?", "", false},       // needs at least one
		{"*?", "x", true},       // star may match empty
		{`lit\*`, "lit*", true}, // escaped star is literal
		{`lit\*`, "litX", false},
		{`a\?`, "a?", true},
		{`a\?`, "ab", false},
		{`a\\*`, `a\bc`, true},
		{"[ab]", "[ab]", true}, // no character classes
		{"[ab]", "a", false},
		{"tools/*", "tools/call", true},
		{"*/list", "tools/list", true},
		{"*a*a*a*a*b", strings.Repeat("a", 200), false}, // bounded backtracking
	}
	for _, tc := range cases {
		g, err := parseGlob(tc.pat)
		if err != nil {
			t.Fatalf("parseGlob(%q): %v", tc.pat, err)
		}
		if got := g.match(tc.name); got != tc.want {
			t.Errorf("%q matches %q = %v, want %v", tc.pat, tc.name, got, tc.want)
		}
	}
}

func TestRuleSelection(t *testing.T) {
	p := mustCompile(t, Config{
		RequireScope: []string{"mcp"},
		Methods: []Rule{
			{Patterns: []string{"resources/*"}, Scopes: []string{"res"}},
			{Patterns: []string{"resources/read"}, Scopes: []string{"res:read"}},
			{Patterns: []string{"tools/*"}, Scopes: []string{"tools"}},
			{Patterns: []string{"prompts/*", "p?ompts/get"}, Scopes: []string{"prompts"}},
			{Patterns: []string{"*/get"}, Scopes: []string{"get"}},
		},
		Tools: []Rule{
			{Patterns: []string{"*"}, Scopes: []string{"tool:any"}},
			{Patterns: []string{"delete_*"}, Scopes: []string{"tool:delete"}},
			{Patterns: []string{"*_user"}, Scopes: []string{"tool:user"}},
			{Patterns: []string{"delete_user"}, Scopes: []string{"tool:delete_user"}},
			{Patterns: []string{"get_?"}, Scopes: []string{"tool:get1"}},
			{Patterns: []string{"x*y"}, Scopes: []string{"tool:xy-first"}},
			{Patterns: []string{"x?y"}, Scopes: []string{"tool:xy-second"}},
			{Patterns: []string{"Search"}, Scopes: []string{"tool:Search"}},
		},
	})
	cases := []struct {
		name, method, tool string
		want               []string
	}{
		{"exact method beats glob", "resources/read", "", []string{"mcp", "res:read"}},
		{"glob method", "resources/list", "", []string{"mcp", "res"}},
		{"no method rule", "ping", "", []string{"mcp"}},
		{"method case-sensitive", "Resources/read", "", []string{"mcp"}},
		{"more literals beats fewer", "prompts/get", "", []string{"mcp", "prompts"}},
		{"tools/call: method and tool rule union", "tools/call", "delete_user", []string{"mcp", "tools", "tool:delete_user"}},
		{"exact tool beats globs", "tools/call", "delete_user", []string{"mcp", "tools", "tool:delete_user"}},
		{"longer literal glob wins", "tools/call", "delete_account", []string{"mcp", "tools", "tool:delete"}},
		{"delete_* (7) beats *_user (5)", "tools/call", "delete_x_user", []string{"mcp", "tools", "tool:delete"}},
		{"*_user beats *", "tools/call", "add_user", []string{"mcp", "tools", "tool:user"}},
		{"catch-all tool", "tools/call", "search", []string{"mcp", "tools", "tool:any"}},
		{"tool case-sensitive", "tools/call", "search", []string{"mcp", "tools", "tool:any"}},
		{"exact tool case-sensitive hit", "tools/call", "Search", []string{"mcp", "tools", "tool:Search"}},
		{"? is one rune", "tools/call", "get_é", []string{"mcp", "tools", "tool:get1"}},
		{"? not two runes", "tools/call", "get_ab", []string{"mcp", "tools", "tool:any"}},
		{"tie goes to first declared", "tools/call", "xay", []string{"mcp", "tools", "tool:xy-first"}},
		{"tool rules only for tools/call", "prompts/get", "delete_user", []string{"mcp", "prompts"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var req Request
			req.add(Message{Method: tc.method, Tool: tc.tool})
			got := p.Requirements(req)
			if !slices.Equal(got.Scopes, tc.want) {
				t.Fatalf("Scopes = %v, want %v", got.Scopes, tc.want)
			}
			if got.Method != tc.method || got.Tool != tc.tool {
				t.Fatalf("Method/Tool = %q/%q", got.Method, got.Tool)
			}
		})
	}
}

func TestRequirements(t *testing.T) {
	p := mustCompile(t, Config{
		RequireScope: []string{"mcp"},
		Methods: []Rule{
			{Patterns: []string{"tools/call"}, Scopes: []string{"tools"}, ACR: []string{"urn:mfa", "urn:hwk"}},
			{Patterns: []string{"resources/read"}, Scopes: []string{"read"}, MaxAge: time.Hour},
			{Patterns: []string{"prompts/get"}, ACR: []string{"urn:pwd"}},
		},
		Tools: []Rule{
			{Patterns: []string{"delete_*"}, Scopes: []string{"admin", "mcp"}, ACR: []string{"urn:hwk", "urn:mfa"}, MaxAge: 5 * time.Minute},
			{Patterns: []string{"search"}, Scopes: []string{"search"}},
		},
	})
	msg := func(method, tool string) Message { return Message{Method: method, Tool: tool} }
	cases := []struct {
		name      string
		msgs      []Message
		scopes    []string
		acr       []string
		conflict  bool
		maxAge    time.Duration
		hasMaxAge bool
	}{
		{"not inspected", nil, []string{"mcp"}, nil, false, 0, false},
		{"response", []Message{{Response: true}}, []string{"mcp"}, nil, false, 0, false},
		{"tools/call method rule acr applies with tool rule", []Message{msg("tools/call", "search")},
			[]string{"mcp", "tools", "search"}, []string{"urn:mfa", "urn:hwk"}, false, 0, false},
		{"acr lists intersect in method rule order, tool max_age", []Message{msg("tools/call", "delete_x")},
			[]string{"mcp", "tools", "admin"}, []string{"urn:mfa", "urn:hwk"}, false, 5 * time.Minute, true},
		{"tools/call without tool rule", []Message{msg("tools/call", "other")},
			[]string{"mcp", "tools"}, []string{"urn:mfa", "urn:hwk"}, false, 0, false},
		{"batch union, smallest max_age", []Message{msg("resources/read", ""), msg("tools/call", "delete_x"), {Response: true}},
			[]string{"mcp", "read", "tools", "admin"}, []string{"urn:mfa", "urn:hwk"}, false, 5 * time.Minute, true},
		{"batch scopes in element order", []Message{msg("tools/call", "search"), msg("resources/read", "")},
			[]string{"mcp", "tools", "search", "read"}, []string{"urn:mfa", "urn:hwk"}, false, time.Hour, true},
		{"batch with disjoint acr lists", []Message{msg("tools/call", "search"), msg("prompts/get", "")},
			[]string{"mcp", "tools", "search"}, nil, true, 0, false},
		{"smallest max_age wins whatever the order", []Message{msg("tools/call", "delete_x"), msg("resources/read", "")},
			[]string{"mcp", "tools", "admin", "read"}, []string{"urn:mfa", "urn:hwk"}, false, 5 * time.Minute, true},
		{"batch of the same message twice", []Message{msg("tools/call", "search"), msg("tools/call", "search")},
			[]string{"mcp", "tools", "search"}, []string{"urn:mfa", "urn:hwk"}, false, 0, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var req Request
			for _, m := range tc.msgs {
				req.add(m)
			}
			got := p.Requirements(req)
			if !slices.Equal(got.Scopes, tc.scopes) || !slices.Equal(got.ACR, tc.acr) || got.ACRConflict != tc.conflict ||
				got.MaxAge != tc.maxAge || got.HasMaxAge != tc.hasMaxAge {
				t.Fatalf("got %+v\nwant scopes=%v acr=%v conflict=%v maxAge=%v/%v", got, tc.scopes, tc.acr, tc.conflict, tc.maxAge, tc.hasMaxAge)
			}
		})
	}

	// Merging a batch must not corrupt the precomputed single-message
	// requirements it started from.
	single := p.Requirements(requestOf(msg("tools/call", "search")))
	before := slices.Clone(single.Scopes)
	p.Requirements(requestOf(msg("tools/call", "search"), msg("resources/read", ""), msg("tools/call", "delete_x")))
	if after := p.Requirements(requestOf(msg("tools/call", "search"))); !slices.Equal(after.Scopes, before) {
		t.Fatalf("batch merge changed single requirement: %v -> %v", before, after.Scopes)
	}
	// Appending to a returned slice must not write into the policy.
	_ = append(single.Scopes, "x")
	_ = append(p.Requirements(Request{}).Scopes, "y")
	if got := p.Requirements(requestOf(msg("tools/call", "search"))).Scopes; !slices.Equal(got, before) {
		t.Fatalf("append leaked into policy: %v", got)
	}
}

func requestOf(msgs ...Message) Request {
	var r Request
	for _, m := range msgs {
		r.add(m)
	}
	return r
}

func TestResponsesIgnoreMethodRules(t *testing.T) {
	// A catch-all method rule applies to every request and notification,
	// but a client's JSON-RPC response has no method and needs only
	// require_scope.
	p := mustCompile(t, Config{
		RequireScope: []string{"mcp"},
		Methods:      []Rule{{Patterns: []string{"*"}, Scopes: []string{"any"}}},
	})
	if got := p.Requirements(requestOf(Message{Response: true})).Scopes; !slices.Equal(got, []string{"mcp"}) {
		t.Fatalf("response needs %v", got)
	}
	// The empty method name is still a method, and * matches it.
	if got := p.Requirements(requestOf(Message{Method: ""})).Scopes; !slices.Equal(got, []string{"mcp", "any"}) {
		t.Fatalf(`method "" needs %v`, got)
	}
}

func TestRequirementsFromInspect(t *testing.T) {
	p := mustCompile(t, Config{
		RequireScope: []string{"mcp"},
		Tools:        []Rule{{Patterns: []string{"delete_*"}, Scopes: []string{"admin"}}},
	})
	// A batch hiding a privileged call behind a harmless one needs both.
	body := `[{"jsonrpc":"2.0","id":1,"method":"tools/list"},{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"delete_all"}}]`
	req, err := p.Inspect([]byte(body), "", "")
	if err != nil {
		t.Fatal(err)
	}
	got := p.Requirements(req)
	if !slices.Equal(got.Scopes, []string{"mcp", "admin"}) || got.Method != "tools/list" || got.Tool != "" {
		t.Fatalf("Requirements = %+v", got)
	}
}

func TestCheck(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	p := mustCompile(t, Config{
		RequireScope: []string{"mcp"},
		ScopeImplies: map[string][]string{"mcp:admin": {"mcp:write"}, "mcp:write": {"mcp:read"}},
		Methods:      []Rule{{Patterns: []string{"x"}, Scopes: []string{"mcp:read"}}},
	})
	req := func(scopes []string, acr []string, maxAge time.Duration) Requirement {
		return Requirement{Scopes: scopes, ACR: acr, MaxAge: maxAge, HasMaxAge: maxAge > 0}
	}
	cases := []struct {
		name    string
		req     Requirement
		grant   Grant
		want    Outcome
		missing []string
		acr     string
		maxAge  int64
	}{
		{"allow", req([]string{"mcp"}, nil, 0), Grant{Scopes: []string{"mcp"}}, Allow, nil, "", -1},
		{"allow with nothing required", req(nil, nil, 0), Grant{}, Allow, nil, "", -1},
		{"missing scope", req([]string{"mcp", "mcp:read"}, nil, 0), Grant{Scopes: []string{"mcp"}}, InsufficientScope, []string{"mcp:read"}, "", -1},
		{"scope compare is case-sensitive", req([]string{"mcp"}, nil, 0), Grant{Scopes: []string{"MCP"}}, InsufficientScope, []string{"mcp"}, "", -1},
		{"implied directly", req([]string{"mcp:write"}, nil, 0), Grant{Scopes: []string{"mcp:admin"}}, Allow, nil, "", -1},
		{"implied transitively", req([]string{"mcp:read"}, nil, 0), Grant{Scopes: []string{"mcp:admin"}}, Allow, nil, "", -1},
		{"implication is one-way", req([]string{"mcp:admin"}, nil, 0), Grant{Scopes: []string{"mcp:write", "mcp:read"}}, InsufficientScope, []string{"mcp:admin"}, "", -1},
		{"several missing, in order", req([]string{"mcp", "mcp:write", "mcp:read"}, nil, 0), Grant{Scopes: []string{"other"}},
			InsufficientScope, []string{"mcp", "mcp:write", "mcp:read"}, "", -1},
		{"acr accepted", req([]string{"mcp"}, []string{"urn:mfa", "urn:hwk"}, 0), Grant{Scopes: []string{"mcp"}, ACR: "urn:hwk"}, Allow, nil, "", -1},
		{"acr wrong", req([]string{"mcp"}, []string{"urn:mfa", "urn:hwk"}, 0), Grant{Scopes: []string{"mcp"}, ACR: "urn:pwd"},
			InsufficientUserAuthentication, nil, "urn:mfa urn:hwk", -1},
		{"acr absent", req(nil, []string{"urn:mfa"}, 0), Grant{}, InsufficientUserAuthentication, nil, "urn:mfa", -1},
		{"acr conflict", Requirement{ACRConflict: true}, Grant{ACR: "urn:mfa"}, InsufficientUserAuthentication, nil, "", -1},
		{"max_age fresh", req(nil, nil, 5*time.Minute), Grant{AuthTime: now.Add(-5 * time.Minute)}, Allow, nil, "", -1},
		{"max_age stale", req(nil, nil, 5*time.Minute), Grant{AuthTime: now.Add(-5*time.Minute - time.Second)},
			InsufficientUserAuthentication, nil, "", 300},
		{"max_age without auth_time", req(nil, nil, 5*time.Minute), Grant{}, InsufficientUserAuthentication, nil, "", 300},
		{"auth_time in the future", req(nil, nil, 5*time.Minute), Grant{AuthTime: now.Add(time.Minute)}, Allow, nil, "", -1},
		{"user authentication before scope", req([]string{"mcp:admin"}, []string{"urn:mfa"}, time.Minute), Grant{ACR: "urn:pwd"},
			InsufficientUserAuthentication, []string{"mcp:admin"}, "urn:mfa", 60},
		{"scope after good authentication", req([]string{"mcp:admin"}, []string{"urn:mfa"}, time.Minute), Grant{ACR: "urn:mfa", AuthTime: now},
			InsufficientScope, []string{"mcp:admin"}, "", -1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := p.Check(tc.req, tc.grant, now)
			if d.Outcome != tc.want || !slices.Equal(d.Missing, tc.missing) || d.ACRValues != tc.acr || d.MaxAge != tc.maxAge {
				t.Fatalf("Check = %+v\nwant outcome %v missing %v acr %q maxAge %d", d, tc.want, tc.missing, tc.acr, tc.maxAge)
			}
			if (d.Outcome == Allow) != (d.Description == "") {
				t.Fatalf("Description %q for outcome %v", d.Description, d.Outcome)
			}
			if !validDescription(d.Description) {
				t.Fatalf("Description %q has characters not allowed in error_description", d.Description)
			}
			if d.Outcome != Allow && d.ChallengeScope == "" && len(tc.req.Scopes) > 0 {
				t.Fatalf("no ChallengeScope for %v", d.Outcome)
			}
		})
	}
}

func validDescription(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

func TestChallengeScope(t *testing.T) {
	cfg := Config{
		RequireScope: []string{"mcp:basic"},
		Tools: []Rule{
			{Patterns: []string{"delete_*"}, Scopes: []string{"mcp:admin"}},
			{Patterns: []string{"read_*"}, Scopes: []string{"mcp:read"}},
			{Patterns: []string{"write_*"}, Scopes: []string{"mcp:write", "mcp:basic"}},
		},
		ScopeImplies: map[string][]string{"mcp:admin": {"mcp:write"}},
	}
	cumulative := mustCompile(t, cfg)
	cfg.ChallengeScopeMode = ChallengeScopeCumulative
	explicit := mustCompile(t, cfg)
	cfg.ChallengeScopeMode = ChallengeScopeOperation
	operation := mustCompile(t, cfg)

	need := func(p *Policy, tool string) Requirement {
		return p.Requirements(requestOf(Message{Method: "tools/call", Tool: tool}))
	}
	cases := []struct {
		name    string
		p       *Policy
		tool    string
		granted []string
		want    string
	}{
		{"cumulative keeps held known scopes in granted order", cumulative, "delete_x",
			[]string{"mcp:write", "offline_access", "unknown:scope", "mcp:basic", "mcp:read"}, "mcp:basic mcp:admin mcp:write mcp:read"},
		{"explicit cumulative is the default", explicit, "delete_x",
			[]string{"mcp:read"}, "mcp:basic mcp:admin mcp:read"},
		{"operation mode: current operation only", operation, "delete_x",
			[]string{"mcp:write", "mcp:read", "mcp:basic"}, "mcp:basic mcp:admin"},
		{"require_scope first even when missing", cumulative, "read_x",
			[]string{"mcp:write"}, "mcp:basic mcp:read mcp:write"},
		{"rule repeats require_scope: no duplicates", operation, "write_x",
			nil, "mcp:basic mcp:write"},
		{"never offline_access", cumulative, "read_x",
			[]string{"offline_access"}, "mcp:basic mcp:read"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := tc.p.Check(need(tc.p, tc.tool), Grant{Scopes: tc.granted}, time.Now())
			if d.Outcome != InsufficientScope {
				t.Fatalf("Outcome = %v", d.Outcome)
			}
			if d.ChallengeScope != tc.want {
				t.Fatalf("ChallengeScope = %q, want %q", d.ChallengeScope, tc.want)
			}
		})
	}
	// Requirements built by the caller are filtered the same way.
	if got := operation.ChallengeScope(Requirement{Scopes: []string{"offline_access", "x", "bad scope", "x"}}, nil); got != "mcp:basic x" {
		t.Fatalf("ChallengeScope of hand-made requirement = %q", got)
	}
	// Usable for the token-less 401 as well.
	if got := cumulative.ChallengeScope(cumulative.Requirements(Request{}), nil); got != "mcp:basic" {
		t.Fatalf("ChallengeScope without token = %q", got)
	}
	// Also set on step-up challenges.
	p := mustCompile(t, Config{Tools: []Rule{{Patterns: []string{"x"}, Scopes: []string{"s"}, ACR: []string{"urn:mfa"}}}})
	d := p.Check(need(p, "x"), Grant{Scopes: []string{"s"}}, time.Now())
	if d.Outcome != InsufficientUserAuthentication || d.ChallengeScope != "s" || d.ACRValues != "urn:mfa" {
		t.Fatalf("step-up decision = %+v", d)
	}
}

func TestOutcomeString(t *testing.T) {
	if Allow.String() != "" || InsufficientScope.String() != "insufficient_scope" ||
		InsufficientUserAuthentication.String() != "insufficient_user_authentication" {
		t.Fatal("Outcome.String codes wrong")
	}
}

// TestAllocations pins the hot-path allocation behaviour the package
// promises: nothing for the usual single request, and a body-size
// independent count for inspection.
func TestAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("sync.Pool drops items at random under the race detector")
	}
	p := mustCompile(t, Config{
		RequireScope: []string{"mcp"},
		Methods:      []Rule{{Patterns: []string{"tools/call"}, Scopes: []string{"tools"}}},
		Tools:        []Rule{{Patterns: []string{"search"}, Scopes: []string{"search"}}, {Patterns: []string{"del*"}, Scopes: []string{"admin"}}},
	})
	small := []byte(call("search"))
	large := []byte(benchBody(64 << 10))
	grant := Grant{Scopes: []string{"mcp", "tools", "search"}}
	now := time.Now()

	for name, body := range map[string][]byte{"small": small, "64KiB": large} {
		if n := testing.AllocsPerRun(100, func() {
			if _, err := p.Inspect(body, "tools/call", "search"); err != nil {
				t.Fatal(err)
			}
		}); n != 0 {
			t.Errorf("Inspect %s: %v allocs, want 0", name, n)
		}
	}
	req, _ := p.Inspect(small, "", "")
	if n := testing.AllocsPerRun(100, func() {
		if d := p.Check(p.Requirements(req), grant, now); d.Outcome != Allow {
			t.Fatal(d)
		}
	}); n != 0 {
		t.Errorf("Requirements+Check: %v allocs, want 0", n)
	}
	// A tool name with no exact rule needs its own string: one allocation.
	other := []byte(call("delete_everything"))
	if n := testing.AllocsPerRun(100, func() { _, _ = p.Inspect(other, "", "") }); n != 1 {
		t.Errorf("Inspect with non-interned tool: %v allocs, want 1", n)
	}
}

// TestConcurrentUse runs the whole pipeline from several goroutines; with
// -race it checks that the compiled Policy and the scanner pool are safe to
// share.
func TestConcurrentUse(t *testing.T) {
	p := mustCompile(t, Config{
		RequireScope: []string{"mcp"},
		Tools:        []Rule{{Patterns: []string{"delete_*"}, Scopes: []string{"admin"}}},
	})
	bodies := [][]byte{
		[]byte(call("delete_x")),
		[]byte(`[` + call("a") + `,` + call("delete_y") + `]`),
		[]byte(`{"jsonrpc":"2.0","id":1,"method":"m","params":` + manyKeys(50, false) + `}`),
		[]byte(`{"jsonrpc":"2.0","id":1,"method":"m","params":{"a":1,"a":2}}`),
	}
	done := make(chan struct{})
	for g := range 4 {
		go func() {
			defer func() { done <- struct{}{} }()
			for i := range 200 {
				body := bodies[(g+i)%len(bodies)]
				req, err := p.Inspect(body, "", "")
				if err != nil {
					continue
				}
				d := p.Check(p.Requirements(req), Grant{Scopes: []string{"mcp"}}, time.Now())
				if req.Message(req.Len()-1).Tool == "delete_y" && d.Outcome != InsufficientScope {
					t.Errorf("batch with delete_y allowed: %+v", d)
				}
			}
		}()
	}
	for range 4 {
		<-done
	}
}
