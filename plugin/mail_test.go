package plugin_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	mg "github.com/mailgun/mailgun-go/v4"
	"github.com/stretchr/testify/require"

	"github.com/refrain-dev/refrain/plugin"
	"github.com/refrain-dev/refrain/plugin/mail"
	"github.com/refrain-dev/refrain/plugin/mail/outbox"
	"github.com/refrain-dev/refrain/plugin/store/storetest"
)

const mailgunFixtures = "../testdata/webhooks"

// httpDo sends one request through the plugin's handler.
func (e *env) httpDo(method, target, contentType, body string, header map[string]string) *httptest.ResponseRecorder {
	e.t.Helper()
	req := httptest.NewRequest(method, target, strings.NewReader(body))
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	e.p.Handler().ServeHTTP(rec, req)
	return rec
}

// deliver runs the delivery worker until nothing is due.
func (e *env) deliver() {
	e.t.Helper()
	for {
		n, err := e.p.Mail().ProcessDue(context.Background())
		require.NoError(e.t, err)
		if n == 0 {
			return
		}
	}
}

type customerView struct {
	Consent struct {
		State string         `json:"state"`
		Proof map[string]any `json:"proof"`
	} `json:"consent"`
	Preferences map[string]any `json:"preferences"`
	Engagement  struct {
		LastOpenAt  *time.Time `json:"lastOpenAt"`
		LastClickAt *time.Time `json:"lastClickAt"`
	} `json:"engagement"`
	Events struct {
		Nodes []struct {
			Type       string         `json:"type"`
			Properties map[string]any `json:"properties"`
		} `json:"nodes"`
	} `json:"events"`
	Messages struct {
		Nodes []messageView `json:"nodes"`
	} `json:"messages"`
}

type messageView struct {
	ID       string `json:"id"`
	To       string `json:"to"`
	Template string `json:"template"`
	Kind     string `json:"kind"`
	State    string `json:"state"`
	Subject  string `json:"subject"`
	Text     string `json:"text"`
	HTML     string `json:"html"`
}

func (e *env) customerByEmail(email string) customerView {
	e.t.Helper()
	var out struct {
		Refrain struct {
			Customer *customerView `json:"customer"`
		} `json:"refrain"`
	}
	e.do(testBootstrapKey, `query($email: String!) { refrain { customer(email: $email) {
		consent { state proof } preferences engagement { lastOpenAt lastClickAt }
		events(first: 50) { nodes { type properties } }
		messages(first: 20) { nodes { id to template kind state subject text html } } } } }`,
		map[string]any{"email": email}).decode(e.t, &out)
	require.NotNil(e.t, out.Refrain.Customer, email)
	return *out.Refrain.Customer
}

func (v customerView) eventTypes() []string {
	var out []string
	for _, n := range v.Events.Nodes {
		out = append(out, n.Type)
	}
	return out
}

func (v customerView) event(typ string) map[string]any {
	for _, n := range v.Events.Nodes {
		if n.Type == typ {
			return n.Properties
		}
	}
	return nil
}

var linkToken = regexp.MustCompile(`/u/([A-Za-z0-9_.\-]+)`)

