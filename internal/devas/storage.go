package devas

import (
	"context"
	"crypto/rand"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// authRequestLifetime bounds how long an authorization request (and so its
// code) stays redeemable.
const authRequestLifetime = 2 * time.Minute

// maxClients caps dynamic registrations, so a runaway client cannot exhaust
// memory.
const maxClients = 10000

var errNotFound = errors.New("not found")

// storage is the in-memory op.Storage of the dev server.
type storage struct {
	srv  *Server
	keys *signingKey

	issued atomic.Int64

	mu           sync.Mutex
	clients      map[string]*client
	authRequests map[string]*authRequest
	codes        map[string]string // code -> auth request ID
	refresh      map[string]*refreshGrant
	access       map[string]accessRecord
	inserts      int
}

func newStorage(srv *Server, keys *signingKey) *storage {
	return &storage{
		srv:          srv,
		keys:         keys,
		clients:      make(map[string]*client),
		authRequests: make(map[string]*authRequest),
		codes:        make(map[string]string),
		refresh:      make(map[string]*refreshGrant),
		access:       make(map[string]accessRecord),
	}
}

var _ op.Storage = (*storage)(nil)

// ---- clients -------------------------------------------------------------

// client is a dynamically registered public (native) client.
type client struct {
	id           string
	name         string
	redirectURIs []string
	scope        string
	issuedAt     time.Time
}

var _ op.Client = (*client)(nil)

func (c *client) GetID() string                       { return c.id }
func (c *client) RedirectURIs() []string              { return c.redirectURIs }
func (c *client) PostLogoutRedirectURIs() []string    { return nil }
func (c *client) ApplicationType() op.ApplicationType { return op.ApplicationTypeNative }
func (c *client) AuthMethod() oidc.AuthMethod         { return oidc.AuthMethodNone }
func (c *client) ResponseTypes() []oidc.ResponseType {
	return []oidc.ResponseType{oidc.ResponseTypeCode}
}
func (c *client) LoginURL(string) string               { return "" } // never used: consent is automatic
func (c *client) AccessTokenType() op.AccessTokenType  { return op.AccessTokenTypeJWT }
func (c *client) IDTokenLifetime() time.Duration       { return time.Hour }
func (c *client) DevMode() bool                        { return false }
func (c *client) IDTokenUserinfoClaimsAssertion() bool { return false }
func (c *client) ClockSkew() time.Duration             { return 0 }
func (c *client) GrantTypes() []oidc.GrantType {
	return []oidc.GrantType{oidc.GrantTypeCode, oidc.GrantTypeRefreshToken}
}

// IsScopeAllowed lets every scope through zitadel's filter; Authorize then
// rejects scopes outside Options.Scopes with invalid_scope instead of
// silently dropping them.
func (c *client) IsScopeAllowed(string) bool { return true }

func (c *client) RestrictAdditionalIdTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}

func (c *client) RestrictAdditionalAccessTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}

func (st *storage) addClient(c *client) error {
	st.mu.Lock()
	defer st.mu.Unlock()
	if len(st.clients) >= maxClients {
		return errors.New("too many registered clients")
	}
	st.clients[c.id] = c
	return nil
}

// ---- grants --------------------------------------------------------------

// grant is what an access token is minted from: an approved authorization
// request or a refresh token request.
type grant interface {
	op.IDTokenRequest
	audience() string // RFC 8707 resource -> access token aud
	acr() string
}

// authRequest is an authorization request, approved at creation.
type authRequest struct {
	id            string
	createdAt     time.Time
	clientID      string
	redirectURI   string
	state         string
	nonce         string
	scopes        []string
	responseType  oidc.ResponseType
	responseMode  oidc.ResponseMode
	codeChallenge *oidc.CodeChallenge
	subject       string

	// Set by opServer.Authorize.
	resource string
	acrValue string
	authTime time.Time
	done     bool
}

var (
	_ op.AuthRequest = (*authRequest)(nil)
	_ grant          = (*authRequest)(nil)
)

