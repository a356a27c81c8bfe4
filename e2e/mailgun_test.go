package e2e

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

const (
	mailgunDomain     = "mg.e2e.example"
	mailgunSigningKey = "e2e-mailgun-webhook-signing-key"
)

// delivery is one recipient of a message the capture server accepted, with
// Mailgun's substitutions of recipient variables already made.
type delivery struct {
	Recipient  string
	MessageID  string // v:message_id
	ProviderID string // the id the server answered with
	Subject    string
	Vars       map[string]string // every v: variable
	Headers    map[string]string // every h: header
	At         time.Time
}

// mailgunServer is a local stand-in for Mailgun's messages and events API:
// it records what Refrain sends, can fail for a while (503) or be slow, and
// answers the events search Refrain uses to reconcile messages it may have
// sent before a crash.
type mailgunServer struct {
	t   *testing.T
	srv *httptest.Server

	mu         sync.Mutex
	deliveries []delivery
	calls      int
	// failUntil: until then every send gets 503 with Retry-After: 1.
	failUntil time.Time
	failures  int
	// delay slows each accepted send down.
	delay time.Duration
	// accepted is signalled (non-blocking) after each accepted send.
	accepted chan struct{}
	searches int
	// arrivals counts sends that got past the failure window; onArrive,
	// when set, is called with that count as each arrives, before the delay.
	arrivals int
	onArrive func(n int)
}

func newMailgunServer(t *testing.T) *mailgunServer {
	m := &mailgunServer{t: t, accepted: make(chan struct{}, 1<<12)}
	m.srv = httptest.NewServer(http.HandlerFunc(m.serve))
	t.Cleanup(m.srv.Close)
	return m
}

func (m *mailgunServer) serve(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	user, pass, ok := r.BasicAuth()
	if !ok || user != "api" || pass != "key-e2e" {
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write([]byte(`{"message":"Invalid private key"}`))
		return
	}
	switch {
	case r.Method == http.MethodPost && r.URL.Path == "/v3/"+mailgunDomain+"/messages":
		m.send(w, r)
	case r.Method == http.MethodGet && r.URL.Path == "/v3/"+mailgunDomain+"/events":
		m.events(w, r)
	case r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/v3/"+mailgunDomain+"/events/"):
		_, _ = w.Write([]byte(`{"items":[],"paging":{}}`))
	default:
		w.WriteHeader(http.StatusNotFound)
		_, _ = fmt.Fprintf(w, `{"message":"no route %s %s"}`, r.Method, r.URL.Path)
	}
}

func (m *mailgunServer) send(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseMultipartForm(8 << 20); err != nil {
		if err := r.ParseForm(); err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
	}
	m.mu.Lock()
	m.calls++
	n := m.calls
	if time.Now().Before(m.failUntil) {
		m.failures++
		m.mu.Unlock()
		w.Header().Set("Retry-After", "1")
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte(`{"message":"Service Unavailable"}`))
		return
	}
	delay := m.delay
	m.arrivals++
	if m.onArrive != nil {
		m.onArrive(m.arrivals)
	}
	m.mu.Unlock()
	if delay > 0 {
		time.Sleep(delay)
	}
	form := r.Form
	recipVars := map[string]map[string]any{}
	if rv := form.Get("recipient-variables"); rv != "" {
		if err := json.Unmarshal([]byte(rv), &recipVars); err != nil {
			w.WriteHeader(http.StatusBadRequest)
			_, _ = w.Write([]byte(`{"message":"recipient-variables is not JSON"}`))
			return
		}
	}
	providerID := fmt.Sprintf("%s.%d@%s", time.Now().UTC().Format("20060102150405"), n, mailgunDomain)
	var out []delivery
	for _, to := range form["to"] {
		for _, addr := range strings.Split(to, ",") {
			addr = strings.TrimSpace(addr)
			if i := strings.LastIndex(addr, "<"); i >= 0 {
				addr = strings.TrimSuffix(addr[i+1:], ">")
			}
			subst := func(s string) string {
				for k, v := range recipVars[addr] {
					s = strings.ReplaceAll(s, "%recipient."+k+"%", fmt.Sprint(v))
				}
				return s
			}
			d := delivery{Recipient: addr, ProviderID: providerID, Subject: subst(form.Get("subject")),
				Vars: map[string]string{}, Headers: map[string]string{}, At: time.Now()}
			for k, vs := range form {
				switch {
				case strings.HasPrefix(k, "v:"):
					d.Vars[strings.TrimPrefix(k, "v:")] = subst(vs[0])
				case strings.HasPrefix(k, "h:"):
					d.Headers[strings.TrimPrefix(k, "h:")] = subst(vs[0])
				}
			}
			d.MessageID = d.Vars["message_id"]
			out = append(out, d)
		}
	}
	m.mu.Lock()
	m.deliveries = append(m.deliveries, out...)
	m.mu.Unlock()
	_, _ = fmt.Fprintf(w, `{"id":"<%s>","message":"Queued. Thank you."}`, providerID)
	for range out {
		select {
		case m.accepted <- struct{}{}:
		default:
		}
	}
}