func TestDoubleOptInEndToEnd(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *storetest.DB) {
		e := newEnv(t, db, func(c *plugin.Config) { c.SigningSecret = strings.Repeat("x", 32) })
		subscribe := `mutation($input: SubscribeInput!) { refrain { subscribe(input: $input) { state userErrors { field message code } } } }`
		var sub struct {
			Refrain struct {
				Subscribe struct {
					State      *string `json:"state"`
					UserErrors []struct {
						Field []string `json:"field"`
						Code  string   `json:"code"`
					} `json:"userErrors"`
				} `json:"subscribe"`
			} `json:"refrain"`
		}
		// Public: no credential.
		e.do("", subscribe, map[string]any{"input": map[string]any{"email": "Ann@Example.com", "firstName": "Ann",
			"source": "footer", "locale": "fr", "consentText": "Oui, envoyez-moi la newsletter", "ref": "spring"}}).decode(t, &sub)
		require.Empty(t, sub.Refrain.Subscribe.UserErrors)
		require.Equal(t, "PENDING", *sub.Refrain.Subscribe.State)

		// An invalid address is a user error.
		e.do("", subscribe, map[string]any{"input": map[string]any{"email": "not-an-address"}}).decode(t, &sub)
		require.Len(t, sub.Refrain.Subscribe.UserErrors, 1)
		require.Equal(t, []string{"input", "email"}, sub.Refrain.Subscribe.UserErrors[0].Field)
		require.Equal(t, "INVALID", sub.Refrain.Subscribe.UserErrors[0].Code)

		ann := e.customerByEmail("ann@example.com")
		require.Equal(t, "PENDING", ann.Consent.State)
		require.Equal(t, "Oui, envoyez-moi la newsletter", ann.Consent.Proof["consent_text"])
		require.Equal(t, "footer", ann.Consent.Proof["source"])
		require.Equal(t, "192.0.2.1", ann.Consent.Proof["ip"])
		require.Contains(t, ann.eventTypes(), "consent.changed")

		// The confirmation is in the outbox, rendered in French.
		e.deliver()
		var ob struct {
			Refrain struct {
				Outbox struct {
					Nodes []messageView `json:"nodes"`
				} `json:"outbox"`
			} `json:"refrain"`
		}
		e.do(testBootstrapKey, `{ refrain { outbox(to: "ann@example.com") { nodes { id to template kind state subject text html } } } }`, nil).decode(t, &ob)
		require.Len(t, ob.Refrain.Outbox.Nodes, 1)
		confirm := ob.Refrain.Outbox.Nodes[0]
		require.Equal(t, "subscription-confirm", confirm.Template)
		require.Equal(t, "transactional", confirm.Kind)
		require.Equal(t, "sent", confirm.State)
		m := linkToken.FindStringSubmatch(confirm.Text)
		require.NotNil(t, m, confirm.Text)
		token := m[1]
		require.True(t, strings.HasPrefix(token, "c."))

		// The outbox page needs an admin key in the Authorization header.
		require.Equal(t, http.StatusUnauthorized, e.httpDo("GET", "/outbox", "", "", nil).Code)
		require.Equal(t, http.StatusUnauthorized, e.httpDo("GET", "/outbox?key="+testBootstrapKey, "", "", nil).Code)
		page := e.httpDo("GET", "/outbox", "", "", map[string]string{"Authorization": "Bearer " + testBootstrapKey})
		require.Equal(t, http.StatusOK, page.Code)
		require.Contains(t, page.Body.String(), confirm.ID)
		require.Contains(t, page.Body.String(), "ann@example.com")

		// The link shows a confirmation button (GET does not confirm) ...
		get := e.httpDo("GET", "/u/"+token, "", "", nil)
		require.Equal(t, http.StatusOK, get.Code)
		require.Contains(t, get.Body.String(), "Confirm my subscription")
		require.Equal(t, "PENDING", e.customerByEmail("ann@example.com").Consent.State)
		// ... and POST confirms.
		post := e.httpDo("POST", "/u/"+token, "application/x-www-form-urlencoded", "action=confirm", nil)
		require.Equal(t, http.StatusOK, post.Code, post.Body.String())
		require.Contains(t, post.Body.String(), "Subscription confirmed")
		ann = e.customerByEmail("ann@example.com")
		require.Equal(t, "SUBSCRIBED", ann.Consent.State)
		require.Equal(t, "Oui, envoyez-moi la newsletter", ann.Consent.Proof["consent_text"])
		require.NotEmpty(t, ann.Consent.Proof["confirmed_at"])
		require.Equal(t, "footer", ann.event("newsletter.subscribed")["source"])

		// confirmSubscription through GraphQL is idempotent; a forged token is a user error.
		var conf struct {
			Refrain struct {
				ConfirmSubscription struct {
					State      *string `json:"state"`
					UserErrors []struct {
						Field []string `json:"field"`
					} `json:"userErrors"`
				} `json:"confirmSubscription"`
			} `json:"refrain"`
		}
		confirmQ := `mutation($t: String!) { refrain { confirmSubscription(token: $t) { state userErrors { field } } } }`
		e.do("", confirmQ, map[string]any{"t": token}).decode(t, &conf)
		require.Equal(t, "SUBSCRIBED", *conf.Refrain.ConfirmSubscription.State)
		e.do("", confirmQ, map[string]any{"t": token[:len(token)-2] + "xx"}).decode(t, &conf)
		require.Equal(t, []string{"token"}, conf.Refrain.ConfirmSubscription.UserErrors[0].Field)
		n := 0
		for _, typ := range e.customerByEmail("ann@example.com").eventTypes() {
			if typ == "newsletter.subscribed" {
				n++
			}
		}
		require.Equal(t, 1, n)

		// A marketing message carries the unsubscribe and preferences link.
		_, _, err := e.p.Mail().Enqueue(context.Background(), db.DB, outbox.EnqueueInput{CustomerPK: customerPK(t, db, "ann@example.com"),
			Template: "welcome", Kind: mail.KindMarketing, Program: "welcome", Step: "d0", IdempotencyKey: "welcome:ann"})
		require.NoError(t, err)
		e.deliver()
		msgs := e.customerByEmail("ann@example.com").Messages.Nodes
		require.Len(t, msgs, 2)
		require.Equal(t, "welcome", msgs[0].Template)
		um := linkToken.FindAllStringSubmatch(msgs[0].HTML, -1)
		require.NotEmpty(t, um)
		unsub := um[len(um)-1][1]
		require.True(t, strings.HasPrefix(unsub, "u."))

		// The preferences page.
		get = e.httpDo("GET", "/u/"+unsub, "", "", nil)
		require.Equal(t, http.StatusOK, get.Code)
		require.Contains(t, get.Body.String(), "Unsubscribe from all marketing email")
		require.Contains(t, get.Body.String(), `name="frequency" value="weekly"`)
		post = e.httpDo("POST", "/u/"+unsub, "application/x-www-form-urlencoded",
			url.Values{"action": {"preferences"}, "frequency": {"weekly"}, "topics": {"Recipes, news, recipes"}}.Encode(), nil)
		require.Equal(t, http.StatusOK, post.Code, post.Body.String())
		ann = e.customerByEmail("ann@example.com")
		require.Equal(t, "weekly", ann.Preferences["frequency"])
		require.Equal(t, []any{"news", "recipes"}, ann.Preferences["topics"])
		require.Equal(t, "SUBSCRIBED", ann.Consent.State)

		// A confirm token does not unsubscribe, and a token is bound to its address.
		require.Equal(t, http.StatusNotFound, e.httpDo("POST", "/u/"+token, "application/x-www-form-urlencoded", "List-Unsubscribe=One-Click", nil).Code)
		subscribeEmail(t, e, "bob@example.com")
		forged := strings.Replace(unsub, publicID(t, db, "ann@example.com"), publicID(t, db, "bob@example.com"), 1)
		require.NotEqual(t, unsub, forged)
		require.Equal(t, http.StatusNotFound, e.httpDo("POST", "/u/"+forged, "application/x-www-form-urlencoded", "List-Unsubscribe=One-Click", nil).Code)

		// RFC 8058 one-click unsubscription, posted as multipart/form-data
		// as in the example of RFC 8058 section 8.1.
		var mp strings.Builder
		mw := multipart.NewWriter(&mp)
		require.NoError(t, mw.WriteField("List-Unsubscribe", "One-Click"))
		require.NoError(t, mw.Close())
		post = e.httpDo("POST", "/u/"+unsub, mw.FormDataContentType(), mp.String(), nil)
		require.Equal(t, http.StatusOK, post.Code, post.Body.String())
		ann = e.customerByEmail("ann@example.com")
		require.Equal(t, "UNSUBSCRIBED", ann.Consent.State)
		require.Equal(t, "one_click", ann.Consent.Proof["method"])
		require.Equal(t, "one_click", ann.event("email.unsubscribed")["method"])
		require.Equal(t, "PENDING", e.customerByEmail("bob@example.com").Consent.State, "the forged token changed nobody")
		var sup struct {
			Refrain struct {
				Suppressions struct {
					Nodes []struct {
						Address, Reason, Source string
					} `json:"nodes"`
				} `json:"suppressions"`
			} `json:"refrain"`
		}
		e.do(testBootstrapKey, `{ refrain { suppressions { nodes { address reason source } } } }`, nil).decode(t, &sup)
		require.Len(t, sup.Refrain.Suppressions.Nodes, 1)
		require.Equal(t, "ann@example.com", sup.Refrain.Suppressions.Nodes[0].Address)
		require.Equal(t, "unsubscribe", sup.Refrain.Suppressions.Nodes[0].Reason)
		// A second one-click post is harmless.
		require.Equal(t, http.StatusOK, e.httpDo("POST", "/u/"+unsub, "application/x-www-form-urlencoded", "List-Unsubscribe=One-Click", nil).Code)
	})
}

