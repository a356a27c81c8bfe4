package mailgun_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	mg "github.com/mailgun/mailgun-go/v4"
	"github.com/stretchr/testify/require"

	"github.com/refrain-dev/refrain/plugin/clock"
	"github.com/refrain-dev/refrain/plugin/mail"
	"github.com/refrain-dev/refrain/plugin/mail/mailgun"
)

// captured is one request the capture server received.
type captured struct {
	Method string
	Path   string
	Query  url.Values
	User   string
	Pass   string
	Form   url.Values
}

// captureServer stands in for Mailgun's API: it records every request and
// answers with respond (by default Mailgun's "Queued" answer).
type captureServer struct {
	*httptest.Server
	mu       sync.Mutex
	requests []captured
	respond  func(w http.ResponseWriter, r *http.Request)
}

func newCaptureServer(t *testing.T, respond func(w http.ResponseWriter, r *http.Request)) *captureServer {
	t.Helper()
	cs := &captureServer{respond: respond}
	cs.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c := captured{Method: r.Method, Path: r.URL.Path, Query: r.URL.Query()}
		c.User, c.Pass, _ = r.BasicAuth()
		if r.Method == http.MethodPost {
			if err := r.ParseMultipartForm(10 << 20); err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			c.Form = url.Values(r.MultipartForm.Value)
		}
		cs.mu.Lock()
		cs.requests = append(cs.requests, c)
		cs.mu.Unlock()
		if cs.respond != nil {
			cs.respond(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"id":"<20260101120000.1.ABC@mg.shop.example>","message":"Queued. Thank you."}`))
	}))
	t.Cleanup(cs.Close)
	return cs
}

func (cs *captureServer) only(t *testing.T) captured {
	t.Helper()
	cs.mu.Lock()
	defer cs.mu.Unlock()
	require.Len(t, cs.requests, 1)
	return cs.requests[0]
}

func newSender(t *testing.T, base string, timeout time.Duration) *mailgun.Sender {
	t.Helper()
	s, err := mailgun.New(mailgun.Config{
		APIKey:              "key-test",
		Domain:              "mg.shop.example",
		TransactionalDomain: "tx.shop.example",
		APIBase:             base,
		Timeout:             timeout,
	}, &http.Client{}, clock.NewVirtual(time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)), nil)
	require.NoError(t, err)
	return s
}

func marketingMessage() mail.Message {
	return mail.Message{
		ID:                    "msg_01",
		To:                    "ada@example.com",
		ToName:                "Ada Lovelace",
		From:                  "Shop <news@shop.example>",
		ReplyTo:               "care@shop.example",
		Subject:               "Welcome to Shop",
		HTML:                  "<p>Welcome, Ada</p>",
		Text:                  "Welcome, Ada",
		Kind:                  mail.KindMarketing,
		Tags:                  []string{"welcome", "welcome-d0"},
		Variables:             map[string]string{mail.VarProgram: "welcome", mail.VarStep: "d0", mail.VarVariant: "b"},
		Headers:               map[string]string{"X-Refrain-Program": "welcome"},
		ListUnsubscribeURL:    "https://shop.example/u/tok123",
		ListUnsubscribeMailto: "unsubscribe@shop.example?subject=tok123",
		Tracking:              true,
	}
}

func TestSendMarketingFormFields(t *testing.T) {
	cs := newCaptureServer(t, nil)
	s := newSender(t, cs.URL, time.Second)

	id, err := s.Send(t.Context(), marketingMessage())
	require.NoError(t, err)
	require.Equal(t, "20260101120000.1.ABC@mg.shop.example", id)

	req := cs.only(t)
	require.Equal(t, http.MethodPost, req.Method)
	require.Equal(t, "/v3/mg.shop.example/messages", req.Path)
	require.Equal(t, "api", req.User)
	require.Equal(t, "key-test", req.Pass)
	require.Equal(t, url.Values{
		"from":                    {"Shop <news@shop.example>"},
		"to":                      {`"Ada Lovelace" <ada@example.com>`},
		"subject":                 {"Welcome to Shop"},
		"html":                    {"<p>Welcome, Ada</p>"},
		"text":                    {"Welcome, Ada"},
		"o:tag":                   {"welcome", "welcome-d0"},
		"o:tracking":              {"yes"},
		"v:message_id":            {"msg_01"},
		"v:program":               {"welcome"},
		"v:step":                  {"d0"},
		"v:variant":               {"b"},
		"h:Reply-To":              {"care@shop.example"},
		"h:X-Refrain-Program":     {"welcome"},
		"h:List-Unsubscribe":      {"<https://shop.example/u/tok123>, <mailto:unsubscribe@shop.example?subject=tok123>"},
		"h:List-Unsubscribe-Post": {"List-Unsubscribe=One-Click"},
	}, req.Form)
}

func TestSendTransactionalUsesItsDomain(t *testing.T) {
	cs := newCaptureServer(t, nil)
	s := newSender(t, cs.URL+"/v3", time.Second) // an explicit /v3 is accepted too

	_, err := s.Send(t.Context(), mail.Message{
		ID: "msg_tx", To: "ada@example.com", From: "orders@shop.example", Subject: "Confirm your subscription",
		Text: "Confirm: https://shop.example/c/1", Kind: mail.KindTransactional,
	})
	require.NoError(t, err)

	req := cs.only(t)
	require.Equal(t, "/v3/tx.shop.example/messages", req.Path)
	require.Equal(t, url.Values{
		"from":         {"orders@shop.example"},
		"to":           {"ada@example.com"},
		"subject":      {"Confirm your subscription"},
		"text":         {"Confirm: https://shop.example/c/1"},
		"o:tracking":   {"no"},
		"v:message_id": {"msg_tx"},
	}, req.Form)
}

func TestSendStoredTemplate(t *testing.T) {
	cs := newCaptureServer(t, nil)
	s := newSender(t, cs.URL, time.Second)
	m := marketingMessage()
	m.HTML, m.Text, m.Tags, m.Headers, m.ReplyTo, m.Variables = "", "", nil, nil, "", nil
	m.ListUnsubscribeMailto = ""
	m.TemplateName = "spring-sale"
	m.TemplateVariables = map[string]any{"discount": "SPRING10"}

	_, err := s.Send(t.Context(), m)
	require.NoError(t, err)
	req := cs.only(t)
	require.Equal(t, []string{"spring-sale"}, req.Form["template"])
	require.JSONEq(t, `{"discount":"SPRING10"}`, req.Form.Get("h:X-Mailgun-Variables"))
	require.Equal(t, "<https://shop.example/u/tok123>", req.Form.Get("h:List-Unsubscribe"))
	require.Empty(t, req.Form["html"])
}

func TestSendBatchRecipientVariables(t *testing.T) {
	cs := newCaptureServer(t, nil)
	s := newSender(t, cs.URL, time.Second)

	b := mail.Batch{
		From:                  "Shop <news@shop.example>",
		Subject:               "A gift for you, %recipient.first_name%",
		HTML:                  `<p>Hello %recipient.first_name%</p><a href="%recipient.unsubscribe_url%">Unsubscribe</a>`,
		Text:                  "Hello %recipient.first_name%\nUnsubscribe: %recipient.unsubscribe_url%",
		Kind:                  mail.KindMarketing,
		Tags:                  []string{"store-anniversary"},
		Variables:             map[string]string{mail.VarProgram: "store-anniversary", mail.VarStep: "announce"},
		ListUnsubscribeMailto: "unsubscribe@shop.example",
		Tracking:              true,
		Recipients: []mail.Recipient{
			{MessageID: "m1", Email: "ada@example.com", UnsubscribeURL: "https://shop.example/u/1", Variables: map[string]string{"first_name": "Ada"}},
			{MessageID: "m2", Email: "grace@example.com", UnsubscribeURL: "https://shop.example/u/2", Variables: map[string]string{"first_name": "Grace"}},
			{MessageID: "m3", Email: "alan@example.com", UnsubscribeURL: "https://shop.example/u/3"},
		},
	}
	id, err := s.SendBatch(t.Context(), b)
	require.NoError(t, err)
	require.Equal(t, "20260101120000.1.ABC@mg.shop.example", id)

	req := cs.only(t)
	require.Equal(t, "/v3/mg.shop.example/messages", req.Path)
	rv := req.Form.Get("recipient-variables")
	req.Form.Del("recipient-variables")
	require.Equal(t, url.Values{
		"from":                    {"Shop <news@shop.example>"},
		"to":                      {"ada@example.com", "grace@example.com", "alan@example.com"},
		"subject":                 {"A gift for you, %recipient.first_name%"},
		"html":                    {`<p>Hello %recipient.first_name%</p><a href="%recipient.unsubscribe_url%">Unsubscribe</a>`},
		"text":                    {"Hello %recipient.first_name%\nUnsubscribe: %recipient.unsubscribe_url%"},
		"o:tag":                   {"store-anniversary"},
		"o:tracking":              {"yes"},
		"v:message_id":            {"%recipient.message_id%"},
		"v:program":               {"store-anniversary"},
		"v:step":                  {"announce"},
		"h:List-Unsubscribe":      {"<%recipient.unsubscribe_url%>, <mailto:unsubscribe@shop.example>"},
		"h:List-Unsubscribe-Post": {"List-Unsubscribe=One-Click"},
	}, req.Form)
	require.JSONEq(t, `{
		"ada@example.com":   {"message_id":"m1","unsubscribe_url":"https://shop.example/u/1","first_name":"Ada"},
		"grace@example.com": {"message_id":"m2","unsubscribe_url":"https://shop.example/u/2","first_name":"Grace"},
		"alan@example.com":  {"message_id":"m3","unsubscribe_url":"https://shop.example/u/3"}
	}`, rv)
}

func TestSendThroughMailgunMockServer(t *testing.T) {
	srv := mg.NewMockServer()
	t.Cleanup(srv.Stop)
	s := newSender(t, srv.URL(), 5*time.Second)

	id, err := s.Send(t.Context(), marketingMessage())
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(id, "ID-"), "provider id %q has no angle brackets and the mock's prefix", id)
}

func TestSendInvalidMessageNeverCallsMailgun(t *testing.T) {
	cs := newCaptureServer(t, nil)
	s := newSender(t, cs.URL, time.Second)
	m := marketingMessage()
	m.ListUnsubscribeURL = ""

	_, err := s.Send(t.Context(), m)
	require.ErrorIs(t, err, mail.ErrInvalid)
	require.Empty(t, cs.requests)
}

func TestSendFaults(t *testing.T) {
	cases := []struct {
		name    string
		respond func(w http.ResponseWriter, r *http.Request)
		want    mail.ProviderError
	}{
		{
			name: "500 is temporary",
			respond: func(w http.ResponseWriter, _ *http.Request) {
				http.Error(w, "internal error", http.StatusInternalServerError)
			},
			want: mail.ProviderError{Status: 500, Reason: "internal error", Temporary: true, MaybeSent: true},
		},
		{
			name: "429 honours Retry-After",
			respond: func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Retry-After", "7")
				w.WriteHeader(http.StatusTooManyRequests)
				_, _ = w.Write([]byte(`{"message":"Too many requests"}`))
			},
			want: mail.ProviderError{Status: 429, Reason: "Too many requests", RetryAfter: 7 * time.Second, Temporary: true},
		},
		{
			name: "400 is permanent with Mailgun's reason",
			respond: func(w http.ResponseWriter, _ *http.Request) {
				w.WriteHeader(http.StatusBadRequest)
				_, _ = w.Write([]byte(`{"message":"to parameter is not a valid address. please check documentation"}`))
			},
			want: mail.ProviderError{Status: 400, Reason: "to parameter is not a valid address. please check documentation"},
		},
		{
			name: "401 is permanent",
			respond: func(w http.ResponseWriter, _ *http.Request) {
				w.WriteHeader(http.StatusUnauthorized)
			},
			want: mail.ProviderError{Status: 401, Reason: "Unauthorized"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cs := newCaptureServer(t, tc.respond)
			s := newSender(t, cs.URL, time.Second)

			_, err := s.Send(t.Context(), marketingMessage())
			var pe *mail.ProviderError
			require.ErrorAs(t, err, &pe)
			require.NotNil(t, pe.Err)
			got := *pe
			got.Err = nil
			require.Equal(t, tc.want, got)
			require.Equal(t, tc.want.Temporary, mail.IsTemporary(err))
		})
	}
}

func TestSendTimeoutIsTemporary(t *testing.T) {
	release := make(chan struct{})
	cs := newCaptureServer(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	t.Cleanup(func() { close(release) })
	s := newSender(t, cs.URL, 100*time.Millisecond)

	_, err := s.SendBatch(t.Context(), mail.Batch{
		From: "news@shop.example", Subject: "Hi", Text: "Hi", Kind: mail.KindTransactional,
		Recipients: []mail.Recipient{{MessageID: "m1", Email: "ada@example.com"}},
	})
	var pe *mail.ProviderError
	require.ErrorAs(t, err, &pe)
	require.True(t, pe.Temporary)
	require.True(t, pe.MaybeSent)
	require.Equal(t, 0, pe.Status)
	require.Equal(t, "no answer within 100ms", pe.Reason)
}

func TestSendCallerCancelled(t *testing.T) {
	cs := newCaptureServer(t, func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
	s := newSender(t, cs.URL, 5*time.Second)
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()

	_, err := s.Send(ctx, marketingMessage())
	require.ErrorIs(t, err, context.DeadlineExceeded)
	var pe *mail.ProviderError
	require.False(t, errors.As(err, &pe), "the caller's own deadline is not a provider failure")
}

func TestNewValidatesConfig(t *testing.T) {
	_, err := mailgun.New(mailgun.Config{Domain: "mg.shop.example"}, nil, nil, nil)
	require.EqualError(t, err, "mailgun config: APIKey is required")
	_, err = mailgun.New(mailgun.Config{APIKey: "k"}, nil, nil, nil)
	require.EqualError(t, err, "mailgun config: Domain is required")
	_, err = mailgun.New(mailgun.Config{APIKey: "k", Domain: "d", Timeout: -time.Second}, nil, nil, nil)
	require.EqualError(t, err, "mailgun config: Timeout -1s is negative")
}

func TestFindSent(t *testing.T) {
	var eventsJSON = `{
	  "items": [
	    {"event":"accepted","id":"other","timestamp":1767268800.5,
	     "user-variables":{"message_id":"msg_other"},
	     "message":{"headers":{"message-id":"other@mg.shop.example"}}},
	    {"event":"accepted","id":"ev1","timestamp":1767268801.25,
	     "recipient":"ada@example.com",
	     "user-variables":{"message_id":"msg_01","program":"welcome"},
	     "message":{"headers":{"message-id":"20260101120000.1.ABC@mg.shop.example"}}}
	  ],
	  "paging": {"next":"%s/v3/mg.shop.example/events/next","first":"","last":"","previous":""}
	}`
	var base string
	cs := newCaptureServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch {
		case r.URL.Path == "/v3/mg.shop.example/events" && r.URL.Query().Get("user-variables") == `{"message_id":"msg_01"}`:
			_, _ = w.Write([]byte(strings.Replace(eventsJSON, "%s", base, 1)))
		default:
			_, _ = w.Write([]byte(`{"items":[],"paging":{}}`))
		}
	})
	base = cs.URL
	s := newSender(t, cs.URL, time.Second)
	since := time.Date(2026, 1, 1, 11, 0, 0, 0, time.UTC)

	id, found, err := s.FindSent(t.Context(), "msg_01", since)
	require.NoError(t, err)
	require.True(t, found)
	require.Equal(t, "20260101120000.1.ABC@mg.shop.example", id)

	cs.mu.Lock()
	first := cs.requests[0]
	cs.requests = nil
	cs.mu.Unlock()
	require.Equal(t, http.MethodGet, first.Method)
	require.Equal(t, "/v3/mg.shop.example/events", first.Path)
	require.Equal(t, "accepted", first.Query.Get("event"))
	require.Equal(t, `{"message_id":"msg_01"}`, first.Query.Get("user-variables"))
	require.Equal(t, "yes", first.Query.Get("ascending"))
	require.Equal(t, "300", first.Query.Get("limit"))
	require.Equal(t, "Thu, 1 Jan 2026 11:00:00 +0000", first.Query.Get("begin"))

	// Unknown message: both domains are searched, nothing is found, no error.
	_, found, err = s.FindSent(t.Context(), "msg_missing", since)
	require.NoError(t, err)
	require.False(t, found)
	cs.mu.Lock()
	var paths []string
	for _, r := range cs.requests {
		paths = append(paths, r.Path)
	}
	cs.mu.Unlock()
	require.Equal(t, []string{"/v3/mg.shop.example/events", "/v3/tx.shop.example/events"}, paths)
}

func TestFindSentProviderError(t *testing.T) {
	cs := newCaptureServer(t, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Retry-After", "3")
		w.WriteHeader(http.StatusServiceUnavailable)
	})
	s := newSender(t, cs.URL, time.Second)
	_, found, err := s.FindSent(t.Context(), "msg_01", time.Date(2026, 1, 1, 11, 0, 0, 0, time.UTC))
	require.False(t, found)
	var pe *mail.ProviderError
	require.ErrorAs(t, err, &pe)
	require.Equal(t, 503, pe.Status)
	require.True(t, pe.Temporary)
	require.Equal(t, 3*time.Second, pe.RetryAfter)
}
