package policy

import (
	"errors"
	"slices"
	"strings"
	"unicode/utf8"
)

// Patterns in method and tool rules are matched against the name the MCP
// server will dispatch on, byte for byte and case-sensitively. The syntax is
// deliberately small:
//
//	*   any run of characters, including none
//	?   exactly one character (one Unicode code point, not one byte)
//	\*  \?  \\   the literal character
//
// There are no character classes: '[' and ']' are ordinary characters. Two
// wildcards are enough for tool and method names, and leaving classes out
// avoids the path.Match surprise where `read_[a-z]*` means something other
// than it looks like. A pattern without wildcards is an exact name.

// globTokKind tells a literal run apart from the two wildcards.
type globTokKind uint8

const (
	tokLiteral globTokKind = iota
	tokAnyRun              // *
	tokAnyOne              // ?
)

type globTok struct {
	kind globTokKind
	lit  string // for tokLiteral: the unescaped text
}

// glob is a compiled pattern.
type glob struct {
	src      string    // the pattern as written, for error messages
	toks     []globTok // empty for exact patterns
	exact    bool      // no wildcards; name holds the unescaped text
	name     string    // unescaped text when exact
	literals int       // number of literal code points: the specificity
}

// parseGlob compiles a pattern. It rejects patterns that could never match
// an acceptable name (control characters, invalid UTF-8) so that a typo in
// the config is an error instead of a rule that silently never applies.
func parseGlob(src string) (glob, error) {
	g := glob{src: src}
	if src == "" {
		return g, errors.New("empty pattern")
	}
	if !utf8.ValidString(src) {
		return g, errors.New("pattern is not valid UTF-8")
	}
	if hasControl(src) {
		return g, errors.New("pattern contains a control character")
	}
	var lit strings.Builder
	flush := func() {
		if lit.Len() > 0 {
			g.toks = append(g.toks, globTok{kind: tokLiteral, lit: lit.String()})
			lit.Reset()
		}
	}
	wild := false
	for i := 0; i < len(src); {
		c := src[i]
		switch c {
		case '\\':
			if i+1 >= len(src) {
				return g, errors.New("pattern ends with a lone backslash")
			}
			next := src[i+1]
			if next != '*' && next != '?' && next != '\\' {
				return g, errors.New(`backslash may only escape *, ? or \`)
			}
			lit.WriteByte(next)
			g.literals++
			i += 2
		case '*':
			flush()
			wild = true
			// Consecutive stars are equivalent to one; collapsing them keeps
			// the matcher's backtracking bounded by the number of star groups.
			if n := len(g.toks); n == 0 || g.toks[n-1].kind != tokAnyRun {
				g.toks = append(g.toks, globTok{kind: tokAnyRun})
			}
			i++
		case '?':
			flush()
			wild = true
			g.toks = append(g.toks, globTok{kind: tokAnyOne})
			i++
		default:
			_, size := utf8.DecodeRuneInString(src[i:])
			lit.WriteString(src[i : i+size])
			g.literals++
			i += size
		}
	}
	flush()
	if !wild {
		g.exact = true
		if len(g.toks) == 1 {
			g.name = g.toks[0].lit
		}
		g.toks = nil
	}
	return g, nil
}

// match reports whether name matches the pattern. It is the classic
// iterative wildcard algorithm: on a mismatch it retries from the most recent
// star, consuming one more character of name. Because only the latest star is
// ever revisited, the worst case is O(len(name) * len(pattern)) with no
// recursion, whatever the input.
func (g *glob) match(name string) bool {
	if g.exact {
		return name == g.name
	}
	toks := g.toks
	ti, ni := 0, 0
	starTi, starNi := -1, 0
	for ti < len(toks) || ni < len(name) {
		if ti < len(toks) {
			t := &toks[ti]
			switch t.kind {
			case tokAnyRun:
				starTi, starNi = ti, ni
				ti++
				continue
			case tokAnyOne:
				if ni < len(name) {
					_, size := utf8.DecodeRuneInString(name[ni:])
					ni += size
					ti++
					continue
				}
			case tokLiteral:
				if strings.HasPrefix(name[ni:], t.lit) {
					ni += len(t.lit)
					ti++
					continue
				}
			}
		}
		if starTi >= 0 && starNi < len(name) {
			_, size := utf8.DecodeRuneInString(name[starNi:])
			starNi += size
			ti, ni = starTi+1, starNi
			continue
		}
		return false
	}
	return true
}

// matcher selects the most specific rule for a name among the patterns of
// one directive (all `method` rules, or all `tool` rules).
//
// Specificity: an exact pattern beats every glob; among globs the one with
// more literal (non-wildcard) characters wins; remaining ties go to the rule
// declared first (and within a rule, the pattern written first).
type matcher struct {
	exact map[string]int // exact name -> rule index
	globs []globEntry    // sorted most specific first
}

type globEntry struct {
	g     glob
	rule  int
	order int // declaration order across all patterns, for stable ties
}

func (m *matcher) empty() bool { return len(m.exact) == 0 && len(m.globs) == 0 }

// add registers one pattern for rule index rule. It returns an error for a
// pattern already registered: the later copy could never be selected, which
// is almost certainly a config mistake.
func (m *matcher) add(g glob, rule int) error {
	if g.exact {
		if m.exact == nil {
			m.exact = make(map[string]int)
		}
		if _, dup := m.exact[g.name]; dup {
			return errors.New("pattern " + quote(g.src) + " is already used by an earlier rule")
		}
		m.exact[g.name] = rule
		return nil
	}
	for i := range m.globs {
		if m.globs[i].g.src == g.src {
			return errors.New("pattern " + quote(g.src) + " is already used by an earlier rule")
		}
	}
	m.globs = append(m.globs, globEntry{g: g, rule: rule, order: len(m.globs)})
	return nil
}

// finish orders globs by specificity once all patterns are added.
func (m *matcher) finish() {
	slices.SortStableFunc(m.globs, func(a, b globEntry) int {
		if a.g.literals != b.g.literals {
			return b.g.literals - a.g.literals
		}
		return a.order - b.order
	})
}

// match returns the index of the most specific rule matching name, or -1.
func (m *matcher) match(name string) int {
	if r, ok := m.exact[name]; ok {
		return r
	}
	for i := range m.globs {
		if m.globs[i].g.match(name) {
			return m.globs[i].rule
		}
	}
	return -1
}

// hasControl reports whether s contains a C0 control, DEL or a C1 control
// (U+0000-U+001F, U+007F-U+009F). s must be valid UTF-8.
func hasControl[T string | []byte](s T) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c == 0x7f {
			return true
		}
		// C1 controls are encoded as C2 80 .. C2 9F.
		if c == 0xc2 && i+1 < len(s) && s[i+1] >= 0x80 && s[i+1] <= 0x9f {
			return true
		}
	}
	return false
}
