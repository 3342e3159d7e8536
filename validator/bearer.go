package validator

// Credential is what an Authorization header value holds.
type Credential uint8

const (
	// NoBearer: empty, or a scheme other than Bearer (Basic, DPoP, ...).
	NoBearer Credential = iota
	// BearerToken: "Bearer" followed by a syntactically valid token68.
	BearerToken
	// BearerMalformed: "Bearer" with nothing, or something that is not a
	// token68 (RFC 6750 §2.1, RFC 9110 §11.2).
	BearerMalformed
)

var token68 = func() (t [256]bool) {
	for c := 'A'; c <= 'Z'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for _, c := range "-._~+/" {
		t[c] = true
	}
	return t
}()

// IsToken68 reports whether s is a token68 (RFC 9110 §11.2), the syntax of
// a bearer token (RFC 6750 §2.1).
func IsToken68(s string) bool {
	i := 0
	for i < len(s) && token68[s[i]] {
		i++
	}
	for i < len(s) && s[i] == '=' {
		i++
	}
	return i > 0 && i == len(s)
}

// ParseAuthorization reads one Authorization header value. The scheme is
// matched case-insensitively (RFC 9110 §11.1); it is separated from the
// token by one or more spaces; trailing spaces and tabs are ignored. It does
// not allocate: the token is a substring of v.
func ParseAuthorization(v string) (string, Credential) {
	const scheme = "bearer"
	if len(v) < len(scheme) {
		return "", NoBearer
	}
	for i := 0; i < len(scheme); i++ {
		c := v[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != scheme[i] {
			return "", NoBearer
		}
	}
	rest := v[len(scheme):]
	if rest == "" {
		return "", BearerMalformed
	}
	if rest[0] != ' ' {
		// "Bearerx ..." is another scheme.
		return "", NoBearer
	}
	for len(rest) > 0 && rest[0] == ' ' {
		rest = rest[1:]
	}
	for len(rest) > 0 && (rest[len(rest)-1] == ' ' || rest[len(rest)-1] == '\t') {
		rest = rest[:len(rest)-1]
	}
	if rest == "" {
		return "", BearerMalformed
	}
	if !IsToken68(rest) {
		return "", BearerMalformed
	}
	return rest, BearerToken
}