// events answers a search for accepted events filtered on user-variables,
// as Mailgun's events API does.
func (m *mailgunServer) events(w http.ResponseWriter, r *http.Request) {
	var filter map[string]string
	_ = json.Unmarshal([]byte(r.URL.Query().Get("user-variables")), &filter)
	m.mu.Lock()
	m.searches++
	var items []map[string]any
	for i, d := range m.deliveries {
		if r.URL.Query().Get("event") != "" && r.URL.Query().Get("event") != "accepted" {
			continue
		}
		if id := filter["message_id"]; id != "" && d.MessageID != id {
			continue
		}
		vars := map[string]any{}
		for k, v := range d.Vars {
			vars[k] = v
		}
		items = append(items, map[string]any{"event": "accepted", "id": fmt.Sprintf("acc-%d", i),
			"timestamp": float64(d.At.UnixNano()) / 1e9, "recipient": d.Recipient, "user-variables": vars,
			"message": map[string]any{"headers": map[string]any{"message-id": d.ProviderID}}})
	}
	m.mu.Unlock()
	if items == nil {
		items = []map[string]any{}
	}
	next := "http://" + r.Host + "/v3/" + mailgunDomain + "/events/end"
	_ = json.NewEncoder(w).Encode(map[string]any{"items": items,
		"paging": map[string]string{"next": next, "first": next, "last": next, "previous": next}})
}

// to returns the deliveries to one address.
func (m *mailgunServer) to(addr string) []delivery {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []delivery
	for _, d := range m.deliveries {
		if d.Recipient == addr {
			out = append(out, d)
		}
	}
	return out
}

// set changes the server's behaviour under its lock.
func (m *mailgunServer) set(fn func(m *mailgunServer)) {
	m.mu.Lock()
	defer m.mu.Unlock()
	fn(m)
}

// stats returns the failed sends and the events searches so far.
func (m *mailgunServer) stats() (failures, searches int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.failures, m.searches
}

// all returns every delivery.
func (m *mailgunServer) all() []delivery {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]delivery(nil), m.deliveries...)
}

// settings are what points Refrain at this server.
func (m *mailgunServer) settings() map[string]string {
	return map[string]string{
		"REFRAIN_MAILGUN_API_KEY":             "key-e2e",
		"REFRAIN_MAILGUN_DOMAIN":              mailgunDomain,
		"REFRAIN_MAILGUN_API_BASE":            m.srv.URL,
		"REFRAIN_MAILGUN_WEBHOOK_SIGNING_KEY": mailgunSigningKey,
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// mailgunEvent builds a Mailgun webhook body from a fixture of
// testdata/webhooks about one message, signed with the webhook
// signing key as Mailgun signs it: hex HMAC-SHA256 of timestamp + token.
func mailgunEvent(t *testing.T, fixture string, d delivery, set func(data map[string]any)) []byte {
	t.Helper()
	raw, err := os.ReadFile("../testdata/webhooks/" + fixture)
	require.NoError(t, err)
	var body map[string]any
	require.NoError(t, json.Unmarshal(raw, &body))
	data := body["event-data"].(map[string]any)
	now := time.Now()
	data["id"] = randomHex(11)
	data["timestamp"] = float64(now.UnixNano()) / 1e9
	data["recipient"] = d.Recipient
	data["user-variables"] = map[string]any{"message_id": d.MessageID, "program": d.Vars["program"], "step": d.Vars["step"]}
	msg, _ := data["message"].(map[string]any)
	if msg == nil {
		msg = map[string]any{}
		data["message"] = msg
	}
	headers, _ := msg["headers"].(map[string]any)
	if headers == nil {
		headers = map[string]any{}
		msg["headers"] = headers
	}
	headers["message-id"] = d.ProviderID
	if set != nil {
		set(data)
	}
	ts := fmt.Sprint(now.Unix())
	token := randomHex(25)
	mac := hmac.New(sha256.New, []byte(mailgunSigningKey))
	mac.Write([]byte(ts + token))
	body["signature"] = map[string]any{"timestamp": ts, "token": token, "signature": hex.EncodeToString(mac.Sum(nil))}
	out, err := json.Marshal(body)
	require.NoError(t, err)
	return out
}