func customerPK(t *testing.T, db *storetest.DB, email string) int64 {
	t.Helper()
	var pk int64
	require.NoError(t, db.NewSelect().Table("customers").Column("id").Where("email_normalized = ?", email).Scan(context.Background(), &pk))
	return pk
}

func publicID(t *testing.T, db *storetest.DB, email string) string {
	t.Helper()
	var id string
	require.NoError(t, db.NewSelect().Table("customers").Column("public_id").Where("email_normalized = ?", email).Scan(context.Background(), &id))
	return id
}

func subscribeEmail(t *testing.T, e *env, email string) gqlResult {
	t.Helper()
	return e.do("", `mutation($input: SubscribeInput!) { refrain { subscribe(input: $input) { state userErrors { field message code } } } }`,
		map[string]any{"input": map[string]any{"email": email}})
}

func TestSubscribeRateLimitAndSingleOptIn(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *storetest.DB) {
		e := newEnv(t, db, func(c *plugin.Config) { c.SubscribeRateLimit = 2; c.DoubleOptIn = false })
		for i := 0; i < 2; i++ {
			r := subscribeEmail(t, e, "sam@example.com")
			require.Empty(t, r.Errors)
			require.Contains(t, string(r.Data), `"state":"SUBSCRIBED"`)
			require.Contains(t, string(r.Data), `"userErrors":[]`)
		}
		r := subscribeEmail(t, e, "sam@example.com")
		require.Contains(t, string(r.Data), `"code":"RATE_LIMITED"`)
		// Another address from the same IP is limited too (2 per hour per IP).
		r = subscribeEmail(t, e, "other@example.com")
		require.Contains(t, string(r.Data), `"code":"RATE_LIMITED"`)
		// The next hour the counters start again.
		e.clock.Advance(time.Hour)
		r = subscribeEmail(t, e, "other@example.com")
		require.Contains(t, string(r.Data), `"state":"SUBSCRIBED"`)
		sam := e.customerByEmail("sam@example.com")
		require.Equal(t, "SUBSCRIBED", sam.Consent.State)
		require.Equal(t, "single_opt_in", sam.Consent.Proof["method"])
		require.Contains(t, sam.eventTypes(), "newsletter.subscribed")
		require.Empty(t, sam.Messages.Nodes, "no confirmation mail under single opt-in")
	})
}

