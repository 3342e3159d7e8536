// Package sdkclient is the client side of the demo and the tests: the official
// Go SDK's OAuth handler with a headless code fetcher and RFC 9470 step-up.
package sdkclient

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/oauthex"
)

// RedirectURI is the loopback redirect URI the demo client registers
// (RFC 8252 §7.3). Nothing listens there: devas approves every request at
// once, so the code fetcher reads the code off the redirect's Location
// header instead of waiting for a browser to deliver it.
const RedirectURI = "http://127.0.0.1/demo/callback"

// OAuthHandler is the Go SDK's authorization code handler (dynamic client
// registration, PKCE, RFC 8707 resource) with RFC 9470 step-up added: the
// SDK re-authorizes on any 401, but does not pass a challenge's acr_values
// and max_age on to the authorization request. Authorize does.
type OAuthHandler struct {
	*auth.AuthorizationCodeHandler
}

var _ auth.OAuthHandler = (*OAuthHandler)(nil)

// NewOAuthHandler returns the client-side OAuth handler of the demo. hc is
// used for every OAuth request (metadata, registration, authorization and
// token); give the MCP transport the same client to see the whole flow.
func NewOAuthHandler(hc *http.Client, clientName string) (*OAuthHandler, error) {
	if hc == nil {
		hc = http.DefaultClient
	}
	h, err := auth.NewAuthorizationCodeHandler(&auth.AuthorizationCodeHandlerConfig{
		DynamicClientRegistrationConfig: &auth.DynamicClientRegistrationConfig{
			Metadata: &oauthex.ClientRegistrationMetadata{
				ClientName:   clientName,
				RedirectURIs: []string{RedirectURI},
				GrantTypes:   []string{"authorization_code", "refresh_token"},
			},
		},
		AuthorizationCodeFetcher: codeFetcher(hc),
		Client:                   hc,
	})
	if err != nil {
		return nil, err
	}
	return &OAuthHandler{h}, nil
}

// stepUpKey carries acr_values/max_age from Authorize to the code fetcher,
// which the SDK calls with the same context.
type stepUpKey struct{}

// Authorize runs the SDK's flow; for a 401 whose Bearer challenge has
// acr_values or max_age (RFC 9470 §3), those go into the authorization
// request.
func (h *OAuthHandler) Authorize(ctx context.Context, req *http.Request, resp *http.Response) error {
	if extra := StepUpParams(resp.Header.Values("WWW-Authenticate")); len(extra) > 0 {
		ctx = context.WithValue(ctx, stepUpKey{}, extra)
	}
	return h.AuthorizationCodeHandler.Authorize(ctx, req, resp)
}

// StepUpParams returns acr_values and max_age of the Bearer challenges in
// WWW-Authenticate values.
func StepUpParams(wwwAuthenticate []string) url.Values {
	extra := url.Values{}
	cs, err := oauthex.ParseWWWAuthenticate(wwwAuthenticate)
	if err != nil {
		return extra
	}
	for _, c := range cs {
		if !strings.EqualFold(c.Scheme, "bearer") {
			continue
		}
		for _, p := range []string{"acr_values", "max_age"} {
			if v := c.Params[p]; v != "" {
				extra.Set(p, v)
			}
		}
	}
	return extra
}

// AccessToken returns the current access token, "" before authorization.
func (h *OAuthHandler) AccessToken(ctx context.Context) (string, error) {
	ts, err := h.TokenSource(ctx)
	if err != nil || ts == nil {
		return "", err
	}
	tok, err := ts.Token()
	if err != nil {
		return "", err
	}
	return tok.AccessToken, nil
}

// codeFetcher plays the browser: it requests the authorization URL (plus
// any step-up parameters) without following the redirect and reads code,
// state and iss off the Location header.
func codeFetcher(hc *http.Client) auth.AuthorizationCodeFetcher {
	noRedirect := *hc
	noRedirect.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return func(ctx context.Context, args *auth.AuthorizationArgs) (*auth.AuthorizationResult, error) {
		u, err := url.Parse(args.URL)
		if err != nil {
			return nil, err
		}
		if extra, _ := ctx.Value(stepUpKey{}).(url.Values); len(extra) > 0 {
			q := u.Query()
			for k, v := range extra {
				q[k] = v
			}
			u.RawQuery = q.Encode()
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
		if err != nil {
			return nil, err
		}
		resp, err := noRedirect.Do(req)
		if err != nil {
			return nil, err
		}
		resp.Body.Close()
		loc, err := url.Parse(resp.Header.Get("Location"))
		if resp.StatusCode != http.StatusFound || err != nil {
			return nil, fmt.Errorf("authorize: got %s, want a 302 redirect", resp.Status)
		}
		if !strings.HasPrefix(loc.String(), RedirectURI) {
			return nil, fmt.Errorf("authorize: redirected to %s, not to the registered %s", loc.Redacted(), RedirectURI)
		}
		q := loc.Query()
		if e := q.Get("error"); e != "" {
			return nil, fmt.Errorf("authorize: %s: %s", e, q.Get("error_description"))
		}
		return &auth.AuthorizationResult{Code: q.Get("code"), State: q.Get("state"), Iss: q.Get("iss")}, nil
	}
}

// Claims are the access token claims the demo looks at.
type Claims struct {
	Issuer   string `json:"iss"`
	Subject  string `json:"sub"`
	Audience any    `json:"aud"` // a string or an array of strings
	Scope    string `json:"scope"`
	ACR      string `json:"acr"`
	AuthTime int64  `json:"auth_time"`
	ClientID string `json:"client_id"`
	Expiry   int64  `json:"exp"`
}

// Audiences returns aud as a list.
func (c *Claims) Audiences() []string {
	switch a := c.Audience.(type) {
	case string:
		return []string{a}
	case []any:
		var out []string
		for _, v := range a {
			if s, ok := v.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

// DecodeClaims decodes the payload of a JWT without verifying it: for
// showing what a token says, never for deciding whether to trust it.
func DecodeClaims(jwt string) (*Claims, error) {
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		return nil, errors.New("not a JWS compact serialization")
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return nil, fmt.Errorf("payload: %w", err)
	}
	var c Claims
	if err := json.Unmarshal(payload, &c); err != nil {
		return nil, fmt.Errorf("payload: %w", err)
	}
	return &c, nil
}
