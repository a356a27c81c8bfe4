// Package page serves the small HTML pages of mail: the link page behind
// every unsubscribe, confirmation and keep link (GET /u/{token} shows it,
// POST /u/{token} acts, including RFC 8058 one-click unsubscription), and the
// outbox page that shows developers every message rendered.
//
// It is an edge: HTTP pages, so it imports net/http, and calls the mail
// domain (consent, outbox). No domain package imports it; it must not
// import graph or the plugin assembly.
package page

import (
	"context"
	"errors"
	"html/template"
	"log/slog"
	"net"
	"net/http"
	"sort"
	"strings"

	"github.com/uptrace/bun"

	"github.com/refrain-dev/refrain/plugin/clock"
	"github.com/refrain-dev/refrain/plugin/customer"
	"github.com/refrain-dev/refrain/plugin/mail/consent"
	"github.com/refrain-dev/refrain/plugin/mail/link"
	"github.com/refrain-dev/refrain/plugin/mail/outbox"
	"github.com/refrain-dev/refrain/plugin/ptr"
)

// Frequencies are the choices of the preference form, in order.
var Frequencies = []string{"as_it_comes", "weekly", "monthly"}

// Links serves GET and POST /u/{token}.
type Links struct {
	DB        *bun.DB
	Consent   *consent.Service
	Clock     clock.Clock
	Logger    *slog.Logger
	StoreName string
}

// RequestOf is who made r: the peer address and the User-Agent.
func RequestOf(r *http.Request) consent.Request {
	ip := r.RemoteAddr
	if host, _, err := net.SplitHostPort(ip); err == nil {
		ip = host
	}
	return consent.Request{IP: ip, UserAgent: r.UserAgent()}
}

type linkView struct {
	Store     string
	Title     string
	Message   string
	Email     string
	Confirm   bool
	Keep      bool
	Manage    bool
	State     string
	Frequency string
	Topics    string
	Choices   []string
}

