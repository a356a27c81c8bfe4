package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/urfave/cli/v3"

	"github.com/refrain-dev/refrain/plugin/store"
	"github.com/refrain-dev/refrain/plugin/store/storetest"
)

// commandPaths lists the path of every command and subcommand.
func commandPaths(prefix []string, cmds []*cli.Command) [][]string {
	var out [][]string
	for _, c := range cmds {
		p := append(append([]string{}, prefix...), c.Name)
		out = append(out, p)
		out = append(out, commandPaths(p, c.Commands)...)
	}
	return out
}

// TestCLIHelpOnEveryCommand: --help and -h exit 0 on every command and
// show long flags with two dashes only.
func TestCLIHelpOnEveryCommand(t *testing.T) {
	paths := commandPaths(nil, newApp(&cliEnv{}).Commands)
	require.Greater(t, len(paths), 20)
	oneDash := regexp.MustCompile(`(^|\s)-[a-z][a-z-]+`)
	for _, p := range append(paths, []string{}) {
		for _, h := range []string{"--help", "-h"} {
			code, out, errOut := runCLI(t, append(p, h)...)
			require.Zero(t, code, "%v %s: %s", p, h, errOut)
			require.Contains(t, out, "USAGE:", "%v %s", p, h)
			require.NotRegexp(t, oneDash, out, "%v %s: a long flag with one dash", p, h)
		}
	}
	code, out, _ := runCLI(t, "serve", "--help")
	require.Zero(t, code)
	require.Contains(t, out, "--config FILE")
	code, out, _ = runCLI(t, "config", "--help")
	require.Zero(t, code)
	require.NotContains(t, out, "REFRAIN_LISTEN", "help, not the settings table")
	code, _, errOut := runCLI(t, "migrate", "status", "--nope")
	require.Equal(t, 2, code)
	require.Contains(t, errOut, "unknown flag --nope")
}