func (a *authRequest) GetID() string                         { return a.id }
func (a *authRequest) GetACR() string                        { return a.acrValue }
func (a *authRequest) GetAMR() []string                      { return amrFor(a.acrValue) }
func (a *authRequest) GetAudience() []string                 { return []string{a.clientID} } // ID token audience
func (a *authRequest) GetAuthTime() time.Time                { return a.authTime }
func (a *authRequest) GetClientID() string                   { return a.clientID }
func (a *authRequest) GetCodeChallenge() *oidc.CodeChallenge { return a.codeChallenge }
func (a *authRequest) GetNonce() string                      { return a.nonce }
func (a *authRequest) GetRedirectURI() string                { return a.redirectURI }
func (a *authRequest) GetResponseType() oidc.ResponseType    { return a.responseType }
func (a *authRequest) GetResponseMode() oidc.ResponseMode    { return a.responseMode }
func (a *authRequest) GetScopes() []string                   { return a.scopes }
func (a *authRequest) GetState() string                      { return a.state }
func (a *authRequest) GetSubject() string                    { return a.subject }
func (a *authRequest) Done() bool                            { return a.done }
func (a *authRequest) audience() string                      { return a.resource }
func (a *authRequest) acr() string                           { return a.acrValue }

// refreshGrant is a stored refresh token.
type refreshGrant struct {
	clientID string
	subject  string
	resource string
	acrValue string
	authTime time.Time
	scopes   []string // the originally granted scopes
	expires  time.Time
}

// refreshTokenRequest is the op.RefreshTokenRequest handed to zitadel; its
// scopes may be narrowed with SetCurrentScopes.
type refreshTokenRequest struct {
	token  string
	g      refreshGrant
	scopes []string
}

var (
	_ op.RefreshTokenRequest = (*refreshTokenRequest)(nil)
	_ grant                  = (*refreshTokenRequest)(nil)
)

func (r *refreshTokenRequest) GetAMR() []string            { return amrFor(r.g.acrValue) }
func (r *refreshTokenRequest) GetAudience() []string       { return []string{r.g.clientID} }
func (r *refreshTokenRequest) GetAuthTime() time.Time      { return r.g.authTime }
func (r *refreshTokenRequest) GetClientID() string         { return r.g.clientID }
func (r *refreshTokenRequest) GetScopes() []string         { return r.scopes }
func (r *refreshTokenRequest) GetSubject() string          { return r.g.subject }
func (r *refreshTokenRequest) SetCurrentScopes(s []string) { r.scopes = s }
func (r *refreshTokenRequest) audience() string            { return r.g.resource }
func (r *refreshTokenRequest) acr() string                 { return r.g.acrValue }

func amrFor(acr string) []string {
	if acr == DefaultACR || acr == "" {
		return []string{"pwd"}
	}
	return []string{"pwd", "mfa"}
}

// accessRecord remembers an issued access token for revocation, userinfo and
// introspection.
type accessRecord struct {
	subject  string
	clientID string
	resource string
	scopes   []string
	expires  time.Time
}

// ---- op.AuthStorage ------------------------------------------------------