var linkPage = template.Must(template.New("link").Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex"><title>{{.Title}} · {{.Store}}</title>
<style>body{font-family:system-ui,sans-serif;max-width:32rem;margin:3rem auto;padding:0 1rem;color:#1f1f1f}
button{padding:.6rem 1rem;font-size:1rem;cursor:pointer}fieldset{border:1px solid #ddd;margin:1.5rem 0;padding:1rem}
label{display:block;margin:.3rem 0}input[type=text]{width:100%;padding:.4rem}</style></head>
<body><h1>{{.Title}}</h1>
{{with .Message}}<p role="status">{{.}}</p>{{end}}
{{if .Confirm}}<form method="post"><input type="hidden" name="action" value="confirm">
<p>Confirm that {{.Email}} wants to receive email from {{.Store}}.</p>
<button type="submit">Confirm my subscription</button></form>{{end}}
{{if .Keep}}<form method="post"><input type="hidden" name="action" value="keep">
<p>Keep {{.Email}} subscribed to {{.Store}}: your profile will not be deleted.</p>
<button type="submit">Keep me subscribed</button></form>{{end}}
{{if .Manage}}<p>Email preferences of {{.Email}} at {{.Store}} (currently: {{.State}}).</p>
<form method="post"><input type="hidden" name="action" value="unsubscribe">
<button type="submit">Unsubscribe from all marketing email</button></form>
<form method="post"><input type="hidden" name="action" value="preferences"><fieldset><legend>Or choose what you receive</legend>
{{$f := .Frequency}}{{range .Choices}}<label><input type="radio" name="frequency" value="{{.}}"{{if eq . $f}} checked{{end}}> {{.}}</label>{{end}}
<label>Topics (comma separated) <input type="text" name="topics" value="{{.Topics}}"></label>
<button type="submit">Save my preferences</button></fieldset></form>{{end}}
</body></html>`))

func (h *Links) render(w http.ResponseWriter, status int, v linkView) {
	v.Store = h.StoreName
	v.Choices = Frequencies
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Referrer-Policy", "no-referrer")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'")
	w.WriteHeader(status)
	if err := linkPage.Execute(w, v); err != nil {
		h.Logger.Error("render link page", "err", err)
	}
}

func (h *Links) invalid(w http.ResponseWriter) {
	h.render(w, http.StatusNotFound, linkView{Title: "This link does not work",
		Message: "It may have expired, or the address it was sent to has changed."})
}

// ServeHTTP shows the page (GET) or acts (POST).
func (h *Links) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	token := r.PathValue("token")
	purpose, err := consent.PurposeOf(token)
	if err != nil {
		h.invalid(w)
		return
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		h.show(w, r, token, purpose)
	case http.MethodPost:
		h.act(w, r, token, purpose)
	default:
		w.Header().Set("Allow", "GET, POST")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	}
}

func (h *Links) show(w http.ResponseWriter, r *http.Request, token string, purpose link.Purpose) {
	c, err := h.Consent.CustomerFor(r.Context(), h.DB, token, purpose)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if purpose == link.Confirm {
		// Confirmation takes a POST: mail scanners that fetch every link
		// must not confirm on the person's behalf.
		h.render(w, http.StatusOK, linkView{Title: "Confirm your subscription", Email: ptr.Deref(c.Email), Confirm: true})
		return
	}
	if purpose == link.Keep {
		// Acting takes a POST, for the same reason.
		h.render(w, http.StatusOK, linkView{Title: "Stay subscribed", Email: ptr.Deref(c.Email), Keep: true})
		return
	}
	h.render(w, http.StatusOK, h.manage(c, "Your email preferences", ""))
}

func (h *Links) manage(c *customer.Customer, title, msg string) linkView {
	freq, _ := c.Preferences["frequency"].(string)
	var topics []string
	if list, ok := c.Preferences["topics"].([]any); ok {
		for _, t := range list {
			if s, ok := t.(string); ok {
				topics = append(topics, s)
			}
		}
	}
	return linkView{Title: title, Message: msg, Email: ptr.Deref(c.Email), Manage: true, State: string(c.ConsentState),
		Frequency: freq, Topics: strings.Join(topics, ", ")}
}

func (h *Links) act(w http.ResponseWriter, r *http.Request, token string, purpose link.Purpose) {
	ctx := r.Context()
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form", http.StatusBadRequest)
		return
	}
	// RFC 8058's own example posts multipart/form-data, which ParseForm skips.
	if strings.HasPrefix(r.Header.Get("Content-Type"), "multipart/form-data") {
		if err := r.ParseMultipartForm(64 << 10); err != nil {
			http.Error(w, "bad form", http.StatusBadRequest)
			return
		}
	}
	req := RequestOf(r)
	if r.PostForm.Get("List-Unsubscribe") == "One-Click" {
		// RFC 8058: the mailbox provider posts this on the person's behalf.
		if purpose != link.Unsubscribe {
			h.invalid(w)
			return
		}
		if _, err := h.Consent.Unsubscribe(ctx, h.DB, req, token, "one_click"); err != nil {
			h.fail(w, r, err)
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("unsubscribed\n"))
		return
	}
	switch action := r.PostForm.Get("action"); {
	case purpose == link.Confirm && action == "confirm":
		c, err := h.Consent.Confirm(ctx, h.DB, req, token)
		if err != nil {
			h.fail(w, r, err)
			return
		}
		h.render(w, http.StatusOK, linkView{Title: "Subscription confirmed", Email: ptr.Deref(c.Email),
			Message: "Thank you: you will now receive our emails."})
	case purpose == link.Keep && action == "keep":
		c, err := h.Consent.Keep(ctx, h.DB, req, token)
		if err != nil {
			h.fail(w, r, err)
			return
		}
		h.render(w, http.StatusOK, linkView{Title: "You are staying with us", Email: ptr.Deref(c.Email),
			Message: "Thank you: we will keep writing to you, and your profile will not be deleted."})
	case purpose == link.Unsubscribe && action == "unsubscribe":
		c, err := h.Consent.Unsubscribe(ctx, h.DB, req, token, "link")
		if err != nil {
			h.fail(w, r, err)
			return
		}
		h.render(w, http.StatusOK, h.manage(c, "You are unsubscribed", "You will not receive marketing email from us any more."))
	case purpose == link.Unsubscribe && action == "preferences":
		c, err := h.preferences(ctx, token, r)
		if err != nil {
			h.fail(w, r, err)
			return
		}
		h.render(w, http.StatusOK, h.manage(c, "Preferences saved", "Your preferences are saved."))
	default:
		http.Error(w, "unknown action", http.StatusBadRequest)
	}
}

func (h *Links) preferences(ctx context.Context, token string, r *http.Request) (*customer.Customer, error) {
	prefs := map[string]any{}
	if f := r.PostForm.Get("frequency"); f != "" {
		if !contains(Frequencies, f) {
			return nil, errBadForm
		}
		prefs["frequency"] = f
	}
	if _, ok := r.PostForm["topics"]; ok {
		prefs["topics"] = SplitTopics(r.PostForm.Get("topics"))
	}
	var out *customer.Customer
	err := h.DB.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		c, err := h.Consent.CustomerFor(ctx, tx, token, link.Unsubscribe)
		if err != nil {
			return err
		}
		out = c
		return consent.UpdatePreferences(ctx, tx, h.Clock.Now(), c, prefs, "link")
	})
	return out, err
}

var errBadForm = errors.New("bad preference form")

// SplitTopics reads a comma-separated topic list: trimmed, lower-cased,
// without blanks or duplicates, sorted.
func SplitTopics(s string) []any {
	seen := map[string]bool{}
	var out []string
	for _, t := range strings.Split(s, ",") {
		t = strings.ToLower(strings.TrimSpace(t))
		if t != "" && len(t) <= 64 && !seen[t] {
			seen[t] = true
			out = append(out, t)
		}
	}
	sort.Strings(out)
	list := make([]any, len(out))
	for i, t := range out {
		list[i] = t
	}
	return list
}

func (h *Links) fail(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, link.ErrInvalid):
		h.invalid(w)
	case errors.Is(err, errBadForm):
		http.Error(w, "bad form", http.StatusBadRequest)
	default:
		h.Logger.ErrorContext(r.Context(), "link page failed", "err", err)
		http.Error(w, "something went wrong; please try again", http.StatusInternalServerError)
	}
}

// Outbox serves the outbox page: the latest messages, rendered, newest
// first (?to= filters by recipient, ?after= pages). Callers check access.
type Outbox struct {
	DB     *bun.DB
	Logger *slog.Logger
}

var outboxPage = template.Must(template.New("outbox").Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Outbox · Refrain</title>
<style>body{font-family:system-ui,sans-serif;margin:2rem;color:#1f1f1f}article{border:1px solid #ddd;margin:1rem 0;padding:1rem}
dl{display:grid;grid-template-columns:9rem 1fr;gap:.2rem 1rem;font-size:.9rem}dt{color:#595959}
iframe{width:100%;height:28rem;border:1px solid #eee}pre{white-space:pre-wrap;background:#fafafa;padding:.5rem}</style></head>
<body><h1>Outbox</h1><p>{{len .Messages}} messages, newest first.</p>
{{range .Messages}}<article><h2>{{.Subject}}</h2><dl>
<dt>To</dt><dd>{{.Recipient}}</dd><dt>State</dt><dd>{{.State}}{{with .LastError}} ({{.}}){{end}}</dd>
<dt>Kind</dt><dd>{{.Kind}}</dd><dt>Template</dt><dd>{{.Template}}{{with .Locale}} ({{.}}){{end}}</dd>
<dt>Message id</dt><dd>{{.ID}}</dd><dt>Created</dt><dd>{{.CreatedAt.Format "2006-01-02 15:04:05 MST"}}</dd>
{{with .UnsubscribeURL}}<dt>Unsubscribe</dt><dd><a href="{{.}}">{{.}}</a></dd>{{end}}</dl>
<iframe sandbox title="HTML body" srcdoc="{{.HTML}}"></iframe>
{{with .Text}}<details><summary>Text body</summary><pre>{{.}}</pre></details>{{end}}</article>{{end}}
{{with .Next}}<p><a href="?after={{.}}{{with $.To}}&amp;to={{.}}{{end}}">Older messages</a></p>{{end}}
</body></html>`))

// ServeHTTP renders the page.
func (h *Outbox) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	to := r.URL.Query().Get("to")
	page, err := outbox.List(r.Context(), h.DB, outbox.Filter{To: to}, 50, r.URL.Query().Get("after"))
	if err != nil {
		if strings.Contains(err.Error(), "invalid cursor") {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		h.Logger.ErrorContext(r.Context(), "outbox page failed", "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	next := ""
	if page.HasNextPage {
		next = page.EndCursor
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; img-src * data:; frame-src 'self'")
	if err := outboxPage.Execute(w, map[string]any{"Messages": page.Messages, "Next": next, "To": to}); err != nil {
		h.Logger.ErrorContext(r.Context(), "render outbox page", "err", err)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
