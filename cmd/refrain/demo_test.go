package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/refrain-dev/refrain/plugin"
	"github.com/refrain-dev/refrain/plugin/kpi"
	"github.com/stretchr/testify/require"
)

// tourQueries returns the GraphQL blocks of the README between the
// tour-queries markers.
func tourQueries(t *testing.T) []string {
	t.Helper()
	raw, err := os.ReadFile("../../README.md")
	require.NoError(t, err)
	readme := string(raw)
	b := strings.Index(readme, "<!-- tour-queries -->")
	e := strings.Index(readme, "<!-- /tour-queries -->")
	require.True(t, b >= 0 && e > b, "README has no <!-- tour-queries --> ... <!-- /tour-queries --> section")
	var out []string
	for _, m := range regexp.MustCompile("(?s)```graphql\n(.*?)```").FindAllStringSubmatch(readme[b:e], -1) {
		out = append(out, m[1])
	}
	require.NotEmpty(t, out, "no ```graphql blocks in the README tour")
	return out
}

// serveGraphQL runs one query through the handler with a bearer key.
func serveGraphQL(t *testing.T, h http.Handler, key, query string) (json.RawMessage, []string) {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"query": query})
	req := httptest.NewRequest(http.MethodPost, "/graphql", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+key)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	var res struct {
		Data   json.RawMessage
		Errors []struct{ Message string }
	}
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &res), "answer %d: %s", rec.Code, rec.Body.String())
	var errs []string
	for _, e := range res.Errors {
		errs = append(errs, e.Message)
	}
	return res.Data, errs
}

