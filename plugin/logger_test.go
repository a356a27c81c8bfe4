package plugin_test

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/refrain-dev/refrain/plugin"
)

func TestJSONLogsWriteDurationsAsStrings(t *testing.T) {
	var buf bytes.Buffer
	cfg := plugin.DefaultConfig()
	cfg.LogFormat = "json"
	plugin.NewLogger(cfg, &buf).Info("done", "took", 1500*time.Millisecond)
	var line map[string]any
	require.NoError(t, json.Unmarshal(buf.Bytes(), &line))
	require.Equal(t, "1.5s", line["took"])
}