func TestUpdatePreferencesAccess(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *storetest.DB) {
		e := newEnv(t, db, nil)
		subscribeEmail(t, e, "ann@example.com")
		subscribeEmail(t, e, "bob@example.com")
		ann, bob := publicID(t, db, "ann@example.com"), publicID(t, db, "bob@example.com")
		q := `mutation($input: UpdatePreferencesInput!) { refrain { updatePreferences(input: $input) { preferences userErrors { code } } } }`
		tok := e.customerToken(ann, time.Hour, testJWTSecret)
		r := e.do(tok, q, map[string]any{"input": map[string]any{"preferences": map[string]any{"frequency": "monthly"}}})
		require.Empty(t, r.Errors)
		require.Contains(t, string(r.Data), `"frequency":"monthly"`)
		r = e.do(tok, q, map[string]any{"input": map[string]any{"customerId": bob, "preferences": map[string]any{"frequency": "monthly"}}})
		require.Equal(t, []string{"FORBIDDEN"}, r.codes())
		r = e.do("", q, map[string]any{"input": map[string]any{"preferences": map[string]any{"frequency": "monthly"}}})
		require.Equal(t, []string{"UNAUTHENTICATED"}, r.codes())
		r = e.do(testBootstrapKey, q, map[string]any{"input": map[string]any{"customerId": bob, "preferences": map[string]any{"diet": "vegetarian"}}})
		require.Empty(t, r.Errors)
		require.Equal(t, "vegetarian", e.customerByEmail("bob@example.com").Preferences["diet"])
		require.Contains(t, e.customerByEmail("bob@example.com").eventTypes(), "preferences.updated")
		require.Nil(t, e.customerByEmail("bob@example.com").Preferences["frequency"])
	})
}

