package e2e

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/modelcontextprotocol/go-sdk/oauthex"
)

// exchange is one HTTP request made by a client under test.
type exchange struct {
	Method, Host, Path string
	Status             int
	// Challenge holds the parameters of a 401/403 Bearer challenge.
	Challenge map[string]string
}

// sseEvent is one server-sent event as it arrived at the client.
type sseEvent struct {
	At     time.Time
	Method string // the JSON-RPC method of a notification or request
	Result bool   // a JSON-RPC response
}

// recorder is the http.RoundTripper under the SDK client: it remembers every
// exchange and, for event streams, when each event reached the client.
// inject, if set, is added to every request.
type recorder struct {
	base   http.RoundTripper
	inject http.Header

	mu   sync.Mutex
	exs  []exchange
	sses []sseEvent
}

func newRecorder() *recorder {
	base := http.DefaultTransport.(*http.Transport).Clone()
	// The SDK waits for the standalone SSE stream's headers with a context
	// of its own: bound it here, so a gateway that holds responses back
	// fails the test instead of hanging it.
	base.ResponseHeaderTimeout = 10 * time.Second
	return &recorder{base: base}
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	if len(r.inject) > 0 {
		req = req.Clone(req.Context())
		for k, v := range r.inject {
			req.Header[k] = v
		}
	}
	resp, err := r.base.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	ex := exchange{Method: req.Method, Host: req.URL.Host, Path: req.URL.Path, Status: resp.StatusCode}
	if cs, err := oauthex.ParseWWWAuthenticate(resp.Header.Values("WWW-Authenticate")); err == nil {
		for _, c := range cs {
			if strings.EqualFold(c.Scheme, "bearer") {
				ex.Challenge = c.Params
			}
		}
	}
	r.mu.Lock()
	r.exs = append(r.exs, ex)
	r.mu.Unlock()
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		resp.Body = &sseTap{rc: resp.Body, r: r}
	}
	return resp, nil
}

// mark and since select the exchanges made after a point.
func (r *recorder) mark() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.exs)
}

func (r *recorder) since(mark int) []exchange {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]exchange(nil), r.exs[mark:]...)
}

func (r *recorder) events() []sseEvent {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]sseEvent(nil), r.sses...)
}

// sseTap passes an event stream through, timestamping each complete event
// as the client reads it.
type sseTap struct {
	rc  io.ReadCloser
	r   *recorder
	buf []byte
}

func (s *sseTap) Read(p []byte) (int, error) {
	n, err := s.rc.Read(p)
	if n > 0 {
		now := time.Now()
		s.buf = append(s.buf, p[:n]...)
		s.buf = bytes.ReplaceAll(s.buf, []byte("\r\n"), []byte("\n"))
		for {
			i := bytes.Index(s.buf, []byte("\n\n"))
			if i < 0 {
				break
			}
			ev := s.buf[:i]
			s.buf = s.buf[i+2:]
			var data []byte
			for _, line := range bytes.Split(ev, []byte("\n")) {
				if d, ok := bytes.CutPrefix(line, []byte("data:")); ok {
					data = append(data, bytes.TrimPrefix(d, []byte(" "))...)
				}
			}
			var msg struct {
				Method string          `json:"method"`
				Result json.RawMessage `json:"result"`
				Error  json.RawMessage `json:"error"`
			}
			if len(data) == 0 || json.Unmarshal(data, &msg) != nil {
				continue
			}
			s.r.mu.Lock()
			s.r.sses = append(s.r.sses, sseEvent{At: now, Method: msg.Method, Result: msg.Result != nil || msg.Error != nil})
			s.r.mu.Unlock()
		}
	}
	return n, err
}

func (s *sseTap) Close() error { return s.rc.Close() }
