package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/refrain-dev/refrain/plugin/store"
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
	require.Equal(t, 1, code, "a dry run fails on rejected rows too, so CI can check a file")
	require.Contains(t, errOut, "nothing was written")
	require.Contains(t, out, "dry run")
	require.Contains(t, out, "would import 2")

	code, out, errOut = runCLI(t, "import", "customers", csv)
	require.Equal(t, 1, code, "rejected rows fail the import")
	require.Contains(t, errOut, "rows rejected: 2 of 4 rows (listed above); the other rows were imported")
	require.Contains(t, out, "4 rows")
	require.Contains(t, out, "imported 2, updated 0, unchanged 0, skipped 2")
	require.Regexp(t, `3\s+not-an-email\s+`, out, "the rejected row with its line number")
	require.Regexp(t, `4\s+ANN@example.com\s+.*duplicate`, out)

	code, out, errOut = runCLI(t, "import", "customers", "--partial", csv)
	require.Zero(t, code, errOut, "--partial accepts the rejections")
	require.Contains(t, out, "imported 0, updated 0, unchanged 2", "a re-run changes nothing")

	code, _, errOut = runCLI(t, "import", "customers", filepath.Join(dir, "missing.csv"))
	require.Equal(t, 1, code)
	require.Contains(t, errOut, "missing.csv")
}

// TestCLIKPIsRebuild: messages and events stored without rollups (as
// before the rollups migration) get them from refrain kpis rebuild, with
// its progress on stdout; a second run gives the same rows.
func TestCLIKPIsRebuild(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("REFRAIN_DATABASE_URL", "sqlite:"+filepath.Join(dir, "kpis.db"))
	code, out, errOut := runCLI(t, "kpis", "rebuild")
	require.Zero(t, code, errOut)
	require.Contains(t, out, "no message: nothing to rebuild")

	ctx := context.Background()
	db, err := store.Open(ctx, "sqlite:"+filepath.Join(dir, "kpis.db"), nil)
	require.NoError(t, err)
	defer db.Close()
	at := time.Date(2026, 11, 3, 10, 15, 0, 0, time.UTC)
	for _, q := range []string{
		"INSERT INTO customers (public_id, email, email_normalized, created_at, updated_at) VALUES ('cus_1', 'a@example.com', 'a@example.com', ?0, ?0)",
		`INSERT INTO messages (public_id, idempotency_key, customer_id, recipient, template, kind, subject, html, text, program, scenario, step,
  state, next_attempt_at, sent_at, created_at, updated_at)
  SELECT 'msg_' || n, 'k' || n, 1, 'a@example.com', 't', 'marketing', 's', 'h', 't', 'welcome', 'welcome', 'hello', 'sent', ?0, ?0, ?0, ?0
  FROM (SELECT 1 AS n UNION ALL SELECT 2)`,
		`INSERT INTO message_events (provider_event_id, provider, message_id, customer_id, kind, occurred_at, machine_open, raw, created_at)
  VALUES ('e1', 'mailgun', 1, 1, 'delivered', ?0, FALSE, '{}', ?0), ('e2', 'mailgun', 1, 1, 'opened', ?0, FALSE, '{}', ?0),
  ('e3', 'mailgun', 1, 1, 'opened', ?0, FALSE, '{}', ?0), ('e4', 'mailgun', 2, 1, 'clicked', ?0, FALSE, '{}', ?0)`,
	} {
		_, err := db.NewRaw(q, at).Exec(ctx)
		require.NoError(t, err)
	}
	type row struct {
		Hour                                       time.Time
		Program                                    string
		Sent, Delivered, UniqueOpens, UniqueClicks int64
	}
	read := func() []row {
		var rows []row
		require.NoError(t, db.NewRaw("SELECT hour, program, sent, delivered, unique_opens, unique_clicks FROM kpi_hourly").Scan(ctx, &rows))
		for i := range rows {
			rows[i].Hour = rows[i].Hour.UTC()
		}
		return rows
	}
	want := []row{{Hour: time.Date(2026, 11, 3, 10, 0, 0, 0, time.UTC), Program: "welcome", Sent: 2, Delivered: 1, UniqueOpens: 2, UniqueClicks: 1}}
	for run := 0; run < 2; run++ {
		code, out, errOut = runCLI(t, "kpis", "rebuild")
		require.Zero(t, code, errOut)
		require.Contains(t, out, "rebuilding the KPI rollups of the messages sent from 2026-11-03 to 2026-11-04")
		require.Contains(t, out, "2026-11-03: 2 messages")
		require.Contains(t, out, "done: 0 orders attributed, rollups of 2 messages rebuilt")
		require.Equal(t, want, read())
	}
	var daily int64
	require.NoError(t, db.NewRaw("SELECT SUM(unique_opens) FROM kpi_daily WHERE day = ?", time.Date(2026, 11, 3, 0, 0, 0, 0, time.UTC)).Scan(ctx, &daily))
	require.Equal(t, int64(2), daily)

	code, _, errOut = runCLI(t, "kpis", "rebuild", "--from", "2026-11-05", "--to", "2026-11-01")
	require.Equal(t, 1, code)
	require.Contains(t, errOut, "--to (2026-11-01) must be after --from (2026-11-05)")
	code, _, errOut = runCLI(t, "kpis", "rebuild", "--from", "yesterday")
	require.Equal(t, 1, code)
	require.Contains(t, errOut, `--from: "yesterday" is not a date`)
	code, _, errOut = runCLI(t, "kpis")
	require.Equal(t, 2, code)
	require.Contains(t, errOut, "usage: refrain kpis rebuild")
}