func TestTemplatesThroughGraphQL(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *storetest.DB) {
		e := newEnv(t, db, nil)
		q := `mutation($input: UpsertTemplateInput!) { refrain { upsertTemplate(input: $input) { template { name locales storedLocales requiredValues } userErrors { message code } } } }`
		r := e.do(testBootstrapKey, q, map[string]any{"input": map[string]any{"name": "promo", "locale": "en",
			"subject": "Hi", "html": "<p>Hello</p>\n<p>{{.Custmer.FirstName}}</p>"}})
		require.Empty(t, r.Errors)
		require.Contains(t, string(r.Data), `"code":"INVALID"`)
		require.Contains(t, string(r.Data), `db:promo/en/body.html:2`)
		require.Contains(t, string(r.Data), `Custmer`)
		r = e.do(testBootstrapKey, q, map[string]any{"input": map[string]any{"name": "promo", "locale": "en",
			"subject": "Hi {{.Customer.FirstName}}", "html": "<p>Code {{.Values.discount_code}}</p>", "text": "Code {{.Values.discount_code}}"}})
		require.Empty(t, r.Errors)
		require.Contains(t, string(r.Data), `"template":{"locales":["en"],"name":"promo","requiredValues":["discount_code"],"storedLocales":["en"]}`)
		// A customer token cannot write templates.
		r = e.do(e.customerToken("someone", time.Hour, testJWTSecret), q, map[string]any{"input": map[string]any{"name": "x", "locale": "en", "subject": "s", "html": "h"}})
		require.Equal(t, []string{"FORBIDDEN"}, r.codes())

		subscribeEmail(t, e, "ann@example.com")
		id := publicID(t, db, "ann@example.com")
		var out struct {
			Refrain struct {
				PreviewTemplate struct{ Subject, HTML, Text, Locale string } `json:"previewTemplate"`
				Templates       []struct{ Name string }                      `json:"templates"`
			} `json:"refrain"`
		}
		e.do(testBootstrapKey, `query($id: ID!) { refrain { templates { name } previewTemplate(id: "promo", customerId: $id, values: {discount_code: "SPRING10"}) { subject html text locale } } }`,
			map[string]any{"id": id}).decode(t, &out)
		require.Equal(t, "Hi", strings.TrimSpace(out.Refrain.PreviewTemplate.Subject))
		require.Contains(t, out.Refrain.PreviewTemplate.HTML, "Code SPRING10")
		require.Contains(t, out.Refrain.PreviewTemplate.HTML, "/u/u."+id+".")
		require.Equal(t, "en", out.Refrain.PreviewTemplate.Locale)
		var names []string
		for _, tpl := range out.Refrain.Templates {
			names = append(names, tpl.Name)
		}
		require.Contains(t, names, "promo")
		require.Contains(t, names, "subscription-confirm")
		// Previewing wrote nothing.
		require.Len(t, e.customerByEmail("ann@example.com").Messages.Nodes, 1)
	})
}

// signFixture re-signs a webhook body with a fresh token at ts.
func signFixture(t *testing.T, body []byte, key string, ts time.Time, token string) []byte {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal(body, &m))
	mac := hmac.New(sha256.New, []byte(key))
	stamp := fmt.Sprint(ts.Unix())
	mac.Write([]byte(stamp + token))
	m["signature"] = map[string]any{"timestamp": stamp, "token": token, "signature": hex.EncodeToString(mac.Sum(nil))}
	out, err := json.Marshal(m)
	require.NoError(t, err)
	return out
}

