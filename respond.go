package mcpauth

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// JSON-RPC error codes used in rejection bodies. -32600 and -32020 are
// defined by JSON-RPC 2.0 and MCP (2026-07-28 HeaderMismatch); the others
// are in the range JSON-RPC leaves to implementations.
const (
	rpcInvalidRequest     = -32600
	rpcHeaderMismatch     = -32020
	rpcUnauthorized       = -32001
	rpcInsufficientScope  = -32003
	rpcInsufficientAuthN  = -32004
	rpcServiceUnavailable = -32005
)

// rejection is a refused request.
type rejection struct {
	status    int
	challenge string // WWW-Authenticate value, if any
	oauthErr  string // OAuth error code for the body, if any
	desc      string // human text, never from the token
	rpcCode   int
	logReason string
	// id is the JSON-RPC id of the request when the body was inspected and
	// holds one request; nil otherwise.
	id json.RawMessage
}

// reject answers a refused request. With handle_errors configured on the
// server, it returns a caddyhttp.Error (the challenge header already set)
// so those routes shape the response. Without, it writes a small JSON body
// itself: a JSON-RPC error (with the request's id when known) for MCP
// clients that show errors but do not read WWW-Authenticate, plus the
// OAuth error and description.
func (h *Handler) reject(w http.ResponseWriter, r *http.Request, rj rejection) error {
	hdr := w.Header()
	if rj.challenge != "" {
		hdr.Set("WWW-Authenticate", rj.challenge)
	}
	if ce := h.logger.Check(zapcore.DebugLevel, "request refused"); ce != nil {
		ce.Write(zap.Int("status", rj.status), zap.String("reason", rj.logReason), zap.String("method", r.Method), zap.String("uri", r.URL.Path))
	}
	if hasErrorRoutes(r) {
		return caddyhttp.Error(rj.status, errors.New(rj.logReason))
	}
	body := rejectionBody(rj)
	hdr.Set("Content-Type", "application/json")
	hdr.Set("Content-Length", strconv.Itoa(len(body)))
	hdr.Set("Cache-Control", "no-store")
	w.WriteHeader(rj.status)
	_, _ = w.Write(body)
	return nil
}

func hasErrorRoutes(r *http.Request) bool {
	srv, ok := r.Context().Value(caddyhttp.ServerCtxKey).(*caddyhttp.Server)
	return ok && srv != nil && srv.Errors != nil && len(srv.Errors.Routes) > 0
}

// rpcErrorBody is a JSON-RPC error response. The error's data repeats the
// OAuth error code and description of the challenge, for clients that read
// bodies rather than WWW-Authenticate.
type rpcErrorBody struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id"`
	Error   rpcError        `json:"error"`
}

type rpcError struct {
	Code    int       `json:"code"`
	Message string    `json:"message"`
	Data    *rpcOAuth `json:"data,omitempty"`
}

type rpcOAuth struct {
	Error            string `json:"error"`
	ErrorDescription string `json:"error_description,omitempty"`
}

func rejectionBody(rj rejection) []byte {
	id := rj.id
	if len(id) == 0 {
		id = json.RawMessage("null")
	}
	code := rj.rpcCode
	if code == 0 {
		code = rpcUnauthorized
	}
	body := rpcErrorBody{JSONRPC: "2.0", ID: id, Error: rpcError{Code: code, Message: rj.desc}}
	if rj.oauthErr != "" {
		body.Error.Data = &rpcOAuth{Error: rj.oauthErr, ErrorDescription: rj.desc}
	}
	b, _ := json.Marshal(body)
	return b
}

// requestID extracts the id of a single JSON-RPC request from a body that
// the policy inspector already accepted as strict JSON.
func requestID(body []byte) json.RawMessage {
	var m struct {
		ID json.RawMessage `json:"id"`
	}
	if json.Unmarshal(body, &m) != nil {
		return nil
	}
	return m.ID
}
