package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/modelcontextprotocol/go-sdk/oauthex"

	"github.com/mcpauth/caddy-mcp-auth/internal/demostack"
	"github.com/mcpauth/caddy-mcp-auth/internal/sdkclient"
)

// tracer is an http.RoundTripper that prints one line per request and one
// per response, with the spec section behind each step of the flow. It
// never prints a token: credentials show as "<redacted N bytes>".
//
// It also remembers every exchange, so the walkthrough can check that a
// step produced the challenges it should.
type tracer struct {
	base    http.RoundTripper
	out     io.Writer
	gateway string // host:port of the gateway
	as      string // host:port of the authorization server

	mu     sync.Mutex
	events []exchange
	// passedOn: an MCP request went through the gateway (its spec note is
	// printed once).
	passedOn bool
}

// exchange is one traced request and its response.
type exchange struct {
	Server string // "gateway", "AS" or the host
	Method string
	Path   string
	RPC    string // JSON-RPC method (and tool) of a POST to the MCP endpoint
	Status int
	// WWWAuthenticate is the challenge of a 401/403, Error its error code.
	WWWAuthenticate string
	Error           string
	Params          map[string]string // parameters of the Bearer challenge
}

func newTracer(out io.Writer, st *demostack.Stack) *tracer {
	base := http.DefaultTransport.(*http.Transport).Clone()
	// Bound every wait for a response, including the SDK's standalone SSE
	// GET, which it makes with a context of its own.
	base.ResponseHeaderTimeout = 10 * time.Second
	return &tracer{
		base:    base,
		out:     out,
		gateway: hostOf(st.Gateway),
		as:      hostOf(st.Issuer),
	}
}

func hostOf(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return ""
	}
	return p.Host
}

// mark returns a position in the event list, for since.
func (t *tracer) mark() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.events)
}

// since returns the exchanges recorded after mark.
func (t *tracer) since(mark int) []exchange {
	t.mu.Lock()
	defer t.mu.Unlock()
	return slices.Clone(t.events[mark:])
}

func (t *tracer) printf(format string, args ...any) {
	t.mu.Lock()
	defer t.mu.Unlock()
	fmt.Fprintf(t.out, format, args...)
}

// RoundTrip implements http.RoundTripper.
func (t *tracer) RoundTrip(req *http.Request) (*http.Response, error) {
	ex := exchange{Method: req.Method, Path: req.URL.Path}
	switch req.URL.Host {
	case t.gateway:
		ex.Server = "gateway"
	case t.as:
		ex.Server = "AS"
	default:
		ex.Server = req.URL.Host
	}
	sent := t.describeRequest(req, &ex)
	t.printf("    → %-7s %s %s%s\n", ex.Server, req.Method, req.URL.Path, sent)

	resp, err := t.base.RoundTrip(req)
	if err != nil {
		t.printf("    ← %-7s error: %v\n", ex.Server, err)
		return nil, err
	}
	ex.Status = resp.StatusCode
	if resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden {
		ex.WWWAuthenticate = strings.Join(resp.Header.Values("WWW-Authenticate"), ", ")
		if cs, err := oauthex.ParseWWWAuthenticate(resp.Header.Values("WWW-Authenticate")); err == nil {
			for _, c := range cs {
				if strings.EqualFold(c.Scheme, "bearer") {
					ex.Params = c.Params
					ex.Error = c.Params["error"]
				}
			}
		}
	}
	got, ref := t.describeResponse(req, resp, &ex)
	if ref != "" {
		ref = "   [" + ref + "]"
	}
	t.printf("    ← %-7s %d %s%s\n", ex.Server, resp.StatusCode, got, ref)

	t.mu.Lock()
	t.events = append(t.events, ex)
	t.mu.Unlock()
	return resp, nil
}

// credential describes an Authorization header without revealing it.
func credential(h http.Header) string {
	v := h.Get("Authorization")
	if v == "" {
		return ""
	}
	scheme, rest, _ := strings.Cut(v, " ")
	return fmt.Sprintf("%s <redacted %d bytes>", scheme, len(rest))
}