func TestMailgunWebhookFixtures(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *storetest.DB) {
		e := newEnv(t, db, func(c *plugin.Config) {
			c.MailgunWebhookSigningKey = "TEST_WEBHOOK_SIGNING_KEY"
			c.MailgunWebhookWindow = 20 * 365 * 24 * time.Hour // the fixtures are years old
		})
		for _, email := range []string{"recipient@example.com", "foo@example.com", "john@example.com", "slava@mailgun.com"} {
			subscribeEmail(t, e, email)
		}
		files := []string{"mailgun_delivered.json", "mailgun_opened.json", "mailgun_clicked.json",
			"mailgun_unsubscribed.json", "mailgun_complained.json", "mailgun_permanent_fail.json"}
		post := func(body []byte) *httptest.ResponseRecorder {
			return e.httpDo("POST", "/webhooks/mailgun", "application/json", string(body), nil)
		}
		for _, f := range files {
			body, err := os.ReadFile(filepath.Join(mailgunFixtures, f))
			require.NoError(t, err)
			rec := post(body)
			require.Equal(t, http.StatusOK, rec.Code, "%s: %s", f, rec.Body.String())
			require.Equal(t, "recorded\n", rec.Body.String(), f)
			// The same delivery again is a replayed token.
			require.Equal(t, http.StatusUnauthorized, post(body).Code, f)
		}
		var n int
		require.NoError(t, db.NewSelect().Table("message_events").ColumnExpr("count(*)").Scan(context.Background(), &n))
		require.Equal(t, 6, n)

		r := e.customerByEmail("recipient@example.com")
		require.Equal(t, false, r.event("email.opened")["machine"])
		require.Equal(t, "http://example.com/signup", r.event("email.clicked")["url"])
		require.NotNil(t, r.event("email.unsubscribed"))
		require.Equal(t, time.Date(2013, 8, 21, 1, 9, 3, 42277000, time.UTC), r.Engagement.LastOpenAt.UTC())
		require.Equal(t, time.Date(2013, 8, 21, 8, 59, 24, 94891000, time.UTC), r.Engagement.LastClickAt.UTC())
		require.Equal(t, "UNSUBSCRIBED", r.Consent.State)
		require.Equal(t, "provider_unsubscribe", r.Consent.Proof["method"])
		foo := e.customerByEmail("foo@example.com")
		require.NotNil(t, foo.event("email.complained"))
		require.Equal(t, "UNSUBSCRIBED", foo.Consent.State)
		require.Equal(t, "complaint", foo.Consent.Proof["method"])
		require.NotNil(t, e.customerByEmail("john@example.com").event("email.delivered"))
		slava := e.customerByEmail("slava@mailgun.com")
		require.Equal(t, "permanent", slava.event("email.bounced")["severity"])
		require.Equal(t, "PENDING", slava.Consent.State)

		reasons := map[string][]string{}
		var rows []struct {
			Address string `bun:"address"`
			Reason  string `bun:"reason"`
		}
		require.NoError(t, db.NewSelect().Table("suppressions").Column("address", "reason").Scan(context.Background(), &rows))
		for _, row := range rows {
			reasons[row.Address] = append(reasons[row.Address], row.Reason)
		}
		require.ElementsMatch(t, []string{"unsubscribe"}, reasons["recipient@example.com"])
		require.ElementsMatch(t, []string{"complaint", "unsubscribe"}, reasons["foo@example.com"])
		require.ElementsMatch(t, []string{"hard_bounce"}, reasons["slava@mailgun.com"])

		// The same event under a fresh signature is accepted and not recorded twice.
		body, err := os.ReadFile(filepath.Join(mailgunFixtures, "mailgun_clicked.json"))
		require.NoError(t, err)
		rec := post(signFixture(t, body, "TEST_WEBHOOK_SIGNING_KEY", e.clock.Now(), "fresh-token-1"))
		require.Equal(t, http.StatusOK, rec.Code)
		require.Equal(t, "already recorded\n", rec.Body.String())
		// A wrong signature.
		rec = post(signFixture(t, body, "WRONG_KEY", e.clock.Now(), "fresh-token-2"))
		require.Equal(t, http.StatusUnauthorized, rec.Code)
		// An event kind Refrain never accepts: 406 so Mailgun stops retrying.
		stored := strings.Replace(string(body), `"event": "clicked"`, `"event": "stored"`, 1)
		require.NotEqual(t, string(body), stored)
		rec = post(signFixture(t, []byte(stored), "TEST_WEBHOOK_SIGNING_KEY", e.clock.Now(), "fresh-token-3"))
		require.Equal(t, http.StatusNotAcceptable, rec.Code)
		require.Equal(t, http.StatusNotAcceptable, post([]byte("not json")).Code)
	})
}

