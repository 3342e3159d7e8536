package policy

import (
	"bytes"
	"encoding/base64"
	"errors"
	"strconv"
	"strings"
)

// Errors returned by Inspect, to be tested with errors.Is. Details come
// wrapped in an *InspectError.
var (
	// ErrMalformed: the body is not one strictly valid JSON-RPC 2.0 message
	// or batch of messages. Respond 400 with error="invalid_request".
	ErrMalformed = errors.New("malformed JSON-RPC body")
	// ErrHeaderMismatch: the Mcp-Method or Mcp-Name header disagrees with
	// the body (MCP 2026-07-28 "Server Validation"). Respond 400.
	ErrHeaderMismatch = errors.New("request header does not match the JSON-RPC body")
	// ErrTooLarge: the body is longer than MaxBody. The caller should read
	// at most MaxBody+1 bytes and may report this itself; Inspect returns it
	// when given such a body. Respond 413.
	ErrTooLarge = errors.New("request body too large to inspect")
)

// InspectError describes why Inspect rejected a body.
type InspectError struct {
	Err    error  // ErrMalformed or ErrHeaderMismatch
	Offset int    // byte offset in the body near the problem; -1 for header errors
	Reason string // short, fixed English text; never contains body bytes
}

func (e *InspectError) Error() string {
	if e.Offset < 0 {
		return e.Err.Error() + ": " + e.Reason
	}
	return e.Err.Error() + " at byte " + strconv.Itoa(e.Offset) + ": " + e.Reason
}

func (e *InspectError) Unwrap() error { return e.Err }

func malformedAt(offset int, reason string) error {
	return &InspectError{Err: ErrMalformed, Offset: offset, Reason: reason}
}

func mismatch(reason string) error {
	return &InspectError{Err: ErrHeaderMismatch, Offset: -1, Reason: reason}
}

// Message is what the policy extracted from one JSON-RPC message.
type Message struct {
	// Method is the JSON-RPC method, unescaped; empty for responses.
	Method string
	// Tool is params.name of a tools/call request; empty otherwise.
	Tool string
	// Response is set for a JSON-RPC response sent by the client (an answer
	// to a server request in protocol revisions that had them).
	Response bool
}

// Request is the result of Inspect: the messages of one body. The zero
// Request stands for "body not inspected" and needs only require_scope.
type Request struct {
	// The first message is stored inline so that the usual single-message
	// body costs no allocation.
	first Message
	more  []Message
	n     int
	batch bool
}

// Len returns the number of messages.
func (r Request) Len() int { return r.n }

// Batch reports whether the body was a JSON array (a 2025-03-26 batch),
// even one with a single element.
func (r Request) Batch() bool { return r.batch }

// Message returns message i; it panics unless 0 <= i < Len().
func (r Request) Message(i int) Message {
	if i == 0 && r.n > 0 {
		return r.first
	}
	return r.more[i-1]
}

func (r *Request) add(m Message) {
	if r.n == 0 {
		r.first = m
	} else {
		r.more = append(r.more, m)
	}
	r.n++
}

// knownMethods are interned so that extracting the method of an ordinary
// MCP message does not allocate a string.
var knownMethods = [...]string{
	"initialize", "ping", "server/discover",
	"tools/list", "tools/call",
	"resources/list", "resources/templates/list", "resources/read",
	"resources/subscribe", "resources/unsubscribe",
	"prompts/list", "prompts/get",
	"completion/complete", "logging/setLevel",
	"subscriptions/listen",
	"tasks/get", "tasks/result", "tasks/list", "tasks/cancel",
	"notifications/initialized", "notifications/cancelled",
	"notifications/progress", "notifications/roots/list_changed",
}

// intern returns b as a string, reusing a string from names when possible.
// The map lookup with string(b) does not allocate.
func intern(names map[string]string, b []byte) string {
	if s, ok := names[string(b)]; ok {
		return s
	}
	return string(b)
}

func buildInterns(p *Policy) {
	p.methodNames = make(map[string]string, len(knownMethods)+len(p.methods.exact))
	for _, m := range knownMethods {
		p.methodNames[m] = m
	}
	for name := range p.methods.exact {
		p.methodNames[name] = name
	}
	p.toolNames = make(map[string]string, len(p.tools.exact))
	for name := range p.tools.exact {
		p.toolNames[name] = name
	}
}

