package introspect

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/mcpauth/caddy-mcp-auth/validator"
)

// mediaTypeJWT is the media type of a signed answer (RFC 9701 §4).
const mediaTypeJWT = "application/token-introspection+jwt"

// answer is what an accepted answer adds to its claims for the cache.
type answer struct {
	exp  int64 // the token's exp in Unix nanoseconds, 0 when absent
	size int64 // bytes held by the claims
}

// introspect asks the endpoint about tok and checks the answer.
func (i *Introspector) introspect(ctx context.Context, tok string) (*validator.Claims, answer, error) {
	endpoint, err := i.getEndpoint(ctx)
	if err != nil {
		return nil, answer{}, err
	}
	select {
	case i.sem <- struct{}{}:
		defer func() { <-i.sem }()
	case <-ctx.Done():
		return nil, answer{}, i.fail(endpoint, 0, temporary("too many introspection calls in flight"))
	}
	status, ctype, body, err := i.post(ctx, endpoint, tok)
	if err != nil {
		return nil, answer{}, i.fail(endpoint, status, err)
	}
	var doc []byte
	if isJWTResponse(ctype) {
		if i.keys == nil {
			return nil, answer{}, i.fail(endpoint, status, temporary("signed answer ("+mediaTypeJWT+") received but no keys are configured to verify it"))
		}
		doc, err = i.openJWT(ctx, body)
		if err != nil {
			return nil, answer{}, i.fail(endpoint, status, err)
		}
	} else {
		doc = body
	}
	c, a, err := i.check(doc)
	var ve *validator.Error
	if err != nil && errors.As(err, &ve) && ve.Temporary {
		return nil, answer{}, i.fail(endpoint, status, err)
	}
	i.succeeded(endpoint)
	return c, a, err
}

// post sends the introspection request (RFC 7662 §2.1) and returns a 200
// answer's body. Every failure is a Temporary *validator.Error.
func (i *Introspector) post(ctx context.Context, endpoint, tok string) (status int, ctype string, body []byte, err error) {
	form := "token=" + url.QueryEscape(tok) + "&token_type_hint=access_token" + i.postCreds
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(form))
	if err != nil {
		return 0, "", nil, temporary("building the introspection request: " + err.Error())
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", i.accept)
	if i.basicAuth != "" {
		req.Header.Set("Authorization", i.basicAuth)
	}
	i.calls.Add(1)
	resp, err := i.client.Do(req)
	if err != nil {
		// A *url.Error names the endpoint and the cause, never the body.
		return 0, "", nil, temporary("introspection request failed: " + err.Error())
	}
	defer resp.Body.Close()
	status = resp.StatusCode
	body, err = io.ReadAll(io.LimitReader(resp.Body, i.maxResponse+1))
	if err != nil {
		return status, "", nil, temporary("reading the introspection answer: " + err.Error())
	}
	if int64(len(body)) > i.maxResponse {
		return status, "", nil, temporary("introspection answer larger than " + strconv.FormatInt(i.maxResponse, 10) + " bytes")
	}
	if status != http.StatusOK {
		detail := "introspection endpoint answered status " + strconv.Itoa(status)
		if code := errorCode(body); code != "" {
			detail += " (" + code + ")"
		}
		e := temporary(detail)
		if credentialsRefused(status, body) {
			return status, "", nil, &credentialError{e}
		}
		return status, "", nil, e
	}
	return status, resp.Header.Get("Content-Type"), body, nil
}

// credentialError marks an answer saying the gateway's own client
// authentication failed. Unwrap gives the *validator.Error.
type credentialError struct{ err *validator.Error }

func (e *credentialError) Error() string { return e.err.Error() }
func (e *credentialError) Unwrap() error { return e.err }

// credentialsRefused reports whether an error answer means that the
// endpoint refused the gateway's client credentials: 401 or 403 (RFC 7662
// §2.3), or 400 invalid_client (RFC 6749 §5.2, as some servers answer).
func credentialsRefused(status int, body []byte) bool {
	switch status {
	case http.StatusUnauthorized, http.StatusForbidden:
		return true
	case http.StatusBadRequest:
		code := errorCode(body)
		return code == "invalid_client" || code == "unauthorized_client"
	}
	return false
}

