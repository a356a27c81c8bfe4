package plugin_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"

	"github.com/refrain-dev/refrain/plugin"
)

// Mount Refrain in a host application under /refrain/, next to the host's
// own routes, and run its workers beside the host's server.
func Example_mountUnderPrefix() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dir, _ := os.MkdirTemp("", "refrain-example")
	defer os.RemoveAll(dir)

	cfg := plugin.DefaultConfig()
	cfg.DatabaseURL = "sqlite:" + filepath.Join(dir, "refrain.db")
	p, err := plugin.New(ctx, cfg, plugin.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer p.Close()
	if err := p.Start(ctx); err != nil {
		fmt.Println(err)
		return
	}
	go p.Run(ctx)

	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "the host's own page") })
	mux.Handle("/refrain/", http.StripPrefix("/refrain", p.Handler()))
	host := httptest.NewServer(mux)
	defer host.Close()

	for _, path := range []string{"/", "/refrain/healthz"} {
		resp, err := http.Get(host.URL + path)
		if err != nil {
			fmt.Println(err)
			return
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		fmt.Printf("%s %d %s\n", path, resp.StatusCode, body)
	}
	// Output:
	// / 200 the host's own page
	// /refrain/healthz 200 {"status":"ok"}
}
