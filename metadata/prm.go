// Package metadata builds what a protected resource tells the world about
// itself: the OAuth 2.0 Protected Resource Metadata document (RFC 9728), the
// well-known URL it is served at, and the WWW-Authenticate challenges (RFC 6750,
// RFC 9470) that point clients to it.
//
// Everything here is computed from configuration, never from a request: a URL
// derived from the Host header would let anyone who can reach the server make
// it advertise their metadata (RFC 9728 §7.3).
package metadata

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// WellKnownPrefix is the registered well-known URI suffix for protected
// resource metadata (RFC 9728 §3, §8.3).
const WellKnownPrefix = "/.well-known/oauth-protected-resource"

// Document is a protected resource metadata document (RFC 9728 §2). Empty
// fields are left out of the JSON: RFC 9728 §3.2 says parameters with zero
// values are omitted rather than sent as null or [].
type Document struct {
	Resource               string   `json:"resource"`
	AuthorizationServers   []string `json:"authorization_servers,omitempty"`
	ScopesSupported        []string `json:"scopes_supported,omitempty"`
	BearerMethodsSupported []string `json:"bearer_methods_supported,omitempty"`
	ResourceName           string   `json:"resource_name,omitempty"`
	ResourceDocumentation  string   `json:"resource_documentation,omitempty"`
}

// Marshal returns the document as JSON. The resource must be set, since
// clients compare it byte for byte with the URL they connected to.
func (d Document) Marshal() ([]byte, error) {
	if d.Resource == "" {
		return nil, errors.New("metadata: resource is empty")
	}
	return json.Marshal(d)
}

// WellKnownPath returns the path at which the metadata for resource is served:
// the well-known prefix inserted between the host and the resource's path,
// after removing a terminating slash (RFC 9728 §3.1). For a resource with no
// path (https://host or https://host/) it is the root form.
func WellKnownPath(resource string) (string, error) {
	u, err := url.Parse(resource)
	if err != nil {
		return "", fmt.Errorf("parsing resource: %w", err)
	}
	p := u.EscapedPath()
	p = strings.TrimSuffix(p, "/")
	return WellKnownPrefix + p, nil
}

// URL returns the absolute URL of the metadata document for resource: its
// scheme and authority, then WellKnownPath. Challenges carry this URL in
// resource_metadata.
func URL(resource string) (string, error) {
	u, err := url.Parse(resource)
	if err != nil {
		return "", fmt.Errorf("parsing resource: %w", err)
	}
	if u.Scheme == "" || u.Host == "" {
		return "", fmt.Errorf("resource %q is not an absolute URL", resource)
	}
	p, err := WellKnownPath(resource)
	if err != nil {
		return "", err
	}
	return u.Scheme + "://" + u.Host + p, nil
}

// Origin returns scheme://host[:port] of an absolute URL, lower-cased the way
// browsers serialise an Origin header, with a default port removed.
func Origin(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", err
	}
	if u.Scheme == "" || u.Host == "" {
		return "", fmt.Errorf("%q is not an absolute URL", raw)
	}
	scheme := strings.ToLower(u.Scheme)
	host := strings.ToLower(u.Hostname())
	port := u.Port()
	if (scheme == "https" && port == "443") || (scheme == "http" && port == "80") {
		port = ""
	}
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	if port != "" {
		host += ":" + port
	}
	return scheme + "://" + host, nil
}
