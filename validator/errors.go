// Package validator checks OAuth 2.0 access tokens presented to an MCP
// resource server: JWS-signed JWTs (RFC 7519, RFC 9068) verified against the
// keys each trusted issuer publishes. It has no Caddy imports.
package validator

import "errors"

// Reason says why a token was refused. The set is closed so that the caller
// can prepare one challenge per reason ahead of time.
type Reason uint8

// Reasons a token is refused.
const (
	ReasonNone Reason = iota
	ReasonMalformed
	ReasonTooLarge
	ReasonUnsupportedType
	ReasonCritical
	ReasonAlgorithm
	ReasonUnknownIssuer
	ReasonUnknownKey
	ReasonSignature
	ReasonExpired
	ReasonNoExpiry
	ReasonNotYetValid
	ReasonIssuedInFuture
	ReasonAudience
	ReasonNoAudience
	ReasonSenderConstrained
	ReasonKeysUnavailable
	ReasonInactive
	ReasonIntrospectionUnavailable
	numReasons
)

// Reasons lists every reason a token can be refused for, in order.
func Reasons() []Reason {
	rs := make([]Reason, 0, numReasons-1)
	for r := ReasonMalformed; r < numReasons; r++ {
		rs = append(rs, r)
	}
	return rs
}

var reasonText = [numReasons]string{
	ReasonNone:                     "",
	ReasonMalformed:                "The access token is malformed",
	ReasonTooLarge:                 "The access token is too large",
	ReasonUnsupportedType:          "The access token has an unsupported type",
	ReasonCritical:                 "The access token uses an unsupported critical header",
	ReasonAlgorithm:                "The access token is signed with an algorithm that is not accepted",
	ReasonUnknownIssuer:            "The access token was not issued by a trusted authorization server",
	ReasonUnknownKey:               "The access token is signed with an unknown key",
	ReasonSignature:                "The access token signature is invalid",
	ReasonExpired:                  "The access token expired",
	ReasonNoExpiry:                 "The access token has no expiry",
	ReasonNotYetValid:              "The access token is not valid yet",
	ReasonIssuedInFuture:           "The access token was issued in the future",
	ReasonAudience:                 "The access token was not issued for this resource",
	ReasonNoAudience:               "The access token has no audience",
	ReasonSenderConstrained:        "The access token is sender-constrained and cannot be used as a bearer token",
	ReasonKeysUnavailable:          "The authorization server's keys are not available",
	ReasonInactive:                 "The access token is not active",
	ReasonIntrospectionUnavailable: "The authorization server could not be asked about the access token",
}

var reasonCode = [numReasons]string{
	ReasonNone:                     "",
	ReasonMalformed:                "malformed",
	ReasonTooLarge:                 "too_large",
	ReasonUnsupportedType:          "unsupported_typ",
	ReasonCritical:                 "unsupported_crit",
	ReasonAlgorithm:                "algorithm_not_allowed",
	ReasonUnknownIssuer:            "unknown_issuer",
	ReasonUnknownKey:               "unknown_key",
	ReasonSignature:                "bad_signature",
	ReasonExpired:                  "expired",
	ReasonNoExpiry:                 "no_exp",
	ReasonNotYetValid:              "not_yet_valid",
	ReasonIssuedInFuture:           "iat_in_future",
	ReasonAudience:                 "wrong_audience",
	ReasonNoAudience:               "no_audience",
	ReasonSenderConstrained:        "sender_constrained",
	ReasonKeysUnavailable:          "keys_unavailable",
	ReasonInactive:                 "inactive",
	ReasonIntrospectionUnavailable: "introspection_unavailable",
}

// temporary reports whether r means "could not check" rather than "bad".
func (r Reason) temporary() bool {
	return r == ReasonKeysUnavailable || r == ReasonIntrospectionUnavailable
}

// Description is the human-readable text for error_description. It never
// contains anything taken from the token.
func (r Reason) Description() string {
	if r >= numReasons {
		return ""
	}
	return reasonText[r]
}

// String is a short machine-friendly name, used in logs.
func (r Reason) String() string {
	if r >= numReasons {
		return "unknown"
	}
	return reasonCode[r]
}

// Error is a refused token. Temporary is true when the token could not be
// checked (the issuer's keys could not be had): the caller should answer 503,
// not 401, so that clients retry instead of re-authorizing.
type Error struct {
	Reason    Reason
	Temporary bool
	// Detail is for logs only. It never contains the token.
	Detail string
}

func (e *Error) Error() string {
	if e.Detail != "" {
		return "token rejected: " + e.Reason.String() + ": " + e.Detail
	}
	return "token rejected: " + e.Reason.String()
}

// Preallocated errors for reasons that carry no detail, so that rejecting
// garbage costs no allocation.
var reasonErrors = func() [numReasons]*Error {
	var es [numReasons]*Error
	for r := Reason(0); r < numReasons; r++ {
		es[r] = &Error{Reason: r, Temporary: r.temporary()}
	}
	return es
}()

func reject(r Reason) error { return reasonErrors[r] }

func rejectf(r Reason, detail string) error {
	return &Error{Reason: r, Temporary: r.temporary(), Detail: detail}
}

// ReasonOf returns the reason of a validation error, or ReasonNone.
func ReasonOf(err error) Reason {
	var e *Error
	if errors.As(err, &e) {
		return e.Reason
	}
	return ReasonNone
}