func (st *storage) CreateAuthRequest(_ context.Context, req *oidc.AuthRequest, userID string) (op.AuthRequest, error) {
	if userID == "" {
		userID = st.srv.opts.Subject
	}
	ar := &authRequest{
		id:           newID(),
		createdAt:    time.Now(),
		clientID:     req.ClientID,
		redirectURI:  req.RedirectURI,
		state:        req.State,
		nonce:        req.Nonce,
		scopes:       slices.Clone([]string(req.Scopes)),
		responseType: req.ResponseType,
		responseMode: req.ResponseMode,
		subject:      userID,
	}
	if req.CodeChallenge != "" {
		ar.codeChallenge = &oidc.CodeChallenge{Challenge: req.CodeChallenge, Method: req.CodeChallengeMethod}
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	st.pruneLocked()
	st.authRequests[ar.id] = ar
	return ar, nil
}

// approve marks an auth request as authenticated, with the RFC 8707 resource
// and the authentication context it was granted with.
func (st *storage) approve(id, resource, acr string, authTime time.Time) (*authRequest, error) {
	st.mu.Lock()
	defer st.mu.Unlock()
	ar, ok := st.authRequests[id]
	if !ok {
		return nil, errNotFound
	}
	ar.resource, ar.acrValue, ar.authTime, ar.done = resource, acr, authTime, true
	return ar, nil
}

func (st *storage) AuthRequestByID(_ context.Context, id string) (op.AuthRequest, error) {
	st.mu.Lock()
	defer st.mu.Unlock()
	ar, ok := st.authRequests[id]
	if !ok || time.Since(ar.createdAt) > authRequestLifetime {
		return nil, errNotFound
	}
	return ar, nil
}

func (st *storage) AuthRequestByCode(_ context.Context, code string) (op.AuthRequest, error) {
	st.mu.Lock()
	defer st.mu.Unlock()
	ar, ok := st.authRequests[st.codes[code]]
	if !ok || time.Since(ar.createdAt) > authRequestLifetime {
		return nil, errNotFound
	}
	return ar, nil
}

func (st *storage) SaveAuthCode(_ context.Context, id, code string) error {
	st.mu.Lock()
	defer st.mu.Unlock()
	if _, ok := st.authRequests[id]; !ok {
		return errNotFound
	}
	st.codes[code] = id
	return nil
}

// DeleteAuthRequest deletes the request and its code. It fails if the request
// is already gone, which makes a code redeemable once only.
func (st *storage) DeleteAuthRequest(_ context.Context, id string) error {
	st.mu.Lock()
	defer st.mu.Unlock()
	if _, ok := st.authRequests[id]; !ok {
		return errNotFound
	}
	delete(st.authRequests, id)
	for code, reqID := range st.codes {
		if reqID == id {
			delete(st.codes, code)
		}
	}
	return nil
}

func (st *storage) CreateAccessToken(_ context.Context, req op.TokenRequest) (string, time.Time, error) {
	g, ok := req.(grant)
	if !ok {
		return "", time.Time{}, oidc.ErrUnsupportedGrantType()
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	id, exp := st.recordAccessLocked(g)
	return id, exp, nil
}

// CreateAccessAndRefreshTokens records an access token and issues a new
// refresh token. When currentRefreshToken is set it is rotated: the old one
// stops working, the new one keeps its originally granted scopes (RFC 6749
// section 6) and its resource.
func (st *storage) CreateAccessAndRefreshTokens(_ context.Context, req op.TokenRequest, currentRefreshToken string) (string, string, time.Time, error) {
	g, ok := req.(grant)
	if !ok {
		return "", "", time.Time{}, oidc.ErrUnsupportedGrantType()
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	var rg refreshGrant
	if currentRefreshToken != "" {
		old, ok := st.refresh[currentRefreshToken]
		if !ok {
			return "", "", time.Time{}, oidc.ErrInvalidGrant().WithDescription("refresh token already used or revoked")
		}
		delete(st.refresh, currentRefreshToken)
		rg = *old
	} else {
		rg = refreshGrant{
			clientID: g.GetClientID(),
			subject:  g.GetSubject(),
			resource: g.audience(),
			acrValue: g.acr(),
			authTime: g.GetAuthTime(),
			scopes:   slices.Clone(g.GetScopes()),
		}
	}
	rg.expires = time.Now().Add(st.srv.opts.RefreshTokenLifetime)
	token := "rt_" + rand.Text()
	st.refresh[token] = &rg
	id, exp := st.recordAccessLocked(g)
	return id, token, exp, nil
}

func (st *storage) recordAccessLocked(g grant) (string, time.Time) {
	st.pruneLocked()
	id := newID()
	exp := time.Now().Add(st.srv.opts.TokenLifetime).Truncate(time.Second)
	st.access[id] = accessRecord{
		subject:  g.GetSubject(),
		clientID: g.GetClientID(),
		resource: g.audience(),
		scopes:   slices.Clone(g.GetScopes()),
		expires:  exp,
	}
	return id, exp
}

func (st *storage) TokenRequestByRefreshToken(_ context.Context, token string) (op.RefreshTokenRequest, error) {
	st.mu.Lock()
	defer st.mu.Unlock()
	rg, ok := st.refresh[token]
	if !ok || time.Now().After(rg.expires) {
		return nil, errNotFound
	}
	return &refreshTokenRequest{token: token, g: *rg, scopes: slices.Clone(rg.scopes)}, nil
}

func (st *storage) TerminateSession(context.Context, string, string) error { return nil }

func (st *storage) RevokeToken(_ context.Context, tokenOrID, _ string, clientID string) *oidc.Error {
	st.mu.Lock()
	defer st.mu.Unlock()
	if rg, ok := st.refresh[tokenOrID]; ok {
		if rg.clientID != clientID {
			return oidc.ErrInvalidClient().WithDescription("token was issued to another client")
		}
		delete(st.refresh, tokenOrID)
		return nil
	}
	delete(st.access, tokenOrID)
	return nil
}

func (st *storage) GetRefreshTokenInfo(_ context.Context, clientID, token string) (string, string, error) {
	st.mu.Lock()
	defer st.mu.Unlock()
	rg, ok := st.refresh[token]
	if !ok || rg.clientID != clientID {
		return "", "", op.ErrInvalidRefreshToken
	}
	return rg.subject, token, nil
}

func (st *storage) SigningKey(context.Context) (op.SigningKey, error) { return st.keys, nil }

func (st *storage) SignatureAlgorithms(context.Context) ([]jose.SignatureAlgorithm, error) {
	return []jose.SignatureAlgorithm{jose.RS256}, nil
}

func (st *storage) KeySet(context.Context) ([]op.Key, error) {
	return []op.Key{st.keys.public()}, nil
}

// ---- op.OPStorage --------------------------------------------------------

func (st *storage) GetClientByClientID(_ context.Context, id string) (op.Client, error) {
	st.mu.Lock()
	defer st.mu.Unlock()
	c, ok := st.clients[id]
	if !ok {
		return nil, errNotFound
	}
	return c, nil
}

func (st *storage) AuthorizeClientIDSecret(context.Context, string, string) error {
	return errors.New("devas only has public clients; there are no client secrets")
}

func (st *storage) SetUserinfoFromScopes(_ context.Context, ui *oidc.UserInfo, userID, _ string, _ []string) error {
	ui.Subject = userID
	return nil
}

func (st *storage) SetUserinfoFromToken(_ context.Context, ui *oidc.UserInfo, tokenID, subject, _ string) error {
	st.mu.Lock()
	defer st.mu.Unlock()
	rec, ok := st.access[tokenID]
	if !ok || time.Now().After(rec.expires) || rec.subject != subject {
		return errors.New("access token unknown or expired")
	}
	ui.Subject = subject
	return nil
}

func (st *storage) SetIntrospectionFromToken(_ context.Context, resp *oidc.IntrospectionResponse, tokenID, subject, _ string) error {
	st.mu.Lock()
	defer st.mu.Unlock()
	rec, ok := st.access[tokenID]
	if !ok || time.Now().After(rec.expires) || rec.subject != subject {
		return nil // inactive
	}
	resp.Active = true
	resp.Subject = subject
	resp.ClientID = rec.clientID
	resp.Scope = rec.scopes
	resp.Audience = []string{rec.resource}
	resp.Expiration = oidc.FromTime(rec.expires)
	return nil
}

func (st *storage) GetPrivateClaimsFromScopes(context.Context, string, string, []string) (map[string]any, error) {
	return nil, nil
}

func (st *storage) GetKeyByIDAndClientID(context.Context, string, string) (*jose.JSONWebKey, error) {
	return nil, errors.New("devas does not support private_key_jwt clients")
}

func (st *storage) ValidateJWTProfileScopes(context.Context, string, []string) ([]string, error) {
	return nil, errors.New("devas does not support the JWT profile grant")
}

func (st *storage) Health(context.Context) error { return nil }

// pruneLocked drops expired entries every so often. st.mu must be held.
func (st *storage) pruneLocked() {
	st.inserts++
	if st.inserts%256 != 0 {
		return
	}
	now := time.Now()
	for id, ar := range st.authRequests {
		if now.Sub(ar.createdAt) > authRequestLifetime {
			delete(st.authRequests, id)
		}
	}
	for code, id := range st.codes {
		if _, ok := st.authRequests[id]; !ok {
			delete(st.codes, code)
		}
	}
	for id, rec := range st.access {
		if now.After(rec.expires) {
			delete(st.access, id)
		}
	}
	for tok, rg := range st.refresh {
		if now.After(rg.expires) {
			delete(st.refresh, tok)
		}
	}
}

func newID() string { return rand.Text() }
