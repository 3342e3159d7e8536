package mcpauth

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"io"
	"net/http"
	"strings"
	"sync"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// Session binding (bind_sessions). The backend's Mcp-Session-Id is sealed
// with an HMAC over the token's issuer and subject before it reaches the
// client: "<backend id>.<mac>". A later request presenting the session
// must carry a token of the same issuer and subject, or it gets 404, as if
// the session did not exist (MCP security best practices: bind session IDs
// to user-specific information). No state is kept, so several Caddy
// instances sharing session_key can sit behind one load balancer.

const sessionHeader = "Mcp-Session-Id"

type sessionBinder struct{ key []byte }

func newSessionBinder(secret string) sessionBinder {
	var k [32]byte
	if secret == "" {
		k = processSessionKey()
	} else {
		k = sha256.Sum256([]byte(secret))
	}
	return sessionBinder{key: k[:]}
}

var (
	processKeyOnce sync.Once
	processKey     [32]byte
)

// processSessionKey is generated once per process, so sessions survive
// config reloads; set session_key to share sessions across instances or
// restarts.
func processSessionKey() [32]byte {
	processKeyOnce.Do(func() {
		if _, err := io.ReadFull(rand.Reader, processKey[:]); err != nil {
			panic("mcp_auth: no randomness for the session key: " + err.Error())
		}
	})
	return processKey
}

func (b sessionBinder) mac(iss, sub, id string) string {
	m := hmac.New(sha256.New, b.key)
	_, _ = io.WriteString(m, iss)
	_, _ = m.Write([]byte{0})
	_, _ = io.WriteString(m, sub)
	_, _ = m.Write([]byte{0})
	_, _ = io.WriteString(m, id)
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func (b sessionBinder) seal(iss, sub, id string) string {
	return id + "." + b.mac(iss, sub, id)
}

// open returns the backend session id if sealed was made for iss and sub.
func (b sessionBinder) open(iss, sub, sealed string) (string, bool) {
	i := strings.LastIndexByte(sealed, '.')
	if i <= 0 {
		return "", false
	}
	id, tag := sealed[:i], sealed[i+1:]
	return id, hmac.Equal([]byte(tag), []byte(b.mac(iss, sub, id)))
}

// sealingWriter seals the Mcp-Session-Id response header before the
// headers go out. It keeps streaming working: flushes go straight through.
type sealingWriter struct {
	*caddyhttp.ResponseWriterWrapper
	seal        func(string) string
	wroteHeader bool
}

func (w *sealingWriter) sealHeader() {
	if id := w.Header().Get(sessionHeader); id != "" {
		w.Header().Set(sessionHeader, w.seal(id))
	}
}

func (w *sealingWriter) WriteHeader(code int) {
	if w.wroteHeader {
		w.ResponseWriterWrapper.WriteHeader(code)
		return
	}
	if code >= 200 {
		w.wroteHeader = true
		w.sealHeader()
	}
	w.ResponseWriterWrapper.WriteHeader(code)
}

func (w *sealingWriter) Write(b []byte) (int, error) {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	return w.ResponseWriterWrapper.Write(b)
}

func (w *sealingWriter) ReadFrom(r io.Reader) (int64, error) {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	return w.ResponseWriterWrapper.ReadFrom(r)
}

func (w *sealingWriter) Flush() {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	_ = http.NewResponseController(w.ResponseWriterWrapper.ResponseWriter).Flush()
}
