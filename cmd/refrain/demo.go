package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/urfave/cli/v3"

	"github.com/refrain-dev/refrain/plugin"
	"github.com/refrain-dev/refrain/plugin/auth"
)

// cmdDemo creates a demo store in a fresh SQLite file and serves it.
func cmdDemo(ctx context.Context, env *cliEnv, cmd *cli.Command) error {
	customers, seed, file := cmd.Int("customers"), cmd.Uint64("seed"), cmd.String("db")
	noServe, force := cmd.Bool("no-serve"), cmd.Bool("force")
	if customers < 1 {
		return fmt.Errorf("--customers must be at least 1, not %d", customers)
	}
	cfg, err := loadConfig(cmd)
	if err != nil {
		return err
	}
	if _, err := os.Stat(file); err == nil {
		if !force {
			return fmt.Errorf("%s exists: give --force to replace it, or --db another file", file)
		}
		for _, suffix := range []string{"", "-wal", "-shm"} {
			if err := os.Remove(file + suffix); err != nil && !errors.Is(err, os.ErrNotExist) {
				return err
			}
		}
	}
	cfg.DatabaseURL = "sqlite:" + file
	cfg.AutoMigrate = true
	started := time.Now()
	p, err := plugin.New(ctx, cfg)
	if err != nil {
		return err
	}
	defer p.Close()
	sum, err := seedDemo(ctx, p, DemoOptions{Customers: customers, Seed: seed})
	if err != nil {
		return err
	}
	key := cfg.AdminAPIKey
	if key == "" {
		if key, _, err = (auth.KeyStore{DB: p.DB()}).Create(ctx, time.Now().UTC(), "demo", "read,write"); err != nil {
			return fmt.Errorf("create the demo admin key: %w", err)
		}
	}
	campaignID, campaignStatus, campaignErr := scheduleDemoCampaign(ctx, p, key)

	base := baseURL(cfg.Listen)
	w := env.stdout
	fmt.Fprintf(w, "Demo store in %s (seed %d, %.1fs): %d customers, %d orders (%s EUR), %d carts (%d abandoned, %d about to be),\n",
		file, seed, time.Since(started).Seconds(), sum.Customers, sum.Orders, money(sum.RevenueMinor), sum.Carts, sum.AbandonedCarts, sum.OpenCarts)
	fmt.Fprintf(w, "%d mails with %d delivery, open and click events, %d orders attributed to them, the library programs active.\n",
		sum.Messages, sum.MessageEvents, sum.Conversions)
	switch {
	case campaignErr != nil:
		fmt.Fprintf(w, "Campaign: not scheduled: %v\n", campaignErr)
	case campaignID != "":
		fmt.Fprintf(w, "Campaign: %s (%s, tomorrow)\n", campaignID, campaignStatus)
	default:
		fmt.Fprintln(w, "Campaign: none (this build has no campaigns)")
	}
	fmt.Fprintln(w)
	// The key rides in the fragment, which the browser keeps to itself:
	// GraphiQL moves it into its Authorization header.
	fmt.Fprintf(w, "  GraphiQL   %s/graphql#key=%s   (the admin key is in its Headers tab)\n", base, url.QueryEscape(key))
	if routeExists(p.Handler(), "/dashboard", key) {
		fmt.Fprintf(w, "  Dashboard  %s/dashboard\n", base)
	} else {
		fmt.Fprintln(w, "  Dashboard  (not in this build)")
	}
	fmt.Fprintf(w, "  Outbox     %s/outbox   (curl -H \"Authorization: Bearer $KEY\" %s/outbox)\n", base, base)
	fmt.Fprintf(w, "  Admin key  %s\n", key)
	fmt.Fprintf(w, "  A customer to look at: %s\n", sum.SampleCustomer)
	if noServe {
		fmt.Fprintf(w, "\nServe it later with: REFRAIN_DATABASE_URL=sqlite:%s refrain serve\n", file)
		return nil
	}
	fmt.Fprintln(w, "\nServing; Ctrl-C stops.")
	return p.Serve(ctx)
}

// baseURL is the local address a browser reaches the listen address at.
func baseURL(listen string) string {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return "http://" + listen
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "localhost"
	}
	return "http://" + net.JoinHostPort(host, port)
}

// routeExists reports whether the handler serves path to an admin (any
// answer but 404).
func routeExists(h http.Handler, path, key string) bool {
	req := httptest.NewRequest(http.MethodGet, path, nil)
	req.Header.Set("Authorization", "Bearer "+key)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Code != http.StatusNotFound
}

func money(minor int64) string {
	s := fmt.Sprintf("%d", minor/100)
	var b strings.Builder
	for i, r := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	return fmt.Sprintf("%s.%02d", b.String(), minor%100)
}