func (t *tracer) describeRequest(req *http.Request, ex *exchange) string {
	var parts []string
	switch {
	case ex.Server == "gateway" && req.URL.Path == demostack.MCPPath:
		switch req.Method {
		case http.MethodPost:
			ex.RPC = rpcSummary(peekBody(req))
			parts = append(parts, ex.RPC)
		case http.MethodGet:
			parts = append(parts, "(standalone SSE stream for server messages)")
		case http.MethodDelete:
			parts = append(parts, "(end of session)")
		}
		if c := credential(req.Header); c != "" {
			parts = append(parts, "Authorization: "+c)
		} else {
			parts = append(parts, "no token")
		}
	case ex.Server == "AS" && req.URL.Path == "/authorize":
		q := req.URL.Query()
		for _, k := range []string{"response_type", "scope", "resource", "code_challenge_method", "acr_values", "max_age"} {
			if v := q.Get(k); v != "" {
				parts = append(parts, k+"="+v)
			}
		}
	case ex.Server == "AS" && req.URL.Path == "/token":
		if form, err := url.ParseQuery(string(peekBody(req))); err == nil {
			for _, k := range []string{"grant_type", "resource"} {
				if v := form.Get(k); v != "" {
					parts = append(parts, k+"="+v)
				}
			}
			if form.Has("code_verifier") {
				parts = append(parts, "code_verifier=<redacted>")
			}
		}
	case ex.Server == "AS" && req.URL.Path == "/register":
		var m struct {
			ClientName   string   `json:"client_name"`
			RedirectURIs []string `json:"redirect_uris"`
			AuthMethod   string   `json:"token_endpoint_auth_method"`
		}
		if json.Unmarshal(peekBody(req), &m) == nil {
			parts = append(parts, fmt.Sprintf("client_name=%q redirect_uris=%v", m.ClientName, m.RedirectURIs))
			if m.AuthMethod != "" {
				parts = append(parts, "token_endpoint_auth_method="+m.AuthMethod)
			}
		}
	}
	if len(parts) == 0 {
		return ""
	}
	return "  " + strings.Join(parts, "  ")
}

