package devas

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// opServer is zitadel's op.LegacyServer with the endpoints devas needs to
// behave differently overridden (op.ExtendedLegacyServer is meant for that):
//
//   - VerifyAuthRequest: unknown clients are a 400, missing scope gets
//     Options.DefaultScopes.
//   - Authorize: PKCE S256 is mandatory, scopes must be allowed, RFC 8707
//     resource, acr_values/max_age/prompt=login, and automatic approval: the
//     response is the redirect back to the client with a code.
//   - CodeExchange, RefreshToken: issue RFC 9068 at+jwt access tokens with
//     aud = resource (zitadel's own JWT access tokens have typ "JWT" and no
//     resource indicator support).
//   - Discovery: the same document as the RFC 8414 metadata.
type opServer struct {
	*op.LegacyServer
	s *Server
}

func (o *opServer) Discovery(ctx context.Context, _ *op.Request[struct{}]) (*op.Response, error) {
	return op.NewResponse(o.s.metadata(ctx)), nil
}

func (o *opServer) VerifyAuthRequest(ctx context.Context, r *op.Request[oidc.AuthRequest]) (*op.ClientRequest[oidc.AuthRequest], error) {
	if r.Data.ClientID != "" {
		if _, err := o.s.store.GetClientByClientID(ctx, r.Data.ClientID); err != nil {
			// Not redirected: the redirect_uri cannot be trusted for an
			// unknown client.
			return nil, oidc.ErrInvalidClient().WithDescription("unknown client_id %q: register the client at %s first", r.Data.ClientID, PathRegister)
		}
	}
	if len(r.Data.Scopes) == 0 {
		r.Data.Scopes = slices.Clone(o.s.opts.DefaultScopes)
	}
	return o.LegacyServer.VerifyAuthRequest(ctx, r)
}

func (o *opServer) Authorize(ctx context.Context, r *op.ClientRequest[oidc.AuthRequest]) (*op.Redirect, error) {
	s := o.s
	req := r.Data
	if req.RequestParam != "" {
		return nil, oidc.ErrRequestNotSupported()
	}
	if req.ResponseType != oidc.ResponseTypeCode {
		return nil, oidc.ErrInvalidRequest().WithDescription("only response_type=code is supported")
	}
	// OAuth 2.1: PKCE is mandatory, and only S256 is accepted (an absent
	// code_challenge_method means "plain", RFC 7636 section 4.3).
	if req.CodeChallenge == "" {
		return nil, oidc.ErrInvalidRequest().WithDescription("code_challenge is required (PKCE with S256)")
	}
	if req.CodeChallengeMethod != oidc.CodeChallengeMethodS256 {
		return nil, oidc.ErrInvalidRequest().WithDescription("code_challenge_method must be S256")
	}
	for _, sc := range req.Scopes {
		if !s.scopeAllowed(sc) {
			return nil, oidc.ErrInvalidScope().WithDescription("scope %q is not allowed (allowed: %s)", sc, strings.Join(s.supportedScopes(), " "))
		}
	}
	resource, err := resourceParam(r.Form, s.opts.DefaultResource)
	if err != nil {
		return nil, err
	}

	// Automatic "login": pick the acr and auth_time of the dev user.
	acr := s.opts.DefaultACR
	for _, want := range req.ACRValues {
		if slices.Contains(s.opts.ACRValues, want) {
			acr = want
			break
		}
	}
	authTime := s.LoginTime()
	fresh := req.MaxAge != nil // zitadel sets max_age=0 for prompt=login
	if fresh {
		authTime = time.Now().Truncate(time.Second)
	}

	ar, err := s.store.CreateAuthRequest(ctx, req, s.opts.Subject)
	if err != nil {
		return nil, oidc.DefaultToServerError(err, "cannot store the authorization request")
	}
	approved, err := s.store.approve(ar.GetID(), resource, acr, authTime)
	if err != nil {
		return nil, oidc.DefaultToServerError(err, "cannot approve the authorization request")
	}
	code, err := op.CreateAuthRequestCode(ctx, approved, s.store, s.provider.Crypto())
	if err != nil {
		return nil, oidc.DefaultToServerError(err, "cannot create the authorization code")
	}
	s.log.Warn("devas: auto-approved authorization (DEVELOPMENT ONLY)",
		"client_id", req.ClientID, "sub", s.opts.Subject, "scope", strings.Join(req.Scopes, " "),
		"resource", resource, "acr", acr, "auth_time", authTime.Unix(), "fresh_login", fresh)
	// The response mode is always query: form_post would need a page.
	callback, err := op.AuthResponseURL(req.RedirectURI, req.ResponseType, oidc.ResponseModeQuery,
		&op.CodeResponseType{Code: code, State: req.State}, s.provider.Encoder())
	if err != nil {
		return nil, err
	}
	return op.NewRedirect(callback), nil
}

