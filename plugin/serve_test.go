package plugin

import (
	"context"
	"log/slog"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestServeWaitsForItsWorkers checks that Serve returns only once the
// workers it started have returned, so the caller can close the database.
func TestServeWaitsForItsWorkers(t *testing.T) {
	cfg := DefaultConfig()
	cfg.DatabaseURL = "sqlite:" + filepath.Join(t.TempDir(), "refrain.db")
	cfg.AutoMigrate = true
	cfg.Listen = "127.0.0.1:0"
	cfg.ShutdownTimeout = 5 * time.Second
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	p, err := New(ctx, cfg, WithLogger(slog.New(slog.DiscardHandler)))
	require.NoError(t, err)
	defer p.Close()

	started := make(chan struct{})
	var exited atomic.Bool
	p.addWorker("probe", func(ctx context.Context) error {
		close(started)
		<-ctx.Done()
		// A worker finishing its pass after the signal: Serve must wait.
		time.Sleep(200 * time.Millisecond)
		exited.Store(true)
		return nil
	})
	served := make(chan error, 1)
	go func() { served <- p.Serve(ctx) }()
	select {
	case <-started:
	case err := <-served:
		t.Fatalf("Serve returned before its workers started: %v", err)
	}
	require.False(t, exited.Load())
	cancel()
	select {
	case err := <-served:
		require.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after its context ended")
	}
	require.True(t, exited.Load(), "Serve returned before the probe worker stopped")
}
