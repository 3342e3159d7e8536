package devas

import (
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/zitadel/oidc/v3/pkg/op"
)

// registrationRequest is the subset of RFC 7591 client metadata devas reads.
type registrationRequest struct {
	RedirectURIs            []string `json:"redirect_uris"`
	TokenEndpointAuthMethod string   `json:"token_endpoint_auth_method"`
	GrantTypes              []string `json:"grant_types"`
	ResponseTypes           []string `json:"response_types"`
	ClientName              string   `json:"client_name"`
	ClientURI               string   `json:"client_uri"`
	Scope                   string   `json:"scope"`
	ApplicationType         string   `json:"application_type"`
	SoftwareID              string   `json:"software_id"`
	SoftwareVersion         string   `json:"software_version"`
}

// registrationResponse is the RFC 7591 section 3.2.1 response.
type registrationResponse struct {
	ClientID                string   `json:"client_id"`
	ClientIDIssuedAt        int64    `json:"client_id_issued_at"`
	ClientSecretExpiresAt   int64    `json:"client_secret_expires_at"`
	RedirectURIs            []string `json:"redirect_uris"`
	TokenEndpointAuthMethod string   `json:"token_endpoint_auth_method"`
	GrantTypes              []string `json:"grant_types"`
	ResponseTypes           []string `json:"response_types"`
	ApplicationType         string   `json:"application_type"`
	ClientName              string   `json:"client_name,omitempty"`
	ClientURI               string   `json:"client_uri,omitempty"`
	Scope                   string   `json:"scope,omitempty"`
	SoftwareID              string   `json:"software_id,omitempty"`
	SoftwareVersion         string   `json:"software_version,omitempty"`
}

type registrationError struct {
	Error       string `json:"error"`
	Description string `json:"error_description,omitempty"`
}

// handleRegister implements RFC 7591 dynamic client registration for public
// clients. zitadel's op has no registration endpoint; the client is stored in
// the same op.Storage zitadel reads clients from.
//
// Every client is registered as a public native client with
// token_endpoint_auth_method "none", grant types authorization_code and
// refresh_token and response type code; RFC 7591 section 2 lets the server
// replace requested values, and the response says what was registered.
func (s *Server) handleRegister(w http.ResponseWriter, r *http.Request) {
	// Browser-based MCP clients register cross-origin.
	w.Header().Set("Access-Control-Allow-Origin", "*")
	if r.Method == http.MethodOptions {
		w.Header().Set("Access-Control-Allow-Methods", "POST, OPTIONS")
		w.Header().Set("Access-Control-Allow-Headers", "Content-Type, Authorization")
		w.WriteHeader(http.StatusNoContent)
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST, OPTIONS")
		writeRegError(w, http.StatusMethodNotAllowed, "invalid_request", "use POST")
		return
	}
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/json" {
		writeRegError(w, http.StatusBadRequest, "invalid_client_metadata", "Content-Type must be application/json")
		return
	}
	var req registrationRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10))
	if err := dec.Decode(&req); err != nil {
		writeRegError(w, http.StatusBadRequest, "invalid_client_metadata", "cannot parse the registration request: "+err.Error())
		return
	}

	if len(req.RedirectURIs) == 0 {
		writeRegError(w, http.StatusBadRequest, "invalid_redirect_uri", "redirect_uris is required")
		return
	}
	for _, ru := range req.RedirectURIs {
		if err := checkLoopbackRedirect(ru); err != nil {
			writeRegError(w, http.StatusBadRequest, "invalid_redirect_uri", err.Error())
			return
		}
	}
	for _, gt := range req.GrantTypes {
		if gt != "authorization_code" && gt != "refresh_token" {
			writeRegError(w, http.StatusBadRequest, "invalid_client_metadata", fmt.Sprintf("grant type %q is not supported (authorization_code, refresh_token)", gt))
			return
		}
	}
	for _, rt := range req.ResponseTypes {
		if rt != "code" {
			writeRegError(w, http.StatusBadRequest, "invalid_client_metadata", fmt.Sprintf("response type %q is not supported (code)", rt))
			return
		}
	}
	if req.ApplicationType != "" && req.ApplicationType != "native" && req.ApplicationType != "web" {
		writeRegError(w, http.StatusBadRequest, "invalid_client_metadata", fmt.Sprintf("unknown application_type %q", req.ApplicationType))
		return
	}
	for _, sc := range strings.Fields(req.Scope) {
		if !s.scopeAllowed(sc) {
			writeRegError(w, http.StatusBadRequest, "invalid_client_metadata", fmt.Sprintf("scope %q is not allowed (allowed: %s)", sc, strings.Join(s.supportedScopes(), " ")))
			return
		}
	}

	c := &client{
		id:           "devas-" + strings.ToLower(newID()[:16]),
		name:         req.ClientName,
		redirectURIs: slices.Clone(req.RedirectURIs),
		scope:        req.Scope,
		issuedAt:     time.Now(),
	}
	if err := s.store.addClient(c); err != nil {
		writeRegError(w, http.StatusServiceUnavailable, "temporarily_unavailable", err.Error())
		return
	}
	s.log.Info("devas: registered client", "client_id", c.id, "client_name", c.name, "redirect_uris", c.redirectURIs)

	resp := registrationResponse{
		ClientID:                c.id,
		ClientIDIssuedAt:        c.issuedAt.Unix(),
		RedirectURIs:            c.redirectURIs,
		TokenEndpointAuthMethod: "none",
		GrantTypes:              []string{"authorization_code", "refresh_token"},
		ResponseTypes:           []string{"code"},
		ApplicationType:         "native",
		ClientName:              req.ClientName,
		ClientURI:               req.ClientURI,
		Scope:                   req.Scope,
		SoftwareID:              req.SoftwareID,
		SoftwareVersion:         req.SoftwareVersion,
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusCreated)
	json.NewEncoder(w).Encode(resp)
}

// checkLoopbackRedirect accepts http(s) redirect URIs on 127.0.0.1, [::1] or
// localhost (RFC 8252 section 7.3), without a fragment.
func checkLoopbackRedirect(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("redirect_uri %q does not parse", raw)
	}
	if u.Fragment != "" {
		return fmt.Errorf("redirect_uri %q must not have a fragment", raw)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("redirect_uri %q: only http(s) loopback redirect URIs are accepted", raw)
	}
	if _, ok := op.HTTPLoopbackOrLocalhost(raw); !ok {
		return fmt.Errorf("redirect_uri %q is not on a loopback host (127.0.0.1, [::1], localhost)", raw)
	}
	return nil
}

func writeRegError(w http.ResponseWriter, status int, code, desc string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(registrationError{Error: code, Description: desc})
}