// Inspect parses a request body strictly and returns its messages.
//
// The body must be one JSON-RPC 2.0 message object, or a non-empty array of
// them (a 2025-03-26 batch; every element counts). Anything that two JSON
// parsers could read differently is ErrMalformed: duplicate keys at any
// depth (also when spelled with different escapes), invalid UTF-8, escaped
// lone surrogates such as "\ud800", data after the value, nesting deeper
// than 128, and member names that differ from "jsonrpc", "method",
// "params", "id", "result", "error" (or, inside params, "name" and "uri")
// only by case, which case-insensitive decoders such as encoding/json would
// treat as those members. Messages must have "jsonrpc": "2.0"; requests and
// notifications a string "method", an object or array "params" if any, and
// for tools/call a string params.name; client responses no method and
// exactly one of result and error. Method and tool names must not contain
// control characters (U+0000-U+001F, U+007F-U+009F).
//
// hdrMethod and hdrName are the Mcp-Method and Mcp-Name header values
// ("" when absent). When present they must equal the body's method and,
// respectively, params.name (tools/call, prompts/get) or params.uri
// (resources/read), after decoding the "=?base64?...?=" form; Mcp-Name on
// any other method, and either header on a batch (batches do not exist in
// the revision that defines the headers), is ErrHeaderMismatch. Whether
// the headers are required is left to the caller, which knows the
// negotiated protocol version.
func (p *Policy) Inspect(body []byte, hdrMethod, hdrName string) (Request, error) {
	if int64(len(body)) > p.maxBody {
		return Request{}, ErrTooLarge
	}
	s := getScanner(body)
	defer putScanner(s)

	var req Request
	var single rawMsg // spans of a non-batch message, for the header check
	s.skipWS()
	switch s.peek() {
	case '{':
		if err := s.message(&single); err != nil {
			return Request{}, err
		}
		msg, err := p.finishMessage(s, &single)
		if err != nil {
			return Request{}, err
		}
		req.add(msg)
	case '[':
		req.batch = true
		if err := p.batch(s, &req); err != nil {
			return Request{}, err
		}
	default:
		if s.pos >= len(body) {
			return Request{}, s.fail("empty body")
		}
		return Request{}, s.fail("body is not a JSON object or array")
	}
	s.skipWS()
	if s.pos != len(body) {
		return Request{}, s.fail("data after the JSON value")
	}

	if hdrMethod == "" && hdrName == "" {
		return req, nil
	}
	if req.batch {
		return Request{}, mismatch("Mcp-Method and Mcp-Name headers cannot describe a batch")
	}
	if err := checkHeaders(s, &single, &req.first, hdrMethod, hdrName); err != nil {
		return Request{}, err
	}
	return req, nil
}

func (p *Policy) batch(s *scanner, req *Request) error {
	if err := s.enter(); err != nil {
		return err
	}
	s.pos++ // '['
	s.skipWS()
	if s.peek() == ']' {
		return s.fail("empty batch")
	}
	for {
		if s.peek() != '{' {
			return s.fail("batch element is not an object")
		}
		var m rawMsg
		if err := s.message(&m); err != nil {
			return err
		}
		msg, err := p.finishMessage(s, &m)
		if err != nil {
			return err
		}
		req.add(msg)
		done, err := s.afterMember(']')
		if err != nil {
			return err
		}
		if done {
			s.depth--
			return nil
		}
	}
}

// finishMessage applies the JSON-RPC rules to one scanned message and
// extracts its names.
func (p *Policy) finishMessage(s *scanner, m *rawMsg) (Message, error) {
	var msg Message
	if !m.hasJSONRPC || string(s.decode(m.jsonrpc)) != "2.0" {
		return msg, malformedAt(m.offset, `"jsonrpc" must be "2.0"`)
	}
	if !m.hasMethod {
		// A response from the client. It carries no operation, so it needs
		// only require_scope; but it must really be a response, or a
		// server could still find something to execute in it.
		if m.hasResult == m.hasError {
			return msg, malformedAt(m.offset, "message has no method and not exactly one of result and error")
		}
		msg.Response = true
		return msg, nil
	}
	if m.hasResult || m.hasError {
		return msg, malformedAt(m.offset, "message has both a method and a result or error")
	}
	b := s.decode(m.method)
	if hasControl(b) {
		return msg, malformedAt(m.offset, "method name contains a control character")
	}
	msg.Method = intern(p.methodNames, b)
	if msg.Method == "tools/call" {
		if m.paramsKind != '{' || m.nameKind != kindString {
			return msg, malformedAt(m.offset, `tools/call needs a string "name" in object "params"`)
		}
		b = s.decode(m.name)
		if hasControl(b) {
			return msg, malformedAt(m.offset, "tool name contains a control character")
		}
		msg.Tool = intern(p.toolNames, b)
	}
	return msg, nil
}

func checkHeaders(s *scanner, m *rawMsg, msg *Message, hdrMethod, hdrName string) error {
	if hdrMethod != "" {
		if msg.Response || !headerMatches(hdrMethod, s.decode(m.method)) {
			return mismatch("Mcp-Method header does not match the method in the body")
		}
	}
	if hdrName == "" {
		return nil
	}
	var sp span
	var kind valueKind
	switch msg.Method {
	case "tools/call", "prompts/get":
		sp, kind = m.name, m.nameKind
	case "resources/read":
		sp, kind = m.uri, m.uriKind
	default:
		// The revision that defines Mcp-Name sends it for these three
		// methods only. For anything else we cannot say what it should
		// match, and an unverifiable header is what the check exists to
		// stop, so it is refused rather than passed on.
		return mismatch("Mcp-Name header is not defined for this method")
	}
	if m.paramsKind != '{' || kind != kindString || !headerMatches(hdrName, s.decode(sp)) {
		return mismatch("Mcp-Name header does not match the name in the body")
	}
	return nil
}

// Header values that cannot be sent as plain ASCII are transmitted as
// "=?base64?<standard base64 of the UTF-8 value>?=" (MCP 2026-07-28,
// Streamable HTTP "Value Encoding"); a plain value that happens to look like
// that is itself encoded by the client, so the form is unambiguous.
const (
	b64Prefix = "=?base64?"
	b64Suffix = "?="
)

// headerMatches compares a header value with the decoded body value.
func headerMatches(h string, v []byte) bool {
	if len(h) >= len(b64Prefix)+len(b64Suffix) &&
		strings.HasPrefix(h, b64Prefix) && strings.HasSuffix(h, b64Suffix) {
		// Padding is optional for the comparison: whether or not the client
		// padded, the decoded bytes are what must agree.
		enc := strings.TrimRight(h[len(b64Prefix):len(h)-len(b64Suffix)], "=")
		dec, err := base64.RawStdEncoding.DecodeString(enc)
		return err == nil && bytes.Equal(dec, v)
	}
	return h == string(v)
}
