package policy

import (
	"encoding/json"
	"testing"
	"time"
)

// refMessage is how a typical Go MCP server built on encoding/json would
// read a message.
type refMessage struct {
	JSONRPC string          `json:"jsonrpc"`
	Method  *string         `json:"method"`
	Params  json.RawMessage `json:"params"`
}

type refParams struct {
	Name string `json:"name"`
}

// FuzzInspect checks that Inspect never panics, never accepts what
// encoding/json considers invalid, and never disagrees with encoding/json
// about the method or tool name of a body it accepts.
func FuzzInspect(f *testing.F) {
	seeds := []string{
		call("search"),
		call("delete_user"),
		`{"jsonrpc":"2.0","method":"notifications/initialized"}`,
		`{"jsonrpc":"2.0","id":"a","result":{"x":[1,2.5e3,true,null]}}`,
		`{"jsonrpc":"2.0","id":1,"method":"tools\/call","params":{"name":"\u0064el\ud83d\ude00"}}`,
		`{"jsonrpc":"2.0","id":1,"method":"resources/read","params":{"uri":"file:///x"}}`,
		`[` + call("a") + `,{"jsonrpc":"2.0","id":2,"error":{"code":1,"message":"m"}}]`,
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a","name":"b"}}`,
		`{"jsonrpc":"2.0","id":1,"method":"tools/list","Method":"tools/call"}`,
		`{"jsonrpc":"2.0","id":1,"method":"m","params":{"a":"\ud800"}}`,
		"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"m\",\"params\":{\"a\":\"\xff\"}}",
		`{"jsonrpc":"2.0","id":1,"method":"m","params":{"a":01}}`,
		`{"jsonrpc":"2.0","id":1,"method":"m"} {}`,
		`[]`,
		`{"jsonrpc":"2.0","id":1,"method":"m","params":` + manyKeys(20, false) + `}`,
		`{"jsonrpc":"2.0","id":1,"method":"m","params":[[[[[[[[{}]]]]]]]]}`,
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	p, err := Compile(Config{
		RequireScope: []string{"mcp"},
		Methods:      []Rule{{Patterns: []string{"tools/*"}, Scopes: []string{"tools"}, ACR: []string{"urn:mfa"}}},
		Tools:        []Rule{{Patterns: []string{"search"}, Scopes: []string{"s"}}, {Patterns: []string{"del*"}, Scopes: []string{"admin"}, MaxAge: time.Minute}},
	})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := p.Inspect(body, "", "")
		if err != nil {
			return
		}
		if !json.Valid(body) {
			t.Fatalf("accepted a body encoding/json rejects: %q", body)
		}

		var refs []refMessage
		if req.Batch() {
			if err := json.Unmarshal(body, &refs); err != nil {
				t.Fatalf("accepted batch that encoding/json cannot decode: %v", err)
			}
		} else {
			var one refMessage
			if err := json.Unmarshal(body, &one); err != nil {
				t.Fatalf("accepted message that encoding/json cannot decode: %v", err)
			}
			refs = []refMessage{one}
		}
		if len(refs) != req.Len() {
			t.Fatalf("%d messages, encoding/json sees %d", req.Len(), len(refs))
		}
		for i, ref := range refs {
			m := req.Message(i)
			if ref.JSONRPC != "2.0" {
				t.Fatalf("message %d: encoding/json sees jsonrpc %q", i, ref.JSONRPC)
			}
			if m.Response != (ref.Method == nil) {
				t.Fatalf("message %d: Response=%v but encoding/json method=%v", i, m.Response, ref.Method)
			}
			if ref.Method != nil && *ref.Method != m.Method {
				t.Fatalf("message %d: method %q, encoding/json %q", i, m.Method, *ref.Method)
			}
			if m.Method == "tools/call" {
				var params refParams
				if err := json.Unmarshal(ref.Params, &params); err != nil {
					t.Fatalf("message %d: encoding/json cannot decode params: %v", i, err)
				}
				if params.Name != m.Tool {
					t.Fatalf("message %d: tool %q, encoding/json %q", i, m.Tool, params.Name)
				}
			} else if m.Tool != "" {
				t.Fatalf("message %d: tool %q outside tools/call", i, m.Tool)
			}
		}

		// Headers copied from the body must always be accepted.
		if !req.Batch() && !req.Message(0).Response {
			m := req.Message(0)
			name := ""
			if m.Method == "tools/call" {
				name = m.Tool
			}
			// An empty value means "header absent", so it proves nothing.
			if _, err := p.Inspect(body, m.Method, name); err != nil && m.Method != "" {
				t.Fatalf("headers taken from the body rejected: %v", err)
			}
		}

		// The rest of the pipeline must cope with whatever was accepted.
		need := p.Requirements(req)
		p.Check(need, Grant{Scopes: []string{"mcp"}}, time.Now())
	})
}
