package policy

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

// testPolicy has one rule of each kind so that Inspect runs with interning
// and without.
func testPolicy(t testing.TB) *Policy {
	t.Helper()
	p, err := Compile(Config{
		RequireScope: []string{"mcp"},
		Methods:      []Rule{{Patterns: []string{"resources/read"}, Scopes: []string{"mcp:read"}}},
		Tools:        []Rule{{Patterns: []string{"search"}, Scopes: []string{"mcp:search"}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func call(tool string) string {
	return `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"` + tool + `","arguments":{}}}`
}

func nest(depth int) string {
	return strings.Repeat("[", depth) + strings.Repeat("]", depth)
}

func manyKeys(n int, dup bool) string {
	var b strings.Builder
	b.WriteString("{")
	for i := range n {
		if i > 0 {
			b.WriteString(",")
		}
		b.WriteString(`"k` + string(rune('a'+i%26)) + string(rune('a'+i/26)) + `":` + "1")
	}
	if dup {
		b.WriteString(`,"kaa":2`)
	}
	b.WriteString("}")
	return b.String()
}

func TestInspectMalformed(t *testing.T) {
	p := testPolicy(t)
	const env = `"jsonrpc":"2.0","id":1`
	cases := []struct{ name, body string }{
		// Shape of the body.
		{"empty", ``},
		{"whitespace only", " \n\t "},
		{"top-level string", `"tools/call"`},
		{"top-level number", `1`},
		{"top-level null", `null`},
		{"trailing garbage", `{` + env + `,"method":"ping"} x`},
		{"two objects", `{` + env + `,"method":"ping"}{` + env + `,"method":"ping"}`},
		{"leading BOM", "\xef\xbb\xbf{" + env + `,"method":"ping"}`},
		{"empty batch", `[]`},
		{"empty batch with space", `[ ]`},
		{"batch of number", `[1]`},
		{"nested batch", `[[{` + env + `,"method":"ping"}]]`},
		{"batch with string element", `[{` + env + `,"method":"ping"},"x"]`},
		{"batch with bad element", `[{` + env + `,"method":"ping"},{"jsonrpc":"1.0","method":"ping"}]`},
		{"batch trailing comma", `[{` + env + `,"method":"ping"},]`},
		{"unterminated object", `{` + env},
		{"unterminated batch", `[{` + env + `,"method":"ping"}`},

		// Duplicate keys, at every depth and spelling.
		{"duplicate method", `{` + env + `,"method":"tools/list","method":"tools/call"}`},
		{"duplicate jsonrpc", `{` + env + `,"jsonrpc":"2.0","method":"ping"}`},
		{"duplicate id", `{` + env + `,"id":2,"method":"ping"}`},
		{"duplicate params", `{` + env + `,"method":"tools/call","params":{"name":"a"},"params":{"name":"b"}}`},
		{"duplicate name in params", `{` + env + `,"method":"tools/call","params":{"name":"search","name":"delete"}}`},
		{"duplicate in arguments", `{` + env + `,"method":"tools/call","params":{"name":"a","arguments":{"x":1,"x":2}}}`},
		{"duplicate deep", `{` + env + `,"method":"m","params":{"a":[{"b":{"c":1,"c":1}}]}}`},
		{"duplicate via escape", `{` + env + `,"method":"m","params":{"a":1,"\u0061":2}}`},
		{"duplicate method via escape", `{` + env + `,"method":"ping","\u006dethod":"tools/call"}`},
		{"duplicate via surrogate escape", `{` + env + `,"method":"m","params":{"😀":1,"\ud83d\ude00":2}}`},
		{"duplicate in large object", `{` + env + `,"method":"m","params":` + manyKeys(40, true) + `}`},
		{"duplicate in response", `{` + env + `,"result":{"a":1,"a":1}}`},

		// Case variants that case-insensitive decoders map onto members.
		{"Method", `{` + env + `,"Method":"tools/call","params":{"name":"x"}}`},
		{"METHOD besides method", `{` + env + `,"method":"ping","METHOD":"tools/call"}`},
		{"JSONRPC", `{"JSONRPC":"2.0","jsonrpc":"2.0","id":1,"method":"ping"}`},
		{"Params", `{` + env + `,"method":"tools/call","params":{"name":"a"},"Params":{"name":"b"}}`},
		{"params with long s", `{` + env + `,"method":"tools/call","params":{"name":"a"},"paramſ":{"name":"b"}}`},
		{"escaped case variant", `{` + env + `,"method":"ping","\u004dethod":"tools/call"}`},
		{"Result", `{` + env + `,"method":"ping","Result":1}`},
		{"Name in params", `{` + env + `,"method":"tools/call","params":{"name":"search","Name":"delete"}}`},
		{"NAME alone in params", `{` + env + `,"method":"prompts/get","params":{"NAME":"p"}}`},
		{"URI in params", `{` + env + `,"method":"resources/read","params":{"uri":"a","URI":"b"}}`},

		// Encoding.
		{"invalid UTF-8 in value", "{" + env + `,"method":"m","params":{"a":"\xff"}}`},
		{"invalid UTF-8 in key", "{" + env + `,"method":"m","params":{"\xfe":1}}`},
		{"invalid UTF-8 in method", "{" + env + `,"method":"tools/call\xc3"}`},
		{"truncated UTF-8 at end of string", "{" + env + `,"method":"m","params":{"a":"x\xe2\x82"}}`},
		{"overlong UTF-8", "{" + env + `,"method":"m","params":{"a":"\xc0\xaf"}}`},
		{"UTF-8 encoded surrogate", "{" + env + `,"method":"m","params":{"a":"\xed\xa0\x80"}}`},
		{"lone high surrogate escape", `{` + env + `,"method":"m","params":{"a":"\ud800"}}`},
		{"lone low surrogate escape", `{` + env + `,"method":"m","params":{"a":"\udc00"}}`},
		{"high surrogate then letter", `{` + env + `,"method":"m","params":{"a":"\ud800\u0041"}}`},
		{"high surrogate then high", `{` + env + `,"method":"m","params":{"a":"\ud800\ud800"}}`},
		{"high surrogate at end of input", `{` + env + `,"method":"m","params":{"a":"\ud800`},
		{"lone surrogate in tool name", `{` + env + `,"method":"tools/call","params":{"name":"a\udfff"}}`},
		{"bad escape", `{` + env + `,"method":"m","params":{"a":"\x"}}`},
		{"short unicode escape", `{` + env + `,"method":"m","params":{"a":"\u12"}}`},
		{"non-hex unicode escape", `{` + env + `,"method":"m","params":{"a":"\u12g4"}}`},
		{"raw tab in string", "{" + env + `,"method":"m","params":{"a":"x` + "\t" + `y"}}`},
		{"raw newline in string", "{" + env + `,"method":"m","params":{"a":"x` + "\n" + `"}}`},
		{"unterminated string", `{` + env + `,"method":"m","params":{"a":"xxxxxxxxxxxxxxxxxxxx`},
		{"single quotes", `{'jsonrpc':'2.0','method':'ping'}`},

		// JSON-RPC envelope.
		{"missing jsonrpc", `{"id":1,"method":"ping"}`},
		{"jsonrpc 1.0", `{"jsonrpc":"1.0","id":1,"method":"ping"}`},
		{"jsonrpc number", `{"jsonrpc":2.0,"id":1,"method":"ping"}`},
		{"jsonrpc with space", `{"jsonrpc":"2.0 ","id":1,"method":"ping"}`},
		{"no method, no result", `{` + env + `}`},
		{"empty object", `{}`},
		{"method number", `{` + env + `,"method":1}`},
		{"method null", `{` + env + `,"method":null}`},
		{"method array", `{` + env + `,"method":["tools/call"]}`},
		{"method number in a response", `{` + env + `,"method":1,"result":{}}`},
		{"method and result", `{` + env + `,"method":"ping","result":{}}`},
		{"method and error", `{` + env + `,"method":"ping","error":{}}`},
		{"result and error", `{` + env + `,"result":{},"error":{}}`},
		{"params string", `{` + env + `,"method":"ping","params":"x"}`},
		{"params null", `{` + env + `,"method":"ping","params":null}`},
		{"params number", `{` + env + `,"method":"ping","params":1}`},
		{"id object", `{"jsonrpc":"2.0","id":{},"method":"ping"}`},
		{"id bool", `{"jsonrpc":"2.0","id":true,"method":"ping"}`},
		{"tools/call without params", `{` + env + `,"method":"tools/call"}`},
		{"tools/call with array params", `{` + env + `,"method":"tools/call","params":["search"]}`},
		{"tools/call without name", `{` + env + `,"method":"tools/call","params":{"arguments":{}}}`},
		{"tools/call name number", `{` + env + `,"method":"tools/call","params":{"name":1}}`},
		{"tools/call name null", `{` + env + `,"method":"tools/call","params":{"name":null}}`},
		{"escaped tools/call without name", `{` + env + `,"method":"tools\/call","params":{}}`},

		// Control characters in names.
		{"NUL in method", `{` + env + `,"method":"ping\u0000"}`},
		{"US in method", `{` + env + `,"method":"\u001fping"}`},
		{"DEL in method", "{" + env + `,"method":"pi` + "\x7f" + `ng"}`},
		{"escaped DEL in method", `{` + env + `,"method":"ping\u007f"}`},
		{"C1 in method", `{` + env + `,"method":"ping\u0085"}`},
		{"raw C1 in method", "{" + env + `,"method":"ping` + "\xc2\x9f" + `"}`},
		{"newline in tool", `{` + env + `,"method":"tools/call","params":{"name":"search\n"}}`},
		{"C1 in tool", `{` + env + `,"method":"tools/call","params":{"name":"se\u0080arch"}}`},

		// Numbers and literals.
		{"leading zero", `{` + env + `,"method":"m","params":{"a":01}}`},
		{"bare minus", `{` + env + `,"method":"m","params":{"a":-}}`},
		{"trailing dot", `{` + env + `,"method":"m","params":{"a":1.}}`},
		{"leading dot", `{` + env + `,"method":"m","params":{"a":.5}}`},
		{"plus sign", `{` + env + `,"method":"m","params":{"a":+1}}`},
		{"empty exponent", `{` + env + `,"method":"m","params":{"a":1e}}`},
		{"signed empty exponent", `{` + env + `,"method":"m","params":{"a":1e+}}`},
		{"hex", `{` + env + `,"method":"m","params":{"a":0x10}}`},
		{"NaN", `{` + env + `,"method":"m","params":{"a":NaN}}`},
		{"Infinity", `{` + env + `,"method":"m","params":{"a":-Infinity}}`},
		{"number at end of input", `{` + env + `,"method":"m","params":{"a":1`},
		{"minus at end of input", `{` + env + `,"method":"m","params":{"a":-`},
		{"id leading zero", `{"jsonrpc":"2.0","id":00,"method":"ping"}`},
		{"tru", `{` + env + `,"method":"m","params":{"a":tru}}`},
		{"True", `{` + env + `,"method":"m","params":{"a":True}}`},
		{"nul at end", `{` + env + `,"method":"m","params":{"a":nul`},
		{"truex", `{` + env + `,"method":"m","params":{"a":truex}}`},
		{"nuLL", `{` + env + `,"method":"m","params":{"a":nuLL}}`},
		{"trUe in array", `{` + env + `,"method":"m","params":[trUe]}`},

		// Syntax.
		{"trailing comma in object", `{` + env + `,"method":"ping",}`},
		{"trailing comma in array", `{` + env + `,"method":"m","params":[1,]}`},
		{"missing colon", `{` + env + `,"method" "ping"}`},
		{"missing comma", `{` + env + ` "method":"ping"}`},
		{"number key", `{` + env + `,1:"ping"}`},
		{"missing value", `{` + env + `,"method":}`},
		{"comment", `{` + env + `,/*x*/"method":"ping"}`},
		{"nesting 129", `{` + env + `,"method":"m","params":` + nest(maxDepth) + `}`},
		{"deep objects", `{` + env + `,"method":"m","params":` + strings.Repeat(`{"a":`, maxDepth) + `1` + strings.Repeat(`}`, maxDepth) + `}`},
		{"vertical tab whitespace", "{" + env + ",\v" + `"method":"ping"}`},
		{"NBSP whitespace", "{" + env + ",\u00a0" + `"method":"ping"}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := p.Inspect([]byte(tc.body), "", "")
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("Inspect(%q) error = %v, want ErrMalformed", tc.body, err)
			}
			var ie *InspectError
			if !errors.As(err, &ie) || ie.Reason == "" {
				t.Fatalf("error %v is not an *InspectError with a reason", err)
			}
		})
	}
}

func TestInspectAccepts(t *testing.T) {
	p := testPolicy(t)
	const env = `"jsonrpc":"2.0","id":1`
	type m = Message
	cases := []struct {
		name  string
		body  string
		want  []Message
		batch bool
	}{
		{"tools/call", call("search"), []m{{Method: "tools/call", Tool: "search"}}, false},
		{"unknown tool", call("delete_all"), []m{{Method: "tools/call", Tool: "delete_all"}}, false},
		{"params before method", `{"params":{"arguments":{"name":"x"},"name":"search"},` + env + `,"method":"tools/call"}`,
			[]m{{Method: "tools/call", Tool: "search"}}, false},
		{"escaped method and tool", `{` + env + `,"method":"tools\/call","params":{"name":"\u0064elete\u005fall"}}`,
			[]m{{Method: "tools/call", Tool: "delete_all"}}, false},
		{"escaped member names", `{"\u006asonrpc":"2.0","\u0069d":1,"\u006dethod":"ping"}`, []m{{Method: "ping"}}, false},
		{"surrogate pair in tool", `{` + env + `,"method":"tools/call","params":{"name":"\ud83d\ude00"}}`,
			[]m{{Method: "tools/call", Tool: "😀"}}, false},
		{"raw UTF-8 in tool", `{` + env + `,"method":"tools/call","params":{"name":"wetter_über_∑"}}`,
			[]m{{Method: "tools/call", Tool: "wetter_über_∑"}}, false},
		{"empty tool name", `{` + env + `,"method":"tools/call","params":{"name":""}}`,
			[]m{{Method: "tools/call", Tool: ""}}, false},
		{"notification", `{"jsonrpc":"2.0","method":"notifications/initialized"}`, []m{{Method: "notifications/initialized"}}, false},
		{"custom method", `{` + env + `,"method":"x/custom","params":[1,2]}`, []m{{Method: "x/custom"}}, false},
		{"resources/read", `{` + env + `,"method":"resources/read","params":{"uri":"file:///a"}}`, []m{{Method: "resources/read"}}, false},
		{"string id", `{"jsonrpc":"2.0","id":"abc","method":"ping"}`, []m{{Method: "ping"}}, false},
		{"null id", `{"jsonrpc":"2.0","id":null,"method":"ping"}`, []m{{Method: "ping"}}, false},
		{"negative float id", `{"jsonrpc":"2.0","id":-1.5e3,"method":"ping"}`, []m{{Method: "ping"}}, false},
		{"response result", `{` + env + `,"result":{"roots":[]}}`, []m{{Response: true}}, false},
		{"response error", `{` + env + `,"error":{"code":-32601,"message":"no"}}`, []m{{Response: true}}, false},
		{"tool name not string outside tools/call", `{` + env + `,"method":"prompts/get","params":{"name":{"x":1}}}`,
			[]m{{Method: "prompts/get"}}, false},
		{"whitespace everywhere", " \r\n\t{ \"jsonrpc\" : \"2.0\" , \"method\" :\n\"ping\" , \"params\" : { } , \"id\" : 7 }\n ",
			[]m{{Method: "ping"}}, false},
		{"case variants inside arguments", `{` + env + `,"method":"tools/call","params":{"name":"search","arguments":{"name":1,"Name":2,"METHOD":3}}}`,
			[]m{{Method: "tools/call", Tool: "search"}}, false},
		{"unknown members", `{` + env + `,"method":"ping","_meta":{"x":[true,false,null]},"extra":"y"}`, []m{{Method: "ping"}}, false},
		{"numbers", `{` + env + `,"method":"m","params":{"a":[0,-0,1.5,1e10,1E+2,-3.25e-7,123456789012345678901234567890]}}`,
			[]m{{Method: "m"}}, false},
		{"escapes in values", `{` + env + `,"method":"m","params":{"a":"\"\\\/\b\f\n\r\t\u0000\u00e9"}}`, []m{{Method: "m"}}, false},
		{"nesting 128", `{` + env + `,"method":"m","params":` + nest(maxDepth-1) + `}`, []m{{Method: "m"}}, false},
		{"large object without duplicates", `{` + env + `,"method":"m","params":` + manyKeys(100, false) + `}`, []m{{Method: "m"}}, false},
		{"keys equal up to escapes differ", `{` + env + `,"method":"m","params":{"a":1,"\u0062":2,"a\/":3,"a/b":4}}`, []m{{Method: "m"}}, false},
		{"same key in sibling objects", `{` + env + `,"method":"m","params":{"a":{"k":1},"b":{"k":2},"c":[{"k":1},{"k":2}]}}`,
			[]m{{Method: "m"}}, false},
		{"batch", `[` + call("search") + `,{"jsonrpc":"2.0","method":"notifications/initialized"},{"jsonrpc":"2.0","id":9,"result":{}}]`,
			[]m{{Method: "tools/call", Tool: "search"}, {Method: "notifications/initialized"}, {Response: true}}, true},
		{"batch of one", `[ ` + call("x") + ` ]`, []m{{Method: "tools/call", Tool: "x"}}, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req, err := p.Inspect([]byte(tc.body), "", "")
			if err != nil {
				t.Fatalf("Inspect(%q): %v", tc.body, err)
			}
			var got []Message
			for i := range req.Len() {
				got = append(got, req.Message(i))
			}
			if !slices.Equal(got, tc.want) || req.Batch() != tc.batch {
				t.Fatalf("got %+v batch=%v, want %+v batch=%v", got, req.Batch(), tc.want, tc.batch)
			}
		})
	}
}

func TestInspectHeaders(t *testing.T) {
	p := testPolicy(t)
	const env = `"jsonrpc":"2.0","id":1`
	read := `{` + env + `,"method":"resources/read","params":{"uri":"file:///a b"}}`
	prompt := `{` + env + `,"method":"prompts/get","params":{"name":"greet"}}`
	unicode := `{` + env + `,"method":"tools/call","params":{"name":"wetter_\u00fcber"}}`
	cases := []struct {
		name, body, hdrMethod, hdrName string
		want                           error
	}{
		{"no headers", call("search"), "", "", nil},
		{"method matches", call("search"), "tools/call", "", nil},
		{"method and name match", call("search"), "tools/call", "search", nil},
		{"method differs", call("search"), "tools/list", "", ErrHeaderMismatch},
		{"method differs in case", call("search"), "Tools/Call", "", ErrHeaderMismatch},
		{"method matches escaped body", `{` + env + `,"method":"tools\/call","params":{"name":"s\u0065arch"}}`, "tools/call", "search", nil},
		{"name differs", call("search"), "tools/call", "delete", ErrHeaderMismatch},
		{"name only, differs", call("search"), "", "delete", ErrHeaderMismatch},
		{"name with trailing space", call("search"), "", "search ", ErrHeaderMismatch},
		{"uri matches", read, "resources/read", "file:///a b", nil},
		{"uri differs", read, "resources/read", "file:///b", ErrHeaderMismatch},
		{"prompt name matches", prompt, "prompts/get", "greet", nil},
		{"prompt name differs", prompt, "prompts/get", "other", ErrHeaderMismatch},
		{"prompt without name", `{` + env + `,"method":"prompts/get","params":{}}`, "prompts/get", "greet", ErrHeaderMismatch},
		{"read with array params", `{` + env + `,"method":"resources/read","params":["file:///a"]}`, "", "file:///a", ErrHeaderMismatch},
		{"read with non-string uri", `{` + env + `,"method":"resources/read","params":{"uri":1}}`, "", "1", ErrHeaderMismatch},
		{"name on method without one", `{` + env + `,"method":"tools/list"}`, "tools/list", "x", ErrHeaderMismatch},
		{"base64 name matches", unicode, "tools/call", "=?base64?d2V0dGVyX8O8YmVy?=", nil},
		{"base64 name without padding", `{` + env + `,"method":"tools/call","params":{"name":"ab"}}`, "", "=?base64?YWI?=", nil},
		{"base64 name with padding", `{` + env + `,"method":"tools/call","params":{"name":"ab"}}`, "", "=?base64?YWI=?=", nil},
		{"base64 name differs", unicode, "tools/call", "=?base64?d2V0dGVy?=", ErrHeaderMismatch},
		{"base64 invalid", unicode, "tools/call", "=?base64?***?=", ErrHeaderMismatch},
		{"raw non-ASCII header", unicode, "tools/call", "wetter_über", nil},
		{"sentinel taken literally is not decoded", `{` + env + `,"method":"tools/call","params":{"name":"=?base64?YWI?="}}`, "", "=?base64?YWI?=", ErrHeaderMismatch},
		{"header on response", `{` + env + `,"result":{}}`, "ping", "", ErrHeaderMismatch},
		{"method header on batch", `[` + call("search") + `]`, "tools/call", "", ErrHeaderMismatch},
		{"name header on batch", `[` + call("search") + `]`, "", "search", ErrHeaderMismatch},
		{"malformed wins over mismatch", `{` + env + `,"method":"ping","method":"ping"}`, "other", "", ErrMalformed},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := p.Inspect([]byte(tc.body), tc.hdrMethod, tc.hdrName)
			if tc.want == nil {
				if err != nil {
					t.Fatalf("unexpected error %v", err)
				}
				return
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("error = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestInspectTooLarge(t *testing.T) {
	p, err := Compile(Config{MaxBody: 100, Tools: []Rule{{Patterns: []string{"*"}, Scopes: []string{"s"}}}})
	if err != nil {
		t.Fatal(err)
	}
	small := call("a")
	if _, err := p.Inspect([]byte(small), "", ""); err != nil {
		t.Fatalf("small body: %v", err)
	}
	big := call(strings.Repeat("a", 100))
	if _, err := p.Inspect([]byte(big), "", ""); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("big body: error = %v, want ErrTooLarge", err)
	}
}

// TestStringFastPath moves each special byte across the 8-byte word
// boundaries of the SWAR loop, so an off-by-one there shows up.
func TestStringFastPath(t *testing.T) {
	p := testPolicy(t)
	specials := []struct {
		insert string
		ok     bool
	}{
		{`\"`, true}, {`\\`, true}, {`\u00e9`, true}, {"é", true}, {"😀", true},
		{"\x1f", false}, {"\x00", false}, {"\x7f", false}, {`\u0085`, false}, {"\xff", false}, {"\xe9", false}, {"\xc3(", false}, {"\xc1\xbf", false}, {"\xc3", false}, {"\xc3\xa9", true}, {"\xdf\xbf", true}, {`\q`, false}, {`\ud800`, false},
	}
	for _, sp := range specials {
		for pre := range 20 {
			for post := range 12 {
				v := strings.Repeat("a", pre) + sp.insert + strings.Repeat("b", post)
				body := `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"` + v + `"}}`
				_, err := p.Inspect([]byte(body), "", "")
				if sp.ok && err != nil {
					t.Fatalf("insert %q at %d+%d: %v", sp.insert, pre, post, err)
				}
				if !sp.ok && !errors.Is(err, ErrMalformed) {
					t.Fatalf("insert %q at %d+%d: error = %v, want ErrMalformed", sp.insert, pre, post, err)
				}
				// And as the tail of the body, where fewer than 8 bytes remain.
				tail := `{"jsonrpc":"2.0","id":1,"method":"x","params":{"a":"` + v
				if _, err := p.Inspect([]byte(tail), "", ""); !errors.Is(err, ErrMalformed) {
					t.Fatalf("unterminated %q: error = %v", tail, err)
				}
			}
		}
	}
}

func TestSpecialMask(t *testing.T) {
	// Exhaustive over each byte value in each lane, with a plain background.
	for lane := range 8 {
		for c := range 256 {
			var w [8]byte
			for i := range w {
				w[i] = 'a'
			}
			w[lane] = byte(c)
			var x uint64
			for i := 7; i >= 0; i-- {
				x = x<<8 | uint64(w[i])
			}
			special := c == '"' || c == '\\' || c < 0x20 || c >= 0x80
			m := specialMask(x)
			if special != (m != 0) {
				t.Fatalf("byte %#x lane %d: mask %#x", c, lane, m)
			}
			if special && lowestLane(m) != lane {
				t.Fatalf("byte %#x lane %d: lowest flagged lane %d", c, lane, lowestLane(m))
			}
		}
	}
	// Borrow from a low special lane must not hide it, whatever is above.
	for c := range 256 {
		for hi := range 256 {
			x := uint64(byte(c)) | uint64(hi)<<8 | 0x6161616161610000
			special := c == '"' || c == '\\' || c < 0x20 || c >= 0x80
			if special && lowestLane(specialMask(x)) != 0 {
				t.Fatalf("bytes %#x %#x: wrong lane", c, hi)
			}
			hiSpecial := hi == '"' || hi == '\\' || hi < 0x20 || hi >= 0x80
			if !special && hiSpecial && lowestLane(specialMask(x)) != 1 {
				t.Fatalf("bytes %#x %#x: wrong lane", c, hi)
			}
			if !special && !hiSpecial && specialMask(x) != 0 {
				t.Fatalf("bytes %#x %#x: false positive", c, hi)
			}
		}
	}
}

func lowestLane(m uint64) int {
	for i := range 8 {
		if m>>(8*i+7)&1 == 1 {
			return i
		}
	}
	return -1
}

func TestAppendUnescaped(t *testing.T) {
	cases := map[string]string{
		`plain`:                    "plain",
		`a\"b\\c\/d`:               `a"b\c/d`,
		`\b\f\n\r\t`:               "\b\f\n\r\t",
		`\u0041\u00e9\u20ac`:       "Aé€",
		`\ud83d\ude00x`:            "😀x",
		`\uD83D\uDE00`:             "😀",
		`x\u0000y`:                 "x\x00y",
		`é\n😀`:                     "é\n😀",
		`\\u0041`:                  `\u0041`,
		`\ud83d\ude00\ud83d\ude00`: "😀😀",
	}
	for in, want := range cases {
		if got := string(appendUnescaped(nil, []byte(in))); got != want {
			t.Errorf("appendUnescaped(%q) = %q, want %q", in, got, want)
		}
	}
}
