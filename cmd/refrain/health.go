package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"

	"github.com/urfave/cli/v3"

	"github.com/refrain-dev/refrain/plugin"
)

// cmdHealth GETs /healthz of a running service and fails unless it answers
// 200. The container image uses it as its health check: the image holds
// nothing but the binary, so there is no curl to call.
func cmdHealth(ctx context.Context, env *cliEnv, cmd *cli.Command) error {
	url := cmd.String("url")
	if url == "" {
		// Only REFRAIN_LISTEN matters here: read it without validating the
		// rest, so a health check never fails on an unrelated setting.
		cfg := plugin.DefaultConfig()
		if v, ok := os.LookupEnv("REFRAIN_LISTEN"); ok && v != "" {
			cfg.Listen = v
		}
		url = strings.Replace(baseURL(cfg.Listen), "localhost", "127.0.0.1", 1) + "/healthz"
	}
	ctx, cancel := context.WithTimeout(ctx, cmd.Duration("timeout"))
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("build the request: %w", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("GET %s: %w", url, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s %s", url, resp.Status, strings.TrimSpace(string(body)))
	}
	fmt.Fprintf(env.stdout, "ok: %s answered %s\n", url, strings.TrimSpace(string(body)))
	return nil
}
