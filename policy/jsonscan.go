package policy

import (
	"bytes"
	"encoding/binary"
	"math/bits"
	"slices"
	"sync"
	"unicode/utf16"
	"unicode/utf8"
)

// This file holds a strict, single-pass JSON scanner. It exists because the
// policy decision is only as good as the agreement between what this gateway
// reads from the body and what the MCP server behind it reads. encoding/json
// silently accepts duplicate keys (last wins), invalid UTF-8 (replaced with
// U+FFFD) and lone surrogate escapes; other parsers take the first duplicate,
// or fail. Any input two parsers can read differently is a way to get a tool
// call past the policy under one name and executed under another, so the
// scanner rejects all of it instead of picking an interpretation.
//
// The scanner never builds a tree. It validates every byte, remembers the
// byte ranges of the few members the policy needs, and skips the rest. Its
// only growing state is a stack of object keys (for duplicate detection) and
// an arena for keys that contain escapes; both are reused through a
// sync.Pool, so steady-state allocations do not depend on body size.

// maxDepth bounds nesting of objects and arrays. The scanner recurses once
// per level, so this also bounds its stack use. MCP messages nest a handful
// of levels; tool arguments can be deeper, but 128 is far beyond real use.
const maxDepth = 128

// linearDupMax is the largest object checked for duplicate keys by pairwise
// comparison. Almost all JSON objects have few keys, and comparing a handful
// of short byte slices is cheaper than sorting. Larger objects sort the key
// references and compare neighbours, which is O(k log k).
const linearDupMax = 16

// keyRef locates the decoded text of one object key: in the body when the
// key has no escapes (the common case, no copy needed), else in the arena.
type keyRef struct {
	off, n int
	arena  bool
}

// span is the raw content (between the quotes) of a JSON string in the body.
type span struct {
	start, end int
	esc        bool // contains backslash escapes and must be decoded
}

type valueKind uint8

const (
	kindAbsent valueKind = iota
	kindString
	kindOther
)

// rawMsg records what the scanner saw in one JSON-RPC message object.
type rawMsg struct {
	offset     int // of the opening brace, for error messages
	jsonrpc    span
	method     span
	name, uri  span // params.name and params.uri
	nameKind   valueKind
	uriKind    valueKind
	paramsKind byte // 0 when absent, '{' or '['
	hasJSONRPC bool
	hasMethod  bool
	hasResult  bool
	hasError   bool
}

type scanner struct {
	data    []byte
	pos     int
	depth   int
	keys    []keyRef // keys of all currently open objects, innermost last
	arena   []byte   // decoded escaped keys of open objects
	scratch []byte   // decoded names; valid until the next decode
}

var scannerPool = sync.Pool{New: func() any { return new(scanner) }}

func getScanner(data []byte) *scanner {
	s := scannerPool.Get().(*scanner)
	s.data = data
	s.pos = 0
	s.depth = 0
	s.keys = s.keys[:0]
	s.arena = s.arena[:0]
	return s
}

func putScanner(s *scanner) {
	s.data = nil // do not keep the request body alive
	// A pathological body can grow the buffers a lot; do not let one such
	// request pin that memory in the pool forever.
	if cap(s.keys) > 4096 {
		s.keys = nil
	}
	if cap(s.arena) > 64<<10 {
		s.arena = nil
	}
	if cap(s.scratch) > 64<<10 {
		s.scratch = nil
	}
	scannerPool.Put(s)
}

func (s *scanner) fail(reason string) error {
	return &InspectError{Err: ErrMalformed, Offset: s.pos, Reason: reason}
}

func (s *scanner) skipWS() {
	for s.pos < len(s.data) {
		switch s.data[s.pos] {
		case ' ', '\t', '\n', '\r':
			s.pos++
		default:
			return
		}
	}
}

// peek returns the current byte, or 0 at the end of input (0 is never valid
// JSON outside strings, so callers can treat it as "unexpected").
func (s *scanner) peek() byte {
	if s.pos < len(s.data) {
		return s.data[s.pos]
	}
	return 0
}

