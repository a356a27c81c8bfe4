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