func TestMailgunWebhookStaleTimestamp(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *storetest.DB) {
		e := newEnv(t, db, func(c *plugin.Config) { c.MailgunWebhookSigningKey = "TEST_WEBHOOK_SIGNING_KEY" })
		body, err := os.ReadFile(filepath.Join(mailgunFixtures, "mailgun_delivered.json"))
		require.NoError(t, err)
		rec := e.httpDo("POST", "/webhooks/mailgun", "application/json", string(body), nil)
		require.Equal(t, http.StatusUnauthorized, rec.Code)
		require.Contains(t, rec.Body.String(), "stale")
		// Signed now, it is accepted.
		rec = e.httpDo("POST", "/webhooks/mailgun", "application/json",
			string(signFixture(t, body, "TEST_WEBHOOK_SIGNING_KEY", e.clock.Now().Add(-time.Minute), "tok-now")), nil)
		require.Equal(t, http.StatusOK, rec.Code)
		// Signed ten minutes ago, refused with the default five-minute window.
		rec = e.httpDo("POST", "/webhooks/mailgun", "application/json",
			string(signFixture(t, body, "TEST_WEBHOOK_SIGNING_KEY", e.clock.Now().Add(-10*time.Minute), "tok-old")), nil)
		require.Equal(t, http.StatusUnauthorized, rec.Code)
	})
}

// captureMailgun records every call made to it as Mailgun would receive it.
type captureMailgun struct {
	*httptest.Server
	mu    sync.Mutex
	forms []url.Values
	paths []string
}

func newCaptureMailgun(t *testing.T) *captureMailgun {
	c := &captureMailgun{}
	c.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.Method != http.MethodPost {
			_, _ = w.Write([]byte(`{"items":[],"paging":{}}`))
			return
		}
		if err := r.ParseMultipartForm(32 << 20); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		c.mu.Lock()
		c.forms = append(c.forms, url.Values(r.MultipartForm.Value))
		c.paths = append(c.paths, r.URL.Path)
		n := len(c.forms)
		c.mu.Unlock()
		fmt.Fprintf(w, `{"id":"<%d.X@mg.shop.example>","message":"Queued. Thank you."}`, n)
	}))
	t.Cleanup(c.Close)
	return c
}

