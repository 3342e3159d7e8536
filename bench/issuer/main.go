// Command issuer is the authorization server stand-in for bench/load.sh,
// built on internal/testissuer.
//
//	issuer -key k.pem -addr 127.0.0.1:PORT
//	    serves RFC 8414 metadata and the JWK Set at http://127.0.0.1:PORT
//	    (the issuer identifier), plus GET /stats: {"jwks_fetches":N,...}.
//	    The key file is created when missing.
//	issuer -key k.pem -mint -iss URL -aud URL -scope S -n N -out FILE
//	    writes N distinct valid tokens (distinct jti), one per line.
//	issuer -key k.pem -mint -unknown-kid ... -n N -out FILE
//	    the same claims, but signed by a key the issuer never published,
//	    each token with its own random kid.
//	issuer -free-ports N
//	    prints N currently free TCP ports on 127.0.0.1.
package main

import (
	"bufio"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/mcpauth/caddy-mcp-auth/internal/testissuer"
)

const kid = "bench-key-1"

func main() {
	var (
		keyFile    = flag.String("key", "", "PEM file of the RSA signing key (created if missing)")
		addr       = flag.String("addr", "", "serve the issuer on this address (127.0.0.1:PORT)")
		mint       = flag.Bool("mint", false, "mint tokens instead of serving")
		iss        = flag.String("iss", "", "iss claim")
		aud        = flag.String("aud", "", "aud claim")
		scope      = flag.String("scope", "mcp:read mcp:write", "scope claim")
		n          = flag.Int("n", 1, "number of tokens")
		out        = flag.String("out", "", "output file (default stdout)")
		unknownKid = flag.Bool("unknown-kid", false, "sign with an unpublished key and random kids")
		ttl        = flag.Duration("ttl", 2*time.Hour, "token lifetime")
		freePorts  = flag.Int("free-ports", 0, "print this many free ports and exit")
	)
	flag.Parse()
	log.SetFlags(0)
	log.SetPrefix("issuer: ")

	if *freePorts > 0 {
		var ls []net.Listener
		for range *freePorts {
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				log.Fatal(err)
			}
			ls = append(ls, l)
			fmt.Println(l.Addr().(*net.TCPAddr).Port)
		}
		for _, l := range ls {
			l.Close()
		}
		return
	}
	if *keyFile == "" {
		log.Fatal("-key is required")
	}
	key, err := loadOrCreateKey(*keyFile)
	if err != nil {
		log.Fatal(err)
	}
	switch {
	case *mint:
		if *iss == "" || *aud == "" {
			log.Fatal("-mint needs -iss and -aud")
		}
		if err := mintTokens(key, *iss, *aud, *scope, *n, *ttl, *unknownKid, *out); err != nil {
			log.Fatal(err)
		}
	case *addr != "":
		serve(key, *addr)
	default:
		log.Fatal("nothing to do: give -addr or -mint")
	}
}

func loadOrCreateKey(path string) (*testissuer.Key, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		k := testissuer.NewRSA(kid)
		der, err := x509.MarshalPKCS8PrivateKey(k.Private)
		if err != nil {
			return nil, err
		}
		b = pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
		if err := os.WriteFile(path, b, 0o600); err != nil {
			return nil, err
		}
		return k, nil
	}
	if err != nil {
		return nil, err
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, fmt.Errorf("%s: no PEM block", path)
	}
	priv, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, err
	}
	rk, ok := priv.(*rsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("%s: not an RSA key", path)
	}
	return &testissuer.Key{KID: kid, Alg: "RS256", Private: rk}, nil
}

// serve publishes key through a testissuer.Issuer, on addr rather than on
// the httptest listener, with /stats added.
func serve(key *testissuer.Key, addr string) {
	iss := testissuer.New(key)
	defer iss.Close()
	l, err := net.Listen("tcp", addr)
	if err != nil {
		log.Fatal(err)
	}
	// The issuer identifier, metadata and jwks_uri all name addr.
	iss.URL = "http://" + l.Addr().String()
	inner := iss.Server.Config.Handler
	mux := http.NewServeMux()
	mux.HandleFunc("GET /stats", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]int64{
			"jwks_fetches":     iss.JWKSFetches.Load(),
			"metadata_fetches": iss.MetadataFetches.Load(),
		})
	})
	mux.Handle("/", inner)
	log.Printf("serving %s", iss.URL)
	log.Fatal(http.Serve(l, mux))
}

func mintTokens(key *testissuer.Key, iss, aud, scope string, n int, ttl time.Duration, unknown bool, out string) error {
	signer := key
	if unknown {
		// A key the issuer never published; the kid varies per token below.
		signer = testissuer.NewRSA("unknown")
	}
	toks := make([]string, n)
	now := time.Now().Unix()
	var wg sync.WaitGroup
	workers := runtime.GOMAXPROCS(0)
	for w := range workers {
		wg.Go(func() {
			for i := w; i < n; i += workers {
				k := signer
				if unknown {
					k = &testissuer.Key{KID: randHex(8), Alg: "RS256", Private: signer.Private}
				}
				toks[i] = testissuer.Mint(testissuer.Token{Key: k, Claims: map[string]any{
					"iss": iss, "sub": fmt.Sprintf("user-%d", i), "aud": aud,
					"exp": now + int64(ttl/time.Second), "iat": now, "nbf": now,
					"client_id": "bench-client", "jti": randHex(16), "scope": scope,
				}})
			}
		})
	}
	wg.Wait()
	f := os.Stdout
	if out != "" {
		var err error
		if f, err = os.Create(out); err != nil {
			return err
		}
		defer f.Close()
	}
	bw := bufio.NewWriter(f)
	bw.WriteString(strings.Join(toks, "\n"))
	bw.WriteByte('\n')
	return bw.Flush()
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