func (s *scanner) enter() error {
	s.depth++
	if s.depth > maxDepth {
		return s.fail("nesting too deep")
	}
	return nil
}

// value validates and skips any JSON value.
func (s *scanner) value() error {
	switch c := s.peek(); c {
	case '{':
		return s.object()
	case '[':
		return s.array()
	case '"':
		_, err := s.str()
		return err
	case 't':
		return s.literal("true")
	case 'f':
		return s.literal("false")
	case 'n':
		return s.literal("null")
	case 0:
		if s.pos >= len(s.data) {
			return s.fail("unexpected end of input")
		}
		return s.fail("unexpected character")
	default:
		if c == '-' || (c >= '0' && c <= '9') {
			return s.number()
		}
		return s.fail("unexpected character")
	}
}

func (s *scanner) literal(want string) error {
	if !bytes.HasPrefix(s.data[s.pos:], []byte(want)) {
		return s.fail("invalid literal")
	}
	s.pos += len(want)
	return nil
}

// number validates the RFC 8259 number grammar:
// -? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?
// What follows the number is checked by the caller, which expects a
// delimiter; that is what rejects "01" or "1x".
func (s *scanner) number() error {
	d, i := s.data, s.pos
	if i < len(d) && d[i] == '-' {
		i++
	}
	switch {
	case i < len(d) && d[i] == '0':
		i++
	case i < len(d) && d[i] >= '1' && d[i] <= '9':
		i = skipDigits(d, i+1)
	default:
		s.pos = i
		return s.fail("invalid number")
	}
	if i < len(d) && d[i] == '.' {
		j := skipDigits(d, i+1)
		if j == i+1 {
			s.pos = j
			return s.fail("invalid number")
		}
		i = j
	}
	if i < len(d) && (d[i] == 'e' || d[i] == 'E') {
		i++
		if i < len(d) && (d[i] == '+' || d[i] == '-') {
			i++
		}
		j := skipDigits(d, i)
		if j == i {
			s.pos = j
			return s.fail("invalid number")
		}
		i = j
	}
	s.pos = i
	return nil
}

func skipDigits(d []byte, i int) int {
	for i < len(d) && d[i] >= '0' && d[i] <= '9' {
		i++
	}
	return i
}

// SWAR constants: one byte repeated in every lane of a uint64.
const (
	lanes01 = 0x0101010101010101
	lanes80 = 0x8080808080808080
)

// specialMask flags, in the high bit of each byte lane, the bytes of w that
// end the fast path of string scanning: '"', '\\', controls below 0x20 and
// any byte >= 0x80 (start of a multi-byte UTF-8 sequence, which must be
// validated). The classic "has zero byte" trick can set false flags, but
// only in lanes above a true one (through the subtraction borrow), so the
// lowest flagged lane is always exact. That is all the caller uses.
func specialMask(w uint64) uint64 {
	q := w ^ (lanes01 * '"')
	b := w ^ (lanes01 * '\\')
	return (((q - lanes01) & ^q) |
		((b - lanes01) & ^b) |
		((w - lanes01*0x20) & ^w) |
		w) & lanes80
}