// describeResponse returns what came back and the spec reference for it.
func (t *tracer) describeResponse(req *http.Request, resp *http.Response, ex *exchange) (got, ref string) {
	ct, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	switch {
	case ex.Server == "gateway" && (resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden):
		got = "WWW-Authenticate: " + ex.WWWAuthenticate
		switch ex.Error {
		case "":
			ref = "RFC 9728 §5.1, MCP 2025-11-25 authorization: no token, here is where to get one"
		case "insufficient_scope":
			ref = "RFC 6750 §3.1, MCP 2025-11-25 step-up: the token lacks a scope"
		case "insufficient_user_authentication":
			ref = "RFC 9470 §3: the login behind the token is not strong or recent enough"
		case "invalid_token":
			ref = "RFC 6750 §3.1: the token is not valid here"
		default:
			ref = "RFC 6750 §3"
		}
	case ex.Server == "gateway" && strings.HasPrefix(req.URL.Path, "/.well-known/oauth-protected-resource"):
		var m struct {
			Resource string   `json:"resource"`
			AS       []string `json:"authorization_servers"`
			Scopes   []string `json:"scopes_supported"`
		}
		if readJSON(resp, &m) {
			got = fmt.Sprintf("resource=%s authorization_servers=%v scopes_supported=%v", m.Resource, m.AS, m.Scopes)
		}
		ref = "RFC 9728 §3: Protected Resource Metadata"
	case ex.Server == "gateway" && req.URL.Path == demostack.MCPPath:
		switch ct {
		case "text/event-stream":
			got = "text/event-stream (SSE)"
		case "":
			got = ""
		default:
			got = ct
		}
		if resp.StatusCode < 300 && req.Method == http.MethodPost {
			t.mu.Lock()
			if !t.passedOn {
				t.passedOn = true
				ref = "MCP 2025-11-25 Streamable HTTP: valid token, so the gateway passed the request on, without the Authorization header"
			}
			t.mu.Unlock()
		}
	case ex.Server == "AS" && strings.HasPrefix(req.URL.Path, "/.well-known/"):
		var m struct {
			Issuer   string   `json:"issuer"`
			PKCE     []string `json:"code_challenge_methods_supported"`
			Register string   `json:"registration_endpoint"`
		}
		if readJSON(resp, &m) {
			got = fmt.Sprintf("issuer=%s code_challenge_methods_supported=%v registration_endpoint=%s", m.Issuer, m.PKCE, m.Register)
		}
		if strings.HasSuffix(req.URL.Path, "openid-configuration") {
			ref = "OpenID Connect Discovery 1.0 §4"
		} else {
			ref = "RFC 8414 §3: Authorization Server Metadata"
		}
	case ex.Server == "AS" && req.URL.Path == "/register":
		var m struct {
			ClientID   string `json:"client_id"`
			AuthMethod string `json:"token_endpoint_auth_method"`
			Error      string `json:"error"`
		}
		if readJSON(resp, &m) {
			got = fmt.Sprintf("client_id=%s token_endpoint_auth_method=%s", m.ClientID, m.AuthMethod)
			if m.Error != "" {
				got = "error=" + m.Error
			}
		}
		ref = "RFC 7591 §3: Dynamic Client Registration, a public client"
	case ex.Server == "AS" && req.URL.Path == "/authorize":
		if loc, err := url.Parse(resp.Header.Get("Location")); err == nil && loc.String() != "" {
			q := loc.Query()
			loc.RawQuery = ""
			got = "redirect to " + loc.String()
			if q.Has("code") {
				got += "?code=<redacted>&state=…"
			}
			if e := q.Get("error"); e != "" {
				got += " error=" + e + " " + q.Get("error_description")
			}
			got += "   (auto-approved: devas has no login page)"
		}
		ref = "OAuth 2.1 §4.1 code flow with PKCE S256, RFC 8707 resource"
		if req.URL.Query().Has("acr_values") {
			ref += ", RFC 9470 acr_values"
		}
	case ex.Server == "AS" && req.URL.Path == "/token":
		var m struct {
			AccessToken  string `json:"access_token"`
			RefreshToken string `json:"refresh_token"`
			TokenType    string `json:"token_type"`
			ExpiresIn    int    `json:"expires_in"`
			Scope        string `json:"scope"`
			Error        string `json:"error"`
		}
		if readJSON(resp, &m) {
			if m.Error != "" {
				got = "error=" + m.Error
				break
			}
			got = fmt.Sprintf("access_token <redacted %d bytes>, token_type=%s, expires_in=%d", len(m.AccessToken), m.TokenType, m.ExpiresIn)
			if m.RefreshToken != "" {
				got += ", refresh_token <redacted>"
			}
			if c, err := sdkclient.DecodeClaims(m.AccessToken); err == nil {
				got += fmt.Sprintf("; its claims: sub=%s aud=%s scope=%q acr=%s", c.Subject, strings.Join(c.Audiences(), ","), c.Scope, c.ACR)
			}
		}
		ref = "OAuth 2.1 §4.1.3; a JWT access token, RFC 9068, with aud = the resource"
	}
	if got == "" {
		got = http.StatusText(resp.StatusCode)
	}
	return got, ref
}

// peekBody returns a request's body without consuming it.
func peekBody(req *http.Request) []byte {
	if req.Body == nil || req.Body == http.NoBody {
		return nil
	}
	if req.GetBody != nil {
		if rc, err := req.GetBody(); err == nil {
			defer rc.Close()
			b, _ := io.ReadAll(io.LimitReader(rc, 1<<20))
			return b
		}
	}
	b, _ := io.ReadAll(req.Body)
	req.Body = io.NopCloser(bytes.NewReader(b))
	return b
}

// readJSON decodes a small JSON response body and puts it back for the
// caller.
func readJSON(resp *http.Response, v any) bool {
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(b))
	return err == nil && json.Unmarshal(b, v) == nil
}

// rpcSummary names the JSON-RPC message(s) in a POST body, e.g.
// "tools/call deploy".
func rpcSummary(body []byte) string {
	type msg struct {
		Method string `json:"method"`
		Params struct {
			Name string `json:"name"`
		} `json:"params"`
	}
	one := func(m msg) string {
		switch {
		case m.Method == "":
			return "(response)"
		case m.Method == "tools/call" && m.Params.Name != "":
			return "tools/call " + m.Params.Name
		}
		return m.Method
	}
	var m msg
	if json.Unmarshal(body, &m) == nil {
		return one(m)
	}
	var batch []msg
	if json.Unmarshal(body, &batch) == nil {
		var names []string
		for _, m := range batch {
			names = append(names, one(m))
		}
		return "[" + strings.Join(names, ", ") + "]"
	}
	return "(unparsed body)"
}
