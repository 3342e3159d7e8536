package validator

import (
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"math/big"
	"os"
)

func hmacSHA256(key, msg []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write(msg)
	return m.Sum(nil)
}

func writeFile(path string, b []byte) error { return os.WriteFile(path, b, 0o600) }

type bigInt = big.Int

var errBench = errors.New("verification failed")