// The demo creates a store from scratch, the same for the same seed, and
// every query of the README's tour answers on it with data.
func TestDemoSetUp(t *testing.T) {
	t.Setenv("REFRAIN_ADMIN_API_KEY", "")
	t.Setenv("REFRAIN_LOG_LEVEL", "warn")
	t.Setenv("REFRAIN_LISTEN", "127.0.0.1:8089")
	db := filepath.Join(t.TempDir(), "demo.db")
	code, out, errOut := runCLI(t, "demo", "--no-serve", "--customers", "200", "--db", db)
	require.Zero(t, code, "stderr: %s", errOut)
	require.Contains(t, out, "200 customers")
	require.Contains(t, out, "Outbox     http://127.0.0.1:8089/outbox")
	key := regexp.MustCompile(`Admin key  (\S+)`).FindStringSubmatch(out)
	require.Len(t, key, 2, "no admin key in:\n%s", out)
	require.Contains(t, out, "GraphiQL   http://127.0.0.1:8089/graphql#key="+key[1], "GraphiQL opens with the key in its headers")
	counts := regexp.MustCompile(`\(seed 1, [0-9.]+s\): (.*)`).FindStringSubmatch(out)
	require.Len(t, counts, 2, "no counts in:\n%s", out)

	// An existing file is kept unless --force; the same seed makes the same store.
	code, _, errOut = runCLI(t, "demo", "--no-serve", "--customers", "200", "--db", db)
	require.Equal(t, 1, code)
	require.Contains(t, errOut, "--force")
	code, out2, errOut := runCLI(t, "demo", "--no-serve", "--customers", "200", "--db", db, "--force")
	require.Zero(t, code, "stderr: %s", errOut)
	require.Contains(t, out2, counts[1], "same seed, same store")
	code, out3, _ := runCLI(t, "demo", "--no-serve", "--customers", "200", "--db", db, "--force", "--seed", "2")
	require.Zero(t, code)
	require.NotContains(t, out3, counts[1], "another seed, another store")
	code, out, errOut = runCLI(t, "demo", "--no-serve", "--customers", "200", "--db", db, "--force")
	require.Zero(t, code, "stderr: %s", errOut)
	key = regexp.MustCompile(`Admin key  (\S+)`).FindStringSubmatch(out)
	require.Len(t, key, 2)
	code, _, errOut = runCLI(t, "demo", "--customers", "0", "--db", db)
	require.Equal(t, 1, code)
	require.Contains(t, errOut, "--customers must be at least 1")

	cfg := plugin.DefaultConfig()
	cfg.DatabaseURL = "sqlite:" + db
	cfg.LogLevel = "warn"
	p, err := plugin.New(context.Background(), cfg)
	require.NoError(t, err)
	defer p.Close()
	h := p.Handler()

	// The dashboard and campaigns come with other issues: what the demo
	// prints follows what the build has.
	if routeExists(h, "/dashboard", key[1]) {
		require.Contains(t, out, "Dashboard  http://127.0.0.1:8089/dashboard")
	} else {
		require.Contains(t, out, "Dashboard  (not in this build)")
	}
	data, errs := serveGraphQL(t, h, key[1], `{ __type(name: "RefrainMutation") { fields { name } } }`)
	require.Empty(t, errs)
	if strings.Contains(string(data), `"createCampaign"`) {
		require.Regexp(t, `Campaign: \S+ \(SCHEDULED, tomorrow\)`, out, "the build has campaigns: the demo schedules one")
	} else {
		require.Contains(t, out, "Campaign: none (this build has no campaigns)")
	}

	// A second seeding of the same database is refused.
	_, err = seedDemo(context.Background(), p, DemoOptions{Customers: 1, Seed: 1})
	require.ErrorContains(t, err, "already holds customers")

	// The history is in the engagement rollups the KPIs and the dashboard
	// read: every mail sent, opens, clicks, and the orders attributed.
	nums := regexp.MustCompile(`(\d+) mails with (\d+) delivery, open and click events, (\d+) orders attributed`).FindStringSubmatch(out)
	require.Len(t, nums, 4, "no mail counts in:\n%s", out)
	mails, _ := strconv.Atoi(nums[1])
	attributed, _ := strconv.Atoi(nums[3])
	require.Positive(t, attributed)
	now := time.Now().UTC().Truncate(time.Hour)
	series, err := kpi.Compute(context.Background(), p.DB(), kpi.Query{From: now.AddDate(-2, 0, 0), To: now.Add(2 * time.Hour)})
	require.NoError(t, err)
	require.Len(t, series, 1)
	tot := series[0].Total
	require.EqualValues(t, mails, tot.Sent)
	require.EqualValues(t, attributed, tot.Conversions)
	require.Positive(t, tot.Delivered)
	require.Positive(t, tot.UniqueOpens)
	require.Positive(t, tot.MachineOpens)
	require.Positive(t, tot.UniqueClicks)
	require.Positive(t, tot.Revenue["EUR"])

	queries := tourQueries(t)
	require.GreaterOrEqual(t, len(queries), 4)
	for i, q := range queries {
		data, errs := serveGraphQL(t, h, key[1], q)
		require.Empty(t, errs, "tour query %d:\n%s", i+1, q)
		require.NotContains(t, string(data), "null}}}", "tour query %d found nothing:\n%s", i+1, data)
		require.NotContains(t, string(data), `"nodes":[]`, "tour query %d found nothing:\n%s", i+1, data)
		require.NotContains(t, string(data), `":[]`, "tour query %d has an empty list:\n%s", i+1, data)
	}
	// The tour's customer has what the tour shows.
	data, errs = serveGraphQL(t, h, key[1], queries[0])
	require.Empty(t, errs)
	var one struct {
		Refrain struct {
			Customer *struct {
				Lifecycle  struct{ OrdersCount int }
				Engagement struct{ LastOpenAt *string }
				Messages   struct{ Nodes []any }
				Events     struct{ Nodes []any }
			}
		}
	}
	require.NoError(t, json.Unmarshal(data, &one))
	require.NotNil(t, one.Refrain.Customer, "the tour's customer is in the demo store")
	c := one.Refrain.Customer
	require.GreaterOrEqual(t, c.Lifecycle.OrdersCount, 2)
	require.NotNil(t, c.Engagement.LastOpenAt)
	require.NotEmpty(t, c.Messages.Nodes)
	require.NotEmpty(t, c.Events.Nodes)
}

