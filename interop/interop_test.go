// Package interop runs the third-party interop suite (run.sh) as part of
// `go test ./...`: oidc-provider as the authorization server, MCP servers
// and clients from the official TypeScript and Go SDKs, the MCP Inspector
// CLI and the official conformance suite, against a Caddy built from this
// repository. It needs Node.js and npm; run.sh installs the npm packages
// from the committed lock file when node_modules is missing.
package interop

import (
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestInterop(t *testing.T) {
	if testing.Short() {
		t.Skip("interop suite skipped in -short mode")
	}
	if _, err := exec.LookPath("npm"); err != nil {
		t.Fatal("the interop suite needs Node.js and npm on PATH (apt-get install nodejs npm)")
	}
	consultInputs(t, "..")
	caddy := filepath.Join(t.TempDir(), "caddy")
	build := exec.Command("go", "build", "-o", caddy, "../cmd/caddy")
	build.Stdout, build.Stderr = os.Stdout, os.Stderr
	if err := build.Run(); err != nil {
		t.Fatalf("building caddy: %v", err)
	}
	run := exec.Command("bash", "run.sh")
	run.Env = append(os.Environ(), "CADDY="+caddy)
	run.Stdout, run.Stderr = os.Stdout, os.Stderr
	if err := run.Run(); err != nil {
		t.Fatalf("interop suite failed: %v (the lines above name each failed scenario)", err)
	}
}

// consultInputs opens every source file of the repository, so that go
// test's result cache counts them as inputs of this test: the caddy binary
// and the scripts are built and run by child processes, whose reads the
// cache cannot see, and a cached "ok" after the module changed would be a lie.
func consultInputs(t *testing.T, root string) {
	t.Helper()
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() {
			if p != root && (name == "node_modules" || strings.HasPrefix(name, ".")) {
				return filepath.SkipDir
			}
			return nil
		}
		switch filepath.Ext(name) {
		case ".go", ".mjs", ".sh", ".json", ".mod", ".sum":
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			return f.Close()
		}
		return nil
	})
	if err != nil {
		t.Fatalf("reading the repository's sources: %v", err)
	}
}