// str validates the string starting at s.pos (which must be '"') and leaves
// s.pos after the closing quote. It rejects raw control characters, invalid
// escapes, invalid UTF-8 (including UTF-8-encoded surrogates, which
// utf8.DecodeRune treats as invalid) and unpaired UTF-16 surrogate escapes.
func (s *scanner) str() (span, error) {
	d := s.data
	i := s.pos + 1
	sp := span{start: i}
	for {
		// Fast path: eight plain ASCII bytes per iteration.
		for i+8 <= len(d) {
			if m := specialMask(binary.LittleEndian.Uint64(d[i:])); m != 0 {
				i += bits.TrailingZeros64(m) >> 3
				break
			}
			i += 8
		}
		if i >= len(d) {
			s.pos = i
			return sp, s.fail("unterminated string")
		}
		switch c := d[i]; {
		case c == '"':
			sp.end = i
			s.pos = i + 1
			return sp, nil
		case c == '\\':
			sp.esc = true
			n, reason := escapeLen(d, i)
			if reason != "" {
				s.pos = i
				return sp, s.fail(reason)
			}
			i += n
		case c < 0x20:
			s.pos = i
			return sp, s.fail("control character in string")
		case c < utf8.RuneSelf:
			i++ // only reached in the last < 8 bytes of input
		case c >= 0xc2 && c <= 0xdf && i+1 < len(d) && d[i+1]&0xc0 == 0x80:
			// Two-byte sequence (Latin accents, Greek, Cyrillic, ...): the
			// lead byte range already excludes overlong forms, so checking
			// the continuation byte is a complete validation.
			i += 2
		default:
			r, size := utf8.DecodeRune(d[i:])
			if r == utf8.RuneError && size == 1 {
				s.pos = i
				return sp, s.fail("invalid UTF-8")
			}
			i += size
		}
	}
}

// escapeLen validates the escape sequence at d[i] (a backslash) and returns
// its length, or a reason it is invalid. A \u escape for a high surrogate
// must be immediately followed by one for a low surrogate; a lone surrogate
// has no Unicode scalar value, and parsers disagree about it (encoding/json
// substitutes U+FFFD, others keep the code unit or fail), so it is rejected.
func escapeLen(d []byte, i int) (int, string) {
	if i+1 >= len(d) {
		return 0, "unterminated string"
	}
	switch d[i+1] {
	case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
		return 2, ""
	case 'u':
		r, ok := hex4(d, i+2)
		if !ok {
			return 0, `invalid \u escape`
		}
		switch {
		case r >= 0xd800 && r < 0xdc00:
			if i+12 > len(d) || d[i+6] != '\\' || d[i+7] != 'u' {
				return 0, "unpaired surrogate escape"
			}
			lo, ok := hex4(d, i+8)
			if !ok || lo < 0xdc00 || lo > 0xdfff {
				return 0, "unpaired surrogate escape"
			}
			return 12, ""
		case r >= 0xdc00 && r <= 0xdfff:
			return 0, "unpaired surrogate escape"
		}
		return 6, ""
	}
	return 0, "invalid escape"
}