// Every program under bench/ has its row, with its command, in the
// README's Benchmarks table.
func TestReadmeListsEveryBenchmark(t *testing.T) {
	raw, err := os.ReadFile("../../README.md")
	require.NoError(t, err)
	readme := string(raw)
	b := strings.Index(readme, "## Benchmarks")
	require.GreaterOrEqual(t, b, 0, "README has no Benchmarks section")
	section := readme[b:]
	if e := strings.Index(section[3:], "\n## "); e >= 0 {
		section = section[:e+3]
	}
	dirs, err := os.ReadDir("../../bench")
	require.NoError(t, err)
	require.NotEmpty(t, dirs)
	for _, d := range dirs {
		if !d.IsDir() {
			continue
		}
		require.Contains(t, section, "| `bench/"+d.Name()+"` |", "README Benchmarks has no row for bench/%s", d.Name())
		require.Contains(t, section, "`go run ./bench/"+d.Name(), "README Benchmarks has no command for bench/%s", d.Name())
	}
}

// The demo has what the dashboard judges: a sent campaign whose A/B test
// has a winner that the numbers bear out, and a program with a holdout
// large enough for its uplift to be told from zero.
func TestDemoResults(t *testing.T) {
	cfg := plugin.DefaultConfig()
	cfg.DatabaseURL = "sqlite:" + filepath.Join(t.TempDir(), "demo.db")
	cfg.LogLevel = "warn"
	cfg.AdminAPIKey = "demo-results-admin-key-0123456789abcdef"
	cfg.AutoMigrate = true
	p, err := plugin.New(context.Background(), cfg)
	require.NoError(t, err)
	defer p.Close()
	_, err = seedDemo(context.Background(), p, DemoOptions{Customers: 1000, Seed: 1})
	require.NoError(t, err)

	now := p.Clock().Now().UTC()
	from, to := now.AddDate(0, 0, -30).Format(time.RFC3339), now.Add(time.Hour).Format(time.RFC3339)
	data, errs := serveGraphQL(t, p.Handler(), cfg.AdminAPIKey, `{ refrain {
		campaign(id: "`+demoABCampaign+`") { status winner abTest { winnerMetric } }
		a: kpis(filter: {campaign: "`+demoABCampaign+`", variant: "A"}, from: "`+from+`", to: "`+to+`") { total { delivered openRate { value } } }
		b: kpis(filter: {campaign: "`+demoABCampaign+`", variant: "B"}, from: "`+from+`", to: "`+to+`") { total { delivered openRate { value } } }
		programs { id holdout(from: "`+from+`", to: "`+to+`") { treatedCustomers holdoutCustomers conversionUplift { estimate low } } } } }`)
	require.Empty(t, errs)
	type variant struct {
		Total struct {
			Delivered int
			OpenRate  struct{ Value float64 }
		}
	}
	var res struct {
		Refrain struct {
			Campaign struct {
				Status, Winner string
				AbTest         struct{ WinnerMetric string }
			}
			A, B     variant
			Programs []struct {
				ID      string
				Holdout *struct {
					TreatedCustomers, HoldoutCustomers int
					ConversionUplift                   *struct{ Estimate, Low float64 }
				}
			}
		}
	}
	require.NoError(t, json.Unmarshal(data, &res))
	c := res.Refrain.Campaign
	require.Equal(t, "SENT", c.Status)
	require.Equal(t, "B", c.Winner)
	require.Equal(t, "OPEN_RATE", c.AbTest.WinnerMetric)
	require.Greater(t, res.Refrain.A.Total.Delivered, 50)
	require.Greater(t, res.Refrain.B.Total.Delivered, 50)
	require.Greater(t, res.Refrain.B.Total.OpenRate.Value, res.Refrain.A.Total.OpenRate.Value, "B opens better: it won")
	var found bool
	for _, pr := range res.Refrain.Programs {
		if pr.ID != "win-back" {
			continue
		}
		found = true
		require.NotNil(t, pr.Holdout)
		require.GreaterOrEqual(t, pr.Holdout.HoldoutCustomers, 20)
		require.Greater(t, pr.Holdout.TreatedCustomers, 8*pr.Holdout.HoldoutCustomers)
		require.NotNil(t, pr.Holdout.ConversionUplift)
		require.Positive(t, pr.Holdout.ConversionUplift.Low, "the 95%% interval of the uplift is above zero")
	}
	require.True(t, found, "win-back is a program")
}