func TestCLIVersionFromBuildInfo(t *testing.T) {
	bi := &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Path: "github.com/refrain-dev/refrain", Version: "v1.4.0"},
		Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "0123456789abcdef0123"}, {Key: "vcs.modified", Value: "true"}}}
	require.Equal(t, "refrain v1.4.0 (commit 0123456789ab, modified, go1.26.8)", formatVersion("dev", bi))
	bi = &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v0.0.0-20261208001823-de92e4f0a1b2"}}
	require.Equal(t, "refrain v0.0.0-20261208001823-de92e4f0a1b2 (commit de92e4f0a1b2, go1.26.8)", formatVersion("dev", bi),
		"go install module@commit: the commit from the pseudo-version")
	require.Equal(t, "refrain v2.0.0 (commit unknown, go1.26.8)", formatVersion("v2.0.0", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"}}))
	code, out, _ := runCLI(t, "version")
	require.Zero(t, code)
	require.Regexp(t, `^refrain \S+ \(commit \S+.*, go1\.\d+`, out)
}

func TestCLIWarnsAboutUnknownSettings(t *testing.T) {
	t.Setenv("REFRAIN_DATABASE_URL", "sqlite:"+filepath.Join(t.TempDir(), "w.db"))
	t.Setenv("REFRAIN_PRESURE_CAP", "3")
	code, _, errOut := runCLI(t, "migrate", "status")
	require.Zero(t, code, errOut)
	require.Contains(t, errOut, "refrain: warning: REFRAIN_PRESURE_CAP is not a setting: it is ignored (did you mean REFRAIN_PRESSURE_CAP?)")
}

func TestCLIBadSQLitePath(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("REFRAIN_DATABASE_URL", "sqlite:"+filepath.Join(dir, "nope", "r.db"))
	code, _, errOut := runCLI(t, "migrate", "up")
	require.Equal(t, 1, code)
	require.Contains(t, errOut, "the directory "+filepath.Join(dir, "nope")+" does not exist")
	require.NotContains(t, errOut, "out of memory")
}

// TestCLIRefusesASchemaOfAnotherApplication: migrate up and serve refuse
// to create tables beside tables Refrain did not create, unless
// --shared-schema (or REFRAIN_DATABASE_SHARED_SCHEMA) says so; on
// PostgreSQL, REFRAIN_DATABASE_SCHEMA gives Refrain a schema of its own.
func TestCLIRefusesASchemaOfAnotherApplication(t *testing.T) {
	ctx := context.Background()
	t.Run("sqlite", func(t *testing.T) {
		url := "sqlite:" + filepath.Join(t.TempDir(), "shop.db")
		db, err := store.Open(ctx, url, nil)
		require.NoError(t, err)
		_, err = db.ExecContext(ctx, "CREATE TABLE products (id INTEGER PRIMARY KEY)")
		require.NoError(t, err)
		require.NoError(t, db.Close())
		t.Setenv("REFRAIN_DATABASE_URL", url)
		for _, args := range [][]string{{"migrate", "up"}, {"migrate", "status"}, {"serve"}} {
			code, _, errOut := runCLI(t, args...)
			require.Equal(t, 1, code, args)
			require.Contains(t, errOut, "the database holds tables Refrain did not create: the SQLite file holds 1 tables (products)", args)
			require.Contains(t, errOut, "REFRAIN_DATABASE_SHARED_SCHEMA=true", args)
		}
		code, out, errOut := runCLI(t, "migrate", "up", "--shared-schema")
		require.Zero(t, code, errOut)
		require.Contains(t, out, "applied 20261123000001_foundation")
	})
	t.Run("postgres", func(t *testing.T) {
		base := os.Getenv(storetest.PostgresURLEnv)
		if base == "" {
			t.Skip(storetest.PostgresURLEnv + " is not set")
		}
		var b [6]byte
		_, _ = rand.Read(b[:])
		shop, own := "shop_"+hex.EncodeToString(b[:]), "refrain_"+hex.EncodeToString(b[:])
		admin, err := store.Open(ctx, base, &store.Options{MaxOpenConns: 1})
		require.NoError(t, err)
		t.Cleanup(func() {
			_, _ = admin.ExecContext(context.Background(), "DROP SCHEMA IF EXISTS "+shop+" CASCADE")
			_, _ = admin.ExecContext(context.Background(), "DROP SCHEMA IF EXISTS "+own+" CASCADE")
			_ = admin.Close()
		})
		_, err = admin.ExecContext(ctx, "CREATE SCHEMA "+shop)
		require.NoError(t, err)
		_, err = admin.ExecContext(ctx, "CREATE TABLE "+shop+".products (id INTEGER PRIMARY KEY)")
		require.NoError(t, err)
		sep := "?"
		if strings.Contains(base, "?") {
			sep = "&"
		}
		t.Setenv("REFRAIN_DATABASE_URL", base+sep+"search_path="+shop)
		code, _, errOut := runCLI(t, "migrate", "up")
		require.Equal(t, 1, code)
		require.Contains(t, errOut, "schema "+shop+" holds 1 tables (products)")
		var n int
		require.NoError(t, admin.NewRaw("SELECT count(*) FROM information_schema.tables WHERE table_schema = ?", shop).Scan(ctx, &n))
		require.Equal(t, 1, n, "nothing was created")

		t.Setenv("REFRAIN_DATABASE_SCHEMA", own)
		code, out, errOut := runCLI(t, "migrate", "up")
		require.Zero(t, code, errOut)
		require.Contains(t, out, "applied 20261123000001_foundation")
		require.NoError(t, admin.NewRaw("SELECT count(*) FROM information_schema.tables WHERE table_schema = ? AND table_name = 'customers'", own).Scan(ctx, &n))
		require.Equal(t, 1, n, "the tables are in the schema of its own")
	})
}

func TestCLIHealth(t *testing.T) {
	status := http.StatusOK
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		require.Equal(t, "/healthz", r.URL.Path)
		w.WriteHeader(status)
		_, _ = w.Write([]byte(`{"status":"ok"}`))
	}))
	defer srv.Close()
	code, out, errOut := runCLI(t, "health", "--url", srv.URL+"/healthz")
	require.Zero(t, code, errOut)
	require.Contains(t, out, `answered {"status":"ok"}`)
	t.Setenv("REFRAIN_LISTEN", strings.TrimPrefix(srv.URL, "http://"))
	code, _, errOut = runCLI(t, "health")
	require.Zero(t, code, errOut, "the address from REFRAIN_LISTEN")
	status = http.StatusServiceUnavailable
	code, _, errOut = runCLI(t, "health")
	require.Equal(t, 1, code)
	require.Contains(t, errOut, "503 Service Unavailable")
}