// hex4 decodes four hex digits at d[i:].
func hex4(d []byte, i int) (rune, bool) {
	if i+4 > len(d) {
		return 0, false
	}
	var r rune
	for _, c := range d[i : i+4] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c -= 'a' - 10
		case c >= 'A' && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

// appendUnescaped appends the decoded form of raw string content that str
// has already validated.
func appendUnescaped(dst, raw []byte) []byte {
	for len(raw) > 0 {
		j := bytes.IndexByte(raw, '\\')
		if j < 0 {
			return append(dst, raw...)
		}
		dst = append(dst, raw[:j]...)
		raw = raw[j:]
		switch c := raw[1]; c {
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'u':
			r, _ := hex4(raw, 2)
			if utf16.IsSurrogate(r) {
				lo, _ := hex4(raw, 8)
				r = utf16.DecodeRune(r, lo)
				raw = raw[6:]
			}
			dst = utf8.AppendRune(dst, r)
			raw = raw[6:]
			continue
		default: // '"', '\\', '/'
			dst = append(dst, c)
		}
		raw = raw[2:]
	}
	return dst
}

// decode returns the decoded bytes of sp: a sub-slice of the body when there
// are no escapes, else the scanner's scratch buffer (valid until the next
// call).
func (s *scanner) decode(sp span) []byte {
	raw := s.data[sp.start:sp.end]
	if !sp.esc {
		return raw
	}
	s.scratch = appendUnescaped(s.scratch[:0], raw)
	return s.scratch
}

// afterMember consumes the separator after an object member or array
// element: ',' (more follows) or the closing byte (done).
func (s *scanner) afterMember(closing byte) (done bool, err error) {
	s.skipWS()
	switch s.peek() {
	case ',':
		s.pos++
		s.skipWS()
		return false, nil
	case closing:
		s.pos++
		return true, nil
	}
	if s.pos >= len(s.data) {
		return false, s.fail("unexpected end of input")
	}
	if closing == '}' {
		return false, s.fail("expected ',' or '}'")
	}
	return false, s.fail("expected ',' or ']'")
}

func (s *scanner) array() error {
	if err := s.enter(); err != nil {
		return err
	}
	s.pos++ // '['
	s.skipWS()
	if s.peek() == ']' {
		s.pos++
		s.depth--
		return nil
	}
	for {
		if err := s.value(); err != nil {
			return err
		}
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

// objectFrame remembers where the keys of an object start, so they can be
// checked for duplicates and dropped when the object closes.
type objectFrame struct{ keys, arena int }

func (s *scanner) openObject() (objectFrame, error) {
	if err := s.enter(); err != nil {
		return objectFrame{}, err
	}
	s.pos++ // '{'
	s.skipWS()
	return objectFrame{keys: len(s.keys), arena: len(s.arena)}, nil
}

func (s *scanner) closeObject(f objectFrame) error {
	if err := s.checkDuplicates(f.keys); err != nil {
		return err
	}
	s.keys = s.keys[:f.keys]
	s.arena = s.arena[:f.arena]
	s.depth--
	return nil
}

// object validates and skips an object whose members the policy ignores.
func (s *scanner) object() error {
	f, err := s.openObject()
	if err != nil {
		return err
	}
	if s.peek() == '}' {
		s.pos++
		return s.closeObject(f)
	}
	for {
		if _, err := s.key(); err != nil {
			return err
		}
		if err := s.value(); err != nil {
			return err
		}
		done, err := s.afterMember('}')
		if err != nil {
			return err
		}
		if done {
			return s.closeObject(f)
		}
	}
}

// key scans an object key and the ':' after it, records the key for
// duplicate detection and returns its decoded text. The returned slice
// aliases the body or the arena and is valid until the enclosing object
// closes (later keys may move the arena, so use it right away).
func (s *scanner) key() ([]byte, error) {
	if s.peek() != '"' {
		return nil, s.fail("expected string key")
	}
	sp, err := s.str()
	if err != nil {
		return nil, err
	}
	k := keyRef{off: sp.start, n: sp.end - sp.start}
	if sp.esc {
		off := len(s.arena)
		s.arena = appendUnescaped(s.arena, s.data[sp.start:sp.end])
		k = keyRef{off: off, n: len(s.arena) - off, arena: true}
	}
	s.keys = append(s.keys, k)
	s.skipWS()
	if s.peek() != ':' {
		return nil, s.fail("expected ':' after object key")
	}
	s.pos++
	s.skipWS()
	return s.keyBytes(k), nil
}

func (s *scanner) keyBytes(k keyRef) []byte {
	if k.arena {
		return s.arena[k.off : k.off+k.n]
	}
	return s.data[k.off : k.off+k.n]
}

// checkDuplicates reports an error if two keys of the innermost object,
// compared after unescaping ("a" and "\u0061" are the same key), are equal.
func (s *scanner) checkDuplicates(from int) error {
	keys := s.keys[from:]
	if len(keys) < 2 {
		return nil
	}
	if len(keys) <= linearDupMax {
		for i := 1; i < len(keys); i++ {
			ki := s.keyBytes(keys[i])
			for j := 0; j < i; j++ {
				if bytes.Equal(ki, s.keyBytes(keys[j])) {
					return s.fail("duplicate object key")
				}
			}
		}
		return nil
	}
	// The references are dropped when the object closes, so sorting them
	// in place is free of side effects.
	slices.SortFunc(keys, func(a, b keyRef) int {
		return bytes.Compare(s.keyBytes(a), s.keyBytes(b))
	})
	for i := 1; i < len(keys); i++ {
		if bytes.Equal(s.keyBytes(keys[i-1]), s.keyBytes(keys[i])) {
			return s.fail("duplicate object key")
		}
	}
	return nil
}

// envelopeKeys are the JSON-RPC members the policy reads or that decide how
// a server classifies the message.
var envelopeKeys = [...]string{"jsonrpc", "method", "params", "id", "result", "error"}

// foldsToAny reports whether key equals one of names under Unicode case
// folding. encoding/json matches struct fields case-insensitively (with
// folding, so "ſ" matches "s" and the Kelvin sign matches "k"), so a Go
// backend would read {"Method": "x"} as method "x" while this scanner, being
// case-sensitive like the JSON-RPC spec, would see no method at all. Keys
// that fold to a member the policy depends on are therefore rejected.
func foldsToAny(key []byte, names []string) bool {
	for _, n := range names {
		if bytes.EqualFold(key, []byte(n)) {
			return true
		}
	}
	return false
}

// message scans one JSON-RPC message object, recording the members the
// policy needs into m and validating everything else.
func (s *scanner) message(m *rawMsg) error {
	m.offset = s.pos
	f, err := s.openObject()
	if err != nil {
		return err
	}
	if s.peek() == '}' {
		s.pos++
		return s.closeObject(f)
	}
	for {
		k, err := s.key()
		if err != nil {
			return err
		}
		switch string(k) {
		case "jsonrpc":
			if s.peek() != '"' {
				return s.fail(`"jsonrpc" must be a string`)
			}
			m.hasJSONRPC = true
			m.jsonrpc, err = s.str()
		case "method":
			if s.peek() != '"' {
				return s.fail(`"method" must be a string`)
			}
			m.hasMethod = true
			m.method, err = s.str()
		case "params":
			switch s.peek() {
			case '{':
				err = s.params(m)
			case '[':
				m.paramsKind = '['
				err = s.array()
			default:
				return s.fail(`"params" must be an object or an array`)
			}
		case "id":
			// JSON-RPC 2.0: an id is a string, a number or null.
			if c := s.peek(); c != '"' && c != 'n' && c != '-' && (c < '0' || c > '9') {
				return s.fail(`"id" must be a string, number or null`)
			}
			err = s.value()
		case "result":
			m.hasResult = true
			err = s.value()
		case "error":
			m.hasError = true
			err = s.value()
		default:
			if foldsToAny(k, envelopeKeys[:]) {
				return s.fail("member name differs only in case from a JSON-RPC member")
			}
			err = s.value()
		}
		if err != nil {
			return err
		}
		done, err := s.afterMember('}')
		if err != nil {
			return err
		}
		if done {
			return s.closeObject(f)
		}
	}
}

var paramKeys = [...]string{"name", "uri"}

// params scans a params object, recording top-level "name" and "uri".
func (s *scanner) params(m *rawMsg) error {
	m.paramsKind = '{'
	f, err := s.openObject()
	if err != nil {
		return err
	}
	if s.peek() == '}' {
		s.pos++
		return s.closeObject(f)
	}
	for {
		k, err := s.key()
		if err != nil {
			return err
		}
		switch string(k) {
		case "name":
			if s.peek() == '"' {
				m.nameKind = kindString
				m.name, err = s.str()
			} else {
				m.nameKind = kindOther
				err = s.value()
			}
		case "uri":
			if s.peek() == '"' {
				m.uriKind = kindString
				m.uri, err = s.str()
			} else {
				m.uriKind = kindOther
				err = s.value()
			}
		default:
			if foldsToAny(k, paramKeys[:]) {
				return s.fail("params member name differs only in case from \"name\" or \"uri\"")
			}
			err = s.value()
		}
		if err != nil {
			return err
		}
		done, err := s.afterMember('}')
		if err != nil {
			return err
		}
		if done {
			return s.closeObject(f)
		}
	}
}