// errorCode returns the OAuth "error" member of an error answer when it is
// a plausible error code; nothing else of the body is ever logged.
func errorCode(body []byte) string {
	var e struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(body, &e) != nil || len(e.Error) == 0 || len(e.Error) > 64 {
		return ""
	}
	for i := 0; i < len(e.Error); i++ {
		c := e.Error[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-' || c == '.') {
			return ""
		}
	}
	return e.Error
}

func isJWTResponse(ctype string) bool {
	mt, _, err := mime.ParseMediaType(ctype)
	return err == nil && strings.EqualFold(mt, mediaTypeJWT)
}

// fail logs a failed call and returns its *validator.Error. A refusal of
// the gateway's credentials is logged at error level once per outage, any
// other failure at warn level once per outage; repeats go to debug, so that
// a long outage does not flood the log.
func (i *Introspector) fail(endpoint string, status int, err error) error {
	var ce *credentialError
	if errors.As(err, &ce) {
		level := zapcore.DebugLevel
		if i.credFailing.CompareAndSwap(false, true) {
			level = zapcore.ErrorLevel
		}
		if c := i.logger.Check(level, "introspection endpoint rejected the gateway's client credentials; check client_id/client_secret"); c != nil {
			c.Write(zap.String("issuer", i.issuer), zap.String("endpoint", endpoint), zap.String("client_id", i.clientID), zap.Int("status", status))
		}
		return ce.err
	}
	level := zapcore.DebugLevel
	if i.failing.CompareAndSwap(false, true) {
		level = zapcore.WarnLevel
	}
	if c := i.logger.Check(level, "token introspection failed; answering 503 until the endpoint works"); c != nil {
		c.Write(zap.String("issuer", i.issuer), zap.String("endpoint", endpoint), zap.Error(err))
	}
	return err
}

// succeeded re-arms the outage logs after a usable answer.
func (i *Introspector) succeeded(endpoint string) {
	cred := i.credFailing.Swap(false)
	other := i.failing.Swap(false)
	if cred || other {
		i.logger.Info("introspection endpoint works again", zap.String("issuer", i.issuer), zap.String("endpoint", endpoint))
	}
}

// getEndpoint returns the configured endpoint, or discovers it from the
// issuer's metadata. Concurrent callers share one discovery; after a failed
// one, the next waits discoveryFloor.
func (i *Introspector) getEndpoint(ctx context.Context) (string, error) {
	for {
		i.epMu.Lock()
		if i.endpoint != "" {
			ep := i.endpoint
			i.epMu.Unlock()
			return ep, nil
		}
		if ch := i.discovering; ch != nil {
			i.epMu.Unlock()
			select {
			case <-ch:
			case <-ctx.Done():
				return "", temporary("waiting for introspection endpoint discovery: " + ctx.Err().Error())
			}
			i.epMu.Lock()
			ep, err := i.endpoint, i.discErr
			i.epMu.Unlock()
			if ep != "" {
				return ep, nil
			}
			return "", err
		}
		if i.discErr != nil && i.now().Sub(i.discAt) < discoveryFloor {
			err := i.discErr
			i.epMu.Unlock()
			return "", err
		}
		ch := make(chan struct{})
		i.discovering = ch
		i.discAt = i.now()
		i.epMu.Unlock()

		ep, err := i.discover(ctx)

		i.epMu.Lock()
		i.discovering = nil
		if err != nil {
			i.discErr = i.fail("", 0, temporary(err.Error()))
		} else {
			i.endpoint, i.discErr = ep, nil
		}
		close(ch)
		i.epMu.Unlock()
		if err != nil {
			return "", i.discErr
		}
	}
}

// discover reads the introspection_endpoint from the issuer's metadata: the
// RFC 8414 document, then the OpenID Connect ones. A document naming another
// issuer is refused (RFC 8414 §3.3).
func (i *Introspector) discover(ctx context.Context) (string, error) {
	ep, err := validator.DiscoverEndpoint(ctx, i.getClient, i.issuer, "introspection_endpoint")
	if err != nil {
		return "", err
	}
	if err := checkEndpoint(ep); err != nil {
		return "", fmt.Errorf("introspection_endpoint %s: %w", ep, err)
	}
	return ep, nil
}

// nanos converts a NumericDate in seconds to Unix nanoseconds, 0 when it
// does not fit.
func nanos(sec int64) int64 {
	if sec <= 0 || sec > (1<<63-1)/int64(time.Second) {
		return 0
	}
	return sec * int64(time.Second)
}
