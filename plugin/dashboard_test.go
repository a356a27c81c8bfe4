package plugin_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/refrain-dev/refrain/plugin"
	"github.com/refrain-dev/refrain/plugin/campaign"
	"github.com/refrain-dev/refrain/plugin/kpi"
	"github.com/refrain-dev/refrain/plugin/store/storetest"
)

// chromiumPath finds Debian's chromium; the test is skipped without it
// unless REFRAIN_REQUIRE_CHROMIUM=1 (CI sets it).
func chromiumPath(t *testing.T) string {
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("REFRAIN_REQUIRE_CHROMIUM") == "1" {
		t.Fatal("chromium is required (REFRAIN_REQUIRE_CHROMIUM=1) but not installed: apt-get install -y chromium")
	}
	t.Skip("chromium is not installed (apt-get install -y chromium); set REFRAIN_REQUIRE_CHROMIUM=1 to fail instead")
	return ""
}

func TestDashboardRoutes(t *testing.T) {
	m := newMetricsEnv(t, storetest.SQLite(t))
	srv := httptest.NewServer(m.p.Handler())
	defer srv.Close()
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

	// No key: the sign-in form, and no data anywhere.
	res, err := http.Get(srv.URL + "/dashboard")
	require.NoError(t, err)
	require.Equal(t, http.StatusUnauthorized, res.StatusCode)
	res.Body.Close()
	for _, path := range []string{"/dashboard/app.js", "/dashboard/dashboard.graphql"} {
		res, err = http.Get(srv.URL + path)
		require.NoError(t, err)
		require.Equal(t, http.StatusUnauthorized, res.StatusCode, path)
		res.Body.Close()
	}
	res, err = http.Post(srv.URL+"/dashboard/graphql", "application/json", strings.NewReader(`{"query":"{ refrain { programs { id } } }"}`))
	require.NoError(t, err)
	require.Equal(t, http.StatusUnauthorized, res.StatusCode)
	res.Body.Close()

	// A wrong key is refused; a read key signs in and gets a cookie.
	res, err = noRedirect.PostForm(srv.URL+"/dashboard/login", url.Values{"key": {"nope"}})
	require.NoError(t, err)
	require.Equal(t, http.StatusUnauthorized, res.StatusCode)
	res.Body.Close()
	readKey, _ := m.apiKey("read")
	res, err = noRedirect.PostForm(srv.URL+"/dashboard/login", url.Values{"key": {readKey}})
	require.NoError(t, err)
	require.Equal(t, http.StatusSeeOther, res.StatusCode)
	require.Equal(t, "/dashboard", res.Header.Get("Location")[len(res.Header.Get("Location"))-len("/dashboard"):])
	cookies := res.Cookies()
	require.Len(t, cookies, 1)
	require.True(t, cookies[0].HttpOnly)
	require.Equal(t, http.SameSiteStrictMode, cookies[0].SameSite)
	res.Body.Close()

	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/dashboard/graphql", strings.NewReader(`{"query":"{ refrain { programs { id } } }"}`))
	req.Header.Set("Content-Type", "application/json")
	req.AddCookie(cookies[0])
	res, err = http.DefaultClient.Do(req)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, res.StatusCode)
	res.Body.Close()
	// A form post with the cookie is refused: JSON only.
	req, _ = http.NewRequest(http.MethodPost, srv.URL+"/dashboard/graphql", strings.NewReader(`query=x`))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.AddCookie(cookies[0])
	res, err = http.DefaultClient.Do(req)
	require.NoError(t, err)
	require.Equal(t, http.StatusUnsupportedMediaType, res.StatusCode)
	res.Body.Close()

	// The Authorization header works too (curl, the demo).
	req, _ = http.NewRequest(http.MethodGet, srv.URL+"/dashboard", nil)
	req.Header.Set("Authorization", "Bearer "+testBootstrapKey)
	res, err = http.DefaultClient.Do(req)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.Contains(t, res.Header.Get("Content-Security-Policy"), "default-src 'self'")
	res.Body.Close()
}