func (o *opServer) CodeExchange(ctx context.Context, r *op.ClientRequest[oidc.AccessTokenRequest]) (*op.Response, error) {
	s := o.s
	authReq, err := op.AuthRequestByCode(ctx, s.store, r.Data.Code)
	if err != nil {
		return nil, err
	}
	ar, ok := authReq.(*authRequest)
	if !ok || !ar.done {
		return nil, oidc.ErrInvalidGrant()
	}
	// Burn the code before anything else: a code is redeemable once, even
	// when this attempt fails.
	if err := s.store.DeleteAuthRequest(ctx, ar.id); err != nil {
		return nil, oidc.ErrInvalidGrant().WithDescription("code already used")
	}
	if r.Client.GetID() != ar.clientID {
		return nil, oidc.ErrInvalidGrant().WithDescription("code was issued to another client")
	}
	if err := op.AuthorizeCodeChallenge(r.Data.CodeVerifier, ar.GetCodeChallenge()); err != nil {
		return nil, err
	}
	if r.Data.RedirectURI != ar.redirectURI {
		return nil, oidc.ErrInvalidGrant().WithDescription("redirect_uri does not correspond")
	}
	if err := checkTokenResource(r.Form, ar.resource); err != nil {
		return nil, err
	}
	return o.issue(ctx, r.Client, ar, "", r.Data.Code)
}

func (o *opServer) RefreshToken(ctx context.Context, r *op.ClientRequest[oidc.RefreshTokenRequest]) (*op.Response, error) {
	s := o.s
	req, err := op.RefreshTokenRequestByRefreshToken(ctx, s.store, r.Data.RefreshToken)
	if err != nil {
		return nil, err
	}
	rt, ok := req.(*refreshTokenRequest)
	if !ok || r.Client.GetID() != rt.GetClientID() {
		return nil, oidc.ErrInvalidGrant()
	}
	// A narrower scope is fine, a wider one is invalid_scope.
	if err := op.ValidateRefreshTokenScopes(r.Data.Scopes, rt); err != nil {
		return nil, err
	}
	if err := checkTokenResource(r.Form, rt.g.resource); err != nil {
		return nil, err
	}
	return o.issue(ctx, r.Client, rt, r.Data.RefreshToken, "")
}

// issue creates the token response for a grant: an at+jwt access token, a
// (rotated) refresh token and, when "openid" was granted, an ID token.
func (o *opServer) issue(ctx context.Context, c op.Client, g grant, currentRefresh, code string) (*op.Response, error) {
	s := o.s
	tokenID, refresh, exp, err := s.store.CreateAccessAndRefreshTokens(ctx, g, currentRefresh)
	if err != nil {
		return nil, err
	}
	issuer := op.IssuerFromContext(ctx)
	at, err := s.store.keys.mintAccessToken(newAccessTokenClaims(issuer, tokenID, g, exp))
	if err != nil {
		return nil, oidc.ErrServerError().WithParent(err)
	}
	s.store.issued.Add(1)
	resp := &oidc.AccessTokenResponse{
		AccessToken:  at,
		TokenType:    oidc.BearerToken,
		RefreshToken: refresh,
		ExpiresIn:    uint64(s.opts.TokenLifetime / time.Second),
		Scope:        g.GetScopes(),
	}
	if slices.Contains(g.GetScopes(), oidc.ScopeOpenID) {
		resp.IDToken, err = op.CreateIDToken(ctx, issuer, g, c.IDTokenLifetime(), at, code, s.store, c)
		if err != nil {
			return nil, err
		}
	}
	out := op.NewResponse(resp)
	out.Header.Set("Cache-Control", "no-store")
	return out, nil
}

