package plugin_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/refrain-dev/refrain/plugin/store/storetest"
)

// browser is a headless Chromium tab that records console errors,
// warnings, uncaught exceptions and logged errors (Content-Security-Policy
// refusals among them).
type browser struct {
	ctx      context.Context
	mu       sync.Mutex
	problems []string
}

// newBrowser starts headless Chromium for one test, stopped at cleanup;
// ignore lists logged errors a test expects (the sign-in page's 401).
func newBrowser(t *testing.T, ignore ...string) *browser {
	t.Helper()
	chromium := chromiumPath(t)
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(chromium), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.UserDataDir(browserProfile(t)), chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true), chromedp.NoFirstRun, chromedp.WindowSize(1280, 900))
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	ctx, cancelT := context.WithTimeout(ctx, 90*time.Second)
	t.Cleanup(func() { cancelT(); cancel(); cancelA() })
	b := &browser{ctx: ctx}
	chromedp.ListenTarget(ctx, func(ev any) {
		b.mu.Lock()
		defer b.mu.Unlock()
		switch e := ev.(type) {
		case *runtime.EventConsoleAPICalled:
			if e.Type == runtime.APITypeError || e.Type == runtime.APITypeWarning {
				var parts []string
				for _, a := range e.Args {
					parts = append(parts, string(a.Value)+a.Description)
				}
				b.problems = append(b.problems, fmt.Sprintf("console.%s: %s", e.Type, strings.Join(parts, " ")))
			}
		case *runtime.EventExceptionThrown:
			b.problems = append(b.problems, "exception: "+e.ExceptionDetails.Error())
		case *log.EventEntryAdded:
			if e.Entry.Level != log.LevelError {
				return
			}
			for _, s := range ignore {
				if strings.Contains(e.Entry.Text, s) {
					return
				}
			}
			b.problems = append(b.problems, "log: "+e.Entry.Text+" "+e.Entry.URL)
		}
	})
	require.NoError(t, chromedp.Run(ctx, log.Enable()))
	return b
}

// requireNoProblems fails the test on any console error the page logged.
func (b *browser) requireNoProblems(t *testing.T) {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	require.Empty(t, b.problems, "console errors")
}

// GraphiQL runs a query from its page, offline (every file comes from the
// binary), behind a proxy that serves Refrain under /refrain, with the
// Authorization header filled in from the address's fragment.
func TestGraphiQLInChromium(t *testing.T) {
	b := newBrowser(t)
	m := newMetricsEnv(t, storetest.SQLite(t))
	mux := http.NewServeMux()
	mux.Handle("/refrain/", http.StripPrefix("/refrain", m.p.Handler()))
	var outside []string
	var mu sync.Mutex
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasPrefix(r.URL.Path, "/refrain/") {
			mu.Lock()
			outside = append(outside, r.URL.Path)
			mu.Unlock()
		}
		mux.ServeHTTP(w, r)
	}))
	defer srv.Close()

	var headers, result, address string
	require.NoError(t, chromedp.Run(b.ctx,
		chromedp.Navigate(srv.URL+"/refrain/graphql#key="+testBootstrapKey),
		chromedp.WaitVisible(".graphiql-execute-button", chromedp.ByQuery),
		chromedp.Location(&address),
		// The headers editor is the one of the tools not hidden.
		chromedp.Evaluate(`Array.prototype.map.call(document.querySelectorAll(".graphiql-editor-tool .graphiql-editor:not(.hidden) .CodeMirror"),
			function(e){ return e.CodeMirror.getValue(); }).join("")`, &headers),
		chromedp.Click(".graphiql-execute-button", chromedp.ByQuery),
		chromedp.Poll(`(function(){ var e = document.querySelector(".result-window .CodeMirror");
			var v = e && e.CodeMirror.getValue(); return v && v.indexOf("programs") >= 0 ? v : false; })()`, &result),
	))
	require.JSONEq(t, `{"Authorization": "Bearer `+testBootstrapKey+`"}`, headers, "the headers pane holds the key of the address")
	require.Equal(t, srv.URL+"/refrain/graphql", address, "the key is removed from the address bar")
	require.Contains(t, result, `"id": "welcome"`, "the query ran with the key and its result is shown")
	require.NotContains(t, result, "errors")
	mu.Lock()
	require.Empty(t, outside, "every request stays under the prefix")
	mu.Unlock()
	b.requireNoProblems(t)
}