// The page in headless Chromium: sign in with a key, load, show the numbers
// the API returns with their labels, charts with axes and a tooltip, the
// programs without data collapsed, and the pressure calendar in weeks
// starting on Monday with a breakdown on click; no console error.
func TestDashboardInChromium(t *testing.T) {
	b := newBrowser(t, "401")
	m := newMetricsEnv(t, storetest.SQLite(t))
	m.rollup(t0, kpi.Dims{Program: "welcome", Scenario: "welcome", Step: "welcome", Variant: "A"}, 600, 60)
	m.rollup(t0, kpi.Dims{Program: "welcome", Scenario: "welcome", Step: "welcome", Variant: "B"}, 600, 100)
	m.rollup(t0.Add(26*time.Hour), kpi.Dims{Program: "win-back", Scenario: "win-back", Step: "miss-you"}, 321, 7)
	// A sent campaign whose A/B test B won on open rate.
	sentAt := t0.Add(2 * time.Hour)
	_, err := m.db.NewInsert().Model(&campaign.Campaign{ID: "spring", Name: "Spring sale", Objective: "maintain", Program: "spring",
		Audience: `consent == "subscribed"`, Template: "newsletter", Values: map[string]string{}, Priority: 50, ScheduledAt: &sentAt,
		ABTest: &campaign.ABTest{Variants: []campaign.Variant{{Name: "A", Template: "newsletter"}, {Name: "B", Template: "newsletter"}},
			TestShare: 0.2, WinnerMetric: campaign.MetricOpenRate, DecideAfter: 4 * time.Hour},
		Status: campaign.StatusSent, AudienceFixed: true, AudienceCount: 600, WrittenCount: 600, Winner: ptr("B"),
		StartedAt: &sentAt, FinishedAt: &sentAt, CreatedAt: t0, UpdatedAt: t0}).Exec(m.ctx)
	require.NoError(t, err)
	m.rollup(sentAt, kpi.Dims{Program: "spring", Campaign: "spring", Variant: "A"}, 300, 30)
	m.rollup(sentAt, kpi.Dims{Program: "spring", Campaign: "spring", Variant: "B"}, 300, 60)
	srv := httptest.NewServer(m.p.Handler())
	defer srv.Close()

	from, to := t0.Add(-24*time.Hour).Truncate(24*time.Hour), t0.Add(72*time.Hour).Truncate(24*time.Hour)
	vars := map[string]any{"from": from.Format(time.RFC3339), "to": to.Format(time.RFC3339), "timeZone": "UTC"}
	res := m.do(testBootstrapKey, plugin.DashboardQuery, vars)
	var api struct {
		Refrain struct {
			Kpis     struct{ Total kpiValuesJSON }
			Programs []programJSON
		}
	}
	res.decode(t, &api)

	page := fmt.Sprintf("%s/dashboard?from=%s&to=%s", srv.URL, url.QueryEscape(from.Format(time.RFC3339)), url.QueryEscape(to.Format(time.RFC3339)))
	readKey, _ := m.apiKey("read")
	var loaded, period, tooltip, breakdown, firstDay, winner string
	var cells, cards, variants, revenue map[string]string
	var charts, calendarDays, lead int
	var heads, idle []string
	require.NoError(t, chromedp.Run(b.ctx,
		chromedp.Navigate(srv.URL+"/dashboard"),
		chromedp.WaitVisible("#key", chromedp.ByQuery),
		chromedp.SendKeys("#key", readKey, chromedp.ByQuery),
		chromedp.Click("#open", chromedp.ByQuery),
		chromedp.WaitVisible("#period", chromedp.ByQuery),
		chromedp.Navigate(page),
		chromedp.WaitVisible(`body[data-loaded]`, chromedp.ByQuery),
		chromedp.AttributeValue("body", "data-loaded", &loaded, nil, chromedp.ByQuery),
		chromedp.Text("#period", &period, chromedp.ByQuery),
		chromedp.Evaluate(`(function(){ var out = {};
			document.querySelectorAll("[data-program] [data-kpi], td[data-program][data-kpi], b[data-program][data-kpi], span[data-program][data-kpi]").forEach(function(e){
				var p = e.getAttribute("data-program") || e.closest("[data-program]").getAttribute("data-program");
				var v = e.closest("[data-variant]");
				var k = p + "/" + (v ? v.getAttribute("data-variant") + "/" : "") + e.getAttribute("data-kpi");
				out[k] = e.getAttribute("data-numerator") !== null ? e.getAttribute("data-numerator") + "/" + e.getAttribute("data-denominator") : e.textContent;
			}); return out; })()`, &cells),
		chromedp.Evaluate(`(function(){ var out = {}; document.querySelectorAll("[data-card]").forEach(function(e){
			out[e.getAttribute("data-program") + "/" + e.getAttribute("data-card")] = e.parentNode.querySelector(".card-label").textContent + "=" + e.textContent; }); return out; })()`, &cards),
		chromedp.Evaluate(`(function(){ var out = {}; document.querySelectorAll("tr[data-campaign][data-variant]").forEach(function(e){
			out[e.getAttribute("data-variant")] = e.querySelector("[data-kpi]").textContent + " " + e.lastChild.textContent; }); return out; })()`, &variants),
		chromedp.Text(`[data-campaign="spring"][data-kpi="winner"]`, &winner, chromedp.ByQuery),
		chromedp.Evaluate(`(function(){ var out = {}; document.querySelectorAll("tr[data-revenue-of]").forEach(function(e){
			out[e.getAttribute("data-revenue-of")] = e.children[3].textContent + " orders, " + e.children[4].textContent + " delivered"; }); return out; })()`, &revenue),
		chromedp.Evaluate(`Array.prototype.map.call(document.querySelectorAll("[data-idle]"), function(e){ return e.getAttribute("data-program"); })`, &idle),
		chromedp.Poll(`document.querySelectorAll('[data-chart="daily"] canvas').length`, &charts),
		// Hover the middle of the overview chart: the tooltip names the day and the values.
		chromedp.Evaluate(`(function(){ var o = document.querySelector('[data-program="all"][data-chart="daily"] .u-over'); var r = o.getBoundingClientRect();
			o.dispatchEvent(new MouseEvent("mousemove", {clientX: r.left + r.width / 2, clientY: r.top + r.height / 2, bubbles: true})); return true; })()`, nil),
		chromedp.Poll(`(function(){ var t = document.querySelector('[data-program="all"] .tooltip'); return t && !t.hidden ? t.textContent : false; })()`, &tooltip),
		chromedp.WaitVisible(`#calendar[data-loaded]`, chromedp.ByQuery),
		chromedp.Evaluate(`document.querySelectorAll('[data-chart="calendar"] .day').length`, &calendarDays),
		chromedp.Evaluate(`Array.prototype.map.call(document.querySelectorAll('[data-chart="calendar"] .cal-head'), function(e){ return e.textContent; })`, &heads),
		chromedp.Evaluate(`document.querySelectorAll('[data-chart="calendar"] .cal-cell.empty').length`, &lead),
		chromedp.AttributeValue(`[data-chart="calendar"] .day`, "data-date", &firstDay, nil, chromedp.ByQuery),
		chromedp.Click(`[data-chart="calendar"] .day`, chromedp.ByQuery),
		chromedp.Text("#calendar-detail h3", &breakdown, chromedp.ByQuery),
	))
	require.Equal(t, "true", loaded, "the page loaded its data")
	require.Contains(t, period, "compared with", "the period names the previous one it is compared with")

	// The pressure calendar: 13 weeks from today, weeks start on Monday.
	require.Equal(t, 91, calendarDays, "the pressure calendar shows the next 13 weeks of the forecast")
	require.Equal(t, []string{"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"}, heads)
	first, err := time.Parse(time.DateOnly, firstDay)
	require.NoError(t, err)
	require.Equal(t, (int(first.Weekday())+6)%7, lead, "the first day sits under its weekday")
	require.Contains(t, breakdown, first.Format("2 Jan 2006"), "a click shows the day's breakdown")

	// Every program shows its API numbers; those without data are collapsed.
	require.Len(t, api.Refrain.Programs, 10)
	var active int
	for _, p := range api.Refrain.Programs {
		require.Equal(t, p.Objective, cells[p.ID+"/objective"], p.ID)
		if p.Stats.Total.Sent == 0 {
			require.Contains(t, idle, p.ID, "a program without data is collapsed")
			continue
		}
		active++
		require.NotContains(t, idle, p.ID)
		require.Equal(t, fmt.Sprint(p.Stats.Total.Sent), cells[p.ID+"/sent"], p.ID)
		require.Equal(t, fmt.Sprint(p.Stats.Total.UniqueClicks), cells[p.ID+"/uniqueClicks"], p.ID)
	}
	require.Equal(t, 2, active)
	require.Len(t, idle, 8)
	require.Equal(t, 1+active, charts, "a chart for all messages and one per program with data")
	require.Contains(t, tooltip, "Sent: ", "the chart's tooltip shows the hovered day's values")
	require.Equal(t, "1200", cells["welcome/sent"])
	require.Equal(t, "321", cells["win-back/sent"])
	require.Equal(t, "160/1200", cells["welcome/clickRate"])
	require.Equal(t, fmt.Sprint(api.Refrain.Kpis.Total.Sent), cells["all/sent"])
	require.Equal(t, "2121", cells["all/sent"])
	require.Equal(t, "Sent=2,121", cards["all/sent"], "cards carry a human label")
	require.Equal(t, "Click rate=12.1%", cards["all/clickRate"], "257 clicks of 2,121 delivered")
	w := api.Refrain.Programs[0]
	for _, p := range api.Refrain.Programs {
		if p.ID == "welcome" {
			w = p
		}
	}
	require.NotNil(t, w.AbTest)
	for _, v := range w.AbTest.Variants {
		require.Equal(t, v.Decision, cells["welcome/"+v.Variant+"/decision"])
		require.Equal(t, fmt.Sprintf("%.3f", v.ProbabilityToBeatControl), cells["welcome/"+v.Variant+"/probability"])
	}
	require.Equal(t, "BEATS_CONTROL", cells["welcome/B/decision"])
	require.Equal(t, "Variant B beats A on click rate.", cells["welcome/abVerdict"])

	// The campaign: its numbers, each variant's open rate and the winner.
	require.Equal(t, "600", cells["campaign:spring/sent"])
	require.Equal(t, "90/600", cells["campaign:spring/openRate"])
	require.Equal(t, map[string]string{"A": "10.0% ", "B": "20.0% winner"}, variants)
	require.Equal(t, "Winner: variant B (best open rate), sent to the rest of the audience.", winner)
	require.Equal(t, map[string]string{"welcome": "0 orders, 1,200 delivered", "win-back": "0 orders, 321 delivered",
		"campaign:spring": "0 orders, 600 delivered"}, revenue, "revenue per program and per campaign")

	b.requireNoProblems(t)
}

// browserProfile is an empty Chromium profile directory, removed after the
// test. Chromium's helper processes can still write into it for a moment
// after the browser is stopped, so removal is retried rather than left to
// t.TempDir, whose cleanup fails the test on the first "directory not empty".
func browserProfile(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "refrain-chromium-")
	require.NoError(t, err)
	t.Cleanup(func() {
		for i := 0; i < 50; i++ {
			if err = os.RemoveAll(dir); err == nil {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
		t.Logf("left the Chromium profile %s: %v", dir, err)
	})
	return dir
}