func TestSendThroughMailgunAPIBase(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *storetest.DB) {
		cm := newCaptureMailgun(t)
		e := newEnv(t, db, func(c *plugin.Config) {
			c.PublicURL = "https://shop.example"
			c.MailgunAPIKey = "key-test"
			c.MailgunDomain = "mg.shop.example"
			c.MailgunTransactionalDomain = "tx.shop.example"
			c.MailgunAPIBase = cm.URL
			c.MailFrom = "Shop <news@shop.example>"
			c.ListUnsubscribeMailto = "unsubscribe@shop.example"
			c.StoreName = "Shop"
			c.SigningSecret = strings.Repeat("y", 32)
		})
		// The confirmation is transactional: its own domain, no unsubscribe headers.
		subscribeEmail(t, e, "ann@example.com")
		e.deliver()
		require.Equal(t, []string{"/v3/tx.shop.example/messages"}, cm.paths)
		f := cm.forms[0]
		require.Equal(t, []string{"ann@example.com"}, f["to"])
		require.Equal(t, []string{"Shop <news@shop.example>"}, f["from"])
		require.Equal(t, []string{"subscription", "confirm"}, f["o:tag"])
		require.Equal(t, "subscription", f.Get("v:program"))
		require.Equal(t, "confirm", f.Get("v:step"))
		require.True(t, strings.HasPrefix(f.Get("v:message_id"), "msg_"))
		require.Empty(t, f["h:List-Unsubscribe"])
		require.Contains(t, f.Get("text"), "https://shop.example/u/c.")

		// A marketing message: both unsubscribe headers.
		annPK := customerPK(t, db, "ann@example.com")
		m, _, err := e.p.Mail().Enqueue(context.Background(), db.DB, outbox.EnqueueInput{CustomerPK: annPK,
			Template: "welcome", Kind: mail.KindMarketing, Program: "welcome", Step: "d0", Variant: "b", IdempotencyKey: "w:ann"})
		require.NoError(t, err)
		e.deliver()
		require.Len(t, cm.forms, 2)
		f = cm.forms[1]
		require.Equal(t, "/v3/mg.shop.example/messages", cm.paths[1])
		require.Equal(t, m.ID, f.Get("v:message_id"))
		require.Equal(t, "b", f.Get("v:variant"))
		require.Equal(t, []string{"welcome", "d0"}, f["o:tag"])
		require.Equal(t, "<"+*m.UnsubscribeURL+">, <mailto:unsubscribe@shop.example>", f.Get("h:List-Unsubscribe"))
		require.Equal(t, "List-Unsubscribe=One-Click", f.Get("h:List-Unsubscribe-Post"))
		require.Equal(t, "yes", f.Get("o:tracking"))

		// A campaign batch: one call, recipient variables per recipient.
		subscribeEmail(t, e, "bob@example.com")
		e.deliver()
		bobPK := customerPK(t, db, "bob@example.com")
		res, err := e.p.Mail().SendBatch(context.Background(), outbox.BatchInput{CustomerPKs: []int64{annPK, bobPK},
			Template: "welcome", Kind: mail.KindMarketing, Campaign: "launch", IdempotencyPrefix: "launch"})
		require.NoError(t, err)
		require.Equal(t, 2, res.Sent)
		f = cm.forms[len(cm.forms)-1]
		require.ElementsMatch(t, []string{"ann@example.com", "bob@example.com"}, f["to"])
		var rv map[string]map[string]string
		require.NoError(t, json.Unmarshal([]byte(f.Get("recipient-variables")), &rv))
		require.Len(t, rv, 2)
		require.True(t, strings.HasPrefix(rv["bob@example.com"]["unsubscribe_url"], "https://shop.example/u/u."))
		require.True(t, strings.HasPrefix(rv["ann@example.com"]["message_id"], "msg_"))
		require.Equal(t, "<%recipient.unsubscribe_url%>, <mailto:unsubscribe@shop.example>", f.Get("h:List-Unsubscribe"))
		require.Equal(t, "List-Unsubscribe=One-Click", f.Get("h:List-Unsubscribe-Post"))
		require.Equal(t, []string{"launch"}, f["o:tag"])
	})
}

func TestImportSuppressionsFromMailgun(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *storetest.DB) {
		srv := mg.NewMockServer()
		t.Cleanup(srv.Stop)
		e := newEnv(t, db, func(c *plugin.Config) {
			c.MailgunAPIKey = "key-test"
			c.MailgunDomain = "mg.shop.example"
			c.MailgunAPIBase = srv.URL()
			c.PublicURL = "https://shop.example"
			c.MailFrom = "Shop <news@shop.example>"
		})
		const q = `mutation { refrain { importSuppressions { read added userErrors { message } } } }`
		reader, _ := e.apiKey("read")
		require.Equal(t, []string{"FORBIDDEN"}, e.do(reader, q, nil).codes(), "importing writes: the read scope is not enough")
		var out struct {
			Refrain struct {
				ImportSuppressions struct {
					Read, Added int
					UserErrors  []struct{ Message string }
				}
			}
		}
		e.do(testBootstrapKey, q, nil).decode(t, &out)
		got := out.Refrain.ImportSuppressions
		require.Empty(t, got.UserErrors)
		// The mock lists foo@mailgun.test and alice@example.com on each of
		// its bounce, complaint and unsubscribe lists.
		require.Equal(t, 6, got.Read)
		require.Equal(t, 6, got.Added)
		var rows []struct {
			Address string `bun:"address"`
			Reason  string `bun:"reason"`
			Source  string `bun:"source"`
		}
		require.NoError(t, db.NewSelect().Table("suppressions").Column("address", "reason", "source").
			Order("address", "reason").Scan(context.Background(), &rows))
		require.Len(t, rows, 6)
		require.Equal(t, "alice@example.com", rows[0].Address)
		require.Equal(t, []string{"complaint", "hard_bounce", "unsubscribe"}, []string{rows[0].Reason, rows[1].Reason, rows[2].Reason})
		require.Equal(t, "import", rows[0].Source)

		// Importing again adds nothing.
		e.do(testBootstrapKey, q, nil).decode(t, &out)
		require.Equal(t, 6, out.Refrain.ImportSuppressions.Read)
		require.Zero(t, out.Refrain.ImportSuppressions.Added)
	})
}
