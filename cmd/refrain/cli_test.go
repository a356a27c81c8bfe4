package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// The README's settings table is generated from the Config struct; a stale
// README fails here (run go generate ./cmd/refrain).
func TestReadmeListsEverySetting(t *testing.T) {
	raw, err := os.ReadFile("../../README.md")
	require.NoError(t, err)
	want, err := replaceSettings(string(raw))
	require.NoError(t, err)
	require.Equal(t, want, string(raw), "README settings table is stale: run go generate ./cmd/refrain")
}

func runCLI(t *testing.T, args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := run(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestCLIUsageAndErrors(t *testing.T) {
	code, out, _ := runCLI(t, "help")
	require.Zero(t, code)
	require.Contains(t, out, "refrain serve")
	code, _, errOut := runCLI(t, "bogus")
	require.Equal(t, 2, code)
	require.Contains(t, errOut, `unknown command "bogus"`)
	code, _, errOut = runCLI(t, "migrate")
	require.Equal(t, 2, code)
	require.Contains(t, errOut, "usage: refrain migrate")
	code, _, errOut = runCLI(t, "apikey", "create")
	require.Equal(t, 2, code)
	require.Contains(t, errOut, "--name is required")
}

func TestCLIMigrateAndAPIKeys(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("REFRAIN_DATABASE_URL", "sqlite:"+filepath.Join(dir, "cli.db"))
	code, out, errOut := runCLI(t, "migrate", "status")
	require.Zero(t, code, errOut)
	require.Contains(t, out, "_foundation\tpending")
	code, out, _ = runCLI(t, "migrate", "up")
	require.Zero(t, code)
	require.Contains(t, out, "applied 20261123000001_foundation")
	code, out, _ = runCLI(t, "migrate", "up")
	require.Zero(t, code)
	require.Contains(t, out, "up to date")

	code, key, errOut := runCLI(t, "apikey", "create", "--name", "ci", "--scopes", "read,write")
	require.Zero(t, code, errOut)
	require.Regexp(t, `^rfn_[a-z2-9]{8}_[A-Za-z0-9_-]{43}\n$`, key, "the key alone on stdout")
	code, _, errOut = runCLI(t, "apikey", "create", "--name", "x", "--scopes", "admin")
	require.Equal(t, 1, code)
	require.Contains(t, errOut, `unknown scope "admin"`)
	code, out, _ = runCLI(t, "apikey", "list")
	require.Zero(t, code)
	require.Contains(t, out, "read,write")
	require.NotContains(t, out, strings.TrimSpace(key)[13:], "the secret is never listed")
	code, out, _ = runCLI(t, "apikey", "revoke", "1")
	require.Zero(t, code)
	require.Contains(t, out, "revoked key 1")
	code, out, _ = runCLI(t, "apikey", "list")
	require.Zero(t, code)
	require.Contains(t, out, "revoked")

	t.Setenv("REFRAIN_LOG_LEVEL", "loud")
	code, _, errOut = runCLI(t, "migrate", "up")
	require.Equal(t, 1, code)
	require.Contains(t, errOut, "setting REFRAIN_LOG_LEVEL")
}

func TestCLIImportCustomers(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("REFRAIN_DATABASE_URL", "sqlite:"+filepath.Join(dir, "import.db"))
	csv := filepath.Join(dir, "base.csv")
	require.NoError(t, os.WriteFile(csv, []byte("email,first_name,city\nann@example.com,Ann,Paris\nnot-an-email,Bob,Lyon\nANN@example.com,Ann,Paris\ncat@example.com,Cat,Nice\n"), 0o600))

	code, out, errOut := runCLI(t, "import", "customers", csv, "--dry-run")
	require.Zero(t, code, errOut)
	require.Contains(t, out, "dry run")
	require.Contains(t, out, "would import 2")

	code, out, errOut = runCLI(t, "import", "customers", csv)
	require.Zero(t, code, errOut)
	require.Contains(t, out, "4 rows")
	require.Contains(t, out, "imported 2, updated 0, unchanged 0, skipped 2")
	require.Regexp(t, `3\s+not-an-email\s+`, out, "the rejected row with its line number")
	require.Regexp(t, `4\s+ANN@example.com\s+.*duplicate`, out)

	code, out, _ = runCLI(t, "import", "customers", csv)
	require.Zero(t, code)
	require.Contains(t, out, "imported 0, updated 0, unchanged 2", "a re-run changes nothing")

	code, _, errOut = runCLI(t, "import", "customers", filepath.Join(dir, "missing.csv"))
	require.Equal(t, 1, code)
	require.Contains(t, errOut, "missing.csv")
}