// resourceParam returns the single RFC 8707 resource of an authorization
// request, or def when there is none.
func resourceParam(form url.Values, def string) (string, error) {
	res := form["resource"]
	switch len(res) {
	case 0:
		return def, nil
	case 1:
	default:
		return "", oidc.ErrInvalidTarget().WithDescription("devas accepts exactly one resource parameter")
	}
	u, err := url.Parse(res[0])
	if err != nil || !u.IsAbs() || u.Fragment != "" {
		return "", oidc.ErrInvalidTarget().WithDescription("resource must be an absolute URI without a fragment (RFC 8707)")
	}
	return res[0], nil
}

// checkTokenResource checks the resource parameters of a token request: each
// must name the resource the grant was made for (RFC 8707 section 2.2).
func checkTokenResource(form url.Values, granted string) error {
	for _, res := range form["resource"] {
		if res != granted {
			return oidc.ErrInvalidTarget().WithDescription("resource %q was not part of the grant (granted: %q)", res, granted)
		}
	}
	return nil
}

// metadataServer serves the RFC 8414 and OIDC discovery documents through
// zitadel's op.RegisterMetadataServer.
type metadataServer struct {
	op.UnimplementedMetadataServer
	s *Server
}

func (m metadataServer) OpenIDConfiguration(ctx context.Context, r *op.Request[op.MetadataRequest]) (*op.Response, error) {
	return m.serve(ctx, r)
}

func (m metadataServer) AuthorizationServerMetadata(ctx context.Context, r *op.Request[op.MetadataRequest]) (*op.Response, error) {
	return m.serve(ctx, r)
}

func (m metadataServer) serve(ctx context.Context, r *op.Request[op.MetadataRequest]) (*op.Response, error) {
	if r.Data.IssuerPath != "" {
		return nil, op.NewStatusError(oidc.ErrInvalidRequest().WithDescription("no issuer at this path"), http.StatusNotFound)
	}
	return op.NewResponse(m.s.metadata(ctx)), nil
}

// metadata is the authorization server metadata document (RFC 8414), which
// doubles as the OpenID Provider configuration.
func (s *Server) metadata(ctx context.Context) *oidc.DiscoveryConfiguration {
	cfg := op.CreateDiscoveryConfig(ctx, s.provider, s.store)
	issuer := cfg.Issuer
	cfg.RegistrationEndpoint = issuer + PathRegister
	cfg.CodeChallengeMethodsSupported = []oidc.CodeChallengeMethod{oidc.CodeChallengeMethodS256}
	cfg.ResponseTypesSupported = []string{string(oidc.ResponseTypeCode)}
	cfg.ResponseModesSupported = []string{string(oidc.ResponseModeQuery)}
	cfg.GrantTypesSupported = []oidc.GrantType{oidc.GrantTypeCode, oidc.GrantTypeRefreshToken}
	cfg.TokenEndpointAuthMethodsSupported = []oidc.AuthMethod{oidc.AuthMethodNone}
	cfg.TokenEndpointAuthSigningAlgValuesSupported = nil
	cfg.RevocationEndpointAuthMethodsSupported = []oidc.AuthMethod{oidc.AuthMethodNone}
	cfg.RevocationEndpointAuthSigningAlgValuesSupported = nil
	cfg.ScopesSupported = s.supportedScopes()
	cfg.ACRValuesSupported = slices.Clone(s.opts.ACRValues)
	cfg.ClaimsSupported = []string{"iss", "sub", "aud", "exp", "iat", "nbf", "jti", "client_id", "scope",
		"acr", "amr", "auth_time", "nonce", "azp", "at_hash", "c_hash"}
	cfg.RequestParameterSupported = false
	cfg.RequestObjectSigningAlgValuesSupported = nil
	// Not served by devas.
	cfg.IntrospectionEndpoint = ""
	cfg.IntrospectionEndpointAuthMethodsSupported = nil
	cfg.IntrospectionEndpointAuthSigningAlgValuesSupported = nil
	cfg.DeviceAuthorizationEndpoint = ""
	cfg.CheckSessionIframe = ""
	return cfg
}
