package plugin_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/refrain-dev/refrain/plugin"
	"github.com/stretchr/testify/require"
)

func TestConfigDefaultsFileAndEnv(t *testing.T) {
	c, err := plugin.LoadConfig("", nil)
	require.NoError(t, err)
	require.Equal(t, ":8080", c.Listen)
	require.Equal(t, "sqlite:refrain.db", c.DatabaseURL)
	require.True(t, c.GraphiQL)
	require.Equal(t, 30*time.Second, c.ShutdownTimeout)

	file := filepath.Join(t.TempDir(), "refrain.yaml")
	require.NoError(t, os.WriteFile(file, []byte("listen: \":9090\"\nquery_max_depth: 8\nshutdown_timeout: 5s\n"), 0o600))
	c, err = plugin.LoadConfig(file, []string{"REFRAIN_QUERY_MAX_DEPTH=20", "PATH=/bin", "REFRAIN_GRAPHIQL=false"})
	require.NoError(t, err)
	require.Equal(t, ":9090", c.Listen, "from the file")
	require.Equal(t, 20, c.QueryMaxDepth, "the environment wins over the file")
	require.Equal(t, 5*time.Second, c.ShutdownTimeout)
	require.False(t, c.GraphiQL)
}

func TestConfigErrorsNameTheSetting(t *testing.T) {
	cases := map[string]string{
		"REFRAIN_QUERY_MAX_DEPTH=deep":           "setting REFRAIN_QUERY_MAX_DEPTH",
		"REFRAIN_GRAPHIQL=perhaps":               "setting REFRAIN_GRAPHIQL",
		"REFRAIN_SHUTDOWN_TIMEOUT=10":            "setting REFRAIN_SHUTDOWN_TIMEOUT",
		"REFRAIN_DATABASE_URL=mysql://root@h/db": "setting REFRAIN_DATABASE_URL",
		"REFRAIN_ADMIN_API_KEY=short":            "setting REFRAIN_ADMIN_API_KEY",
		"REFRAIN_JWT_SECRET=short":               "setting REFRAIN_JWT_SECRET",
		"REFRAIN_JWKS_URL=ftp://keys":            "setting REFRAIN_JWKS_URL",
		"REFRAIN_PUBLIC_URL=localhost":           "setting REFRAIN_PUBLIC_URL",
		"REFRAIN_LOG_FORMAT=xml":                 "setting REFRAIN_LOG_FORMAT",
		"REFRAIN_QUERY_MAX_COMPLEXITY=1":         "setting REFRAIN_QUERY_MAX_COMPLEXITY",
		"REFRAIN_DATABASE_MAX_CONNS=0":           "setting REFRAIN_DATABASE_MAX_CONNS",
	}
	for env, want := range cases {
		_, err := plugin.LoadConfig("", []string{env})
		require.ErrorContains(t, err, want, env)
	}
	file := filepath.Join(t.TempDir(), "bad.yaml")
	require.NoError(t, os.WriteFile(file, []byte("lsiten: \":1\"\n"), 0o600))
	_, err := plugin.LoadConfig(file, nil)
	require.ErrorContains(t, err, `unknown setting "lsiten"`)
	_, err = plugin.LoadConfig(filepath.Join(t.TempDir(), "missing.yaml"), nil)
	require.ErrorContains(t, err, "read config file")
}

func TestSettingsAreDocumented(t *testing.T) {
	seen := map[string]bool{}
	for _, s := range plugin.Settings() {
		require.NotEmpty(t, s.Doc, s.Env)
		require.NotEmpty(t, s.YAML, s.Env)
		require.Regexp(t, `^REFRAIN_[A-Z0-9_]+$`, s.Env)
		require.False(t, seen[s.Env], "duplicate setting %s", s.Env)
		seen[s.Env] = true
	}
}

// TestConfigDurationsAcceptDays: every duration setting takes days, as
// scenario files do, from the environment and from the file.
func TestConfigDurationsAcceptDays(t *testing.T) {
	c, err := plugin.LoadConfig("", []string{"REFRAIN_ATTRIBUTION_CLICK_WINDOW=7d", "REFRAIN_SHUTDOWN_TIMEOUT=1d"})
	require.NoError(t, err)
	require.Equal(t, 7*24*time.Hour, c.AttributionClickWindow)
	require.Equal(t, 24*time.Hour, c.ShutdownTimeout)
	file := filepath.Join(t.TempDir(), "refrain.yaml")
	require.NoError(t, os.WriteFile(file, []byte("attribution_open_window: 365d\n"), 0o600))
	c, err = plugin.LoadConfig(file, nil)
	require.NoError(t, err)
	require.Equal(t, 365*24*time.Hour, c.AttributionOpenWindow)
	_, err = plugin.LoadConfig("", []string{"REFRAIN_SHUTDOWN_TIMEOUT=ad"})
	require.ErrorContains(t, err, `setting REFRAIN_SHUTDOWN_TIMEOUT: "ad" is not a duration (examples: 30s, 5m, 1h, 365d)`)
}

// TestUnknownEnvNamesTheClosestSetting: a misspelt variable is reported
// with the setting it was probably meant to be; test variables are not.
func TestUnknownEnvNamesTheClosestSetting(t *testing.T) {
	got := plugin.UnknownEnv([]string{"REFRAIN_PRESURE_CAP=3", "REFRAIN_LISTEN=:80", "PATH=/bin",
		"REFRAIN_TEST_POSTGRES_URL=postgres://x", "REFRAIN_COMPLETELY_DIFFERENT_THING=1"})
	require.Equal(t, []string{
		"REFRAIN_COMPLETELY_DIFFERENT_THING is not a setting: it is ignored",
		"REFRAIN_PRESURE_CAP is not a setting: it is ignored (did you mean REFRAIN_PRESSURE_CAP?)",
	}, got)
}

func TestConfigDatabaseSchema(t *testing.T) {
	c, err := plugin.LoadConfig("", []string{"REFRAIN_DATABASE_SCHEMA=refrain"})
	require.NoError(t, err)
	require.Equal(t, "refrain", c.DatabaseSchema)
	_, err = plugin.LoadConfig("", []string{`REFRAIN_DATABASE_SCHEMA=Bad"Name`})
	require.ErrorContains(t, err, "setting REFRAIN_DATABASE_SCHEMA")
}
