package e2e

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// shopifyStatus delivers a signed Shopify webhook and returns the status,
// for deliveries that may be refused (Shopify then retries).
func (s *server) shopifyStatus(topic string, body []byte) int {
	s.t.Helper()
	mac := hmac.New(sha256.New, []byte(shopifySecret))
	mac.Write(body)
	req, err := http.NewRequest(http.MethodPost, s.URL+"/webhooks/shopify", bytesReader(body))
	require.NoError(s.t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Shopify-Topic", topic)
	req.Header.Set("X-Shopify-Event-Id", randomHex(16))
	req.Header.Set("X-Shopify-Hmac-Sha256", base64.StdEncoding.EncodeToString(mac.Sum(nil)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// abandon signs a shopper up and leaves their checkout idle for two minutes.
func (s *server) abandon(p shopper) {
	s.t.Helper()
	s.signUp(p)
	s.leaveCheckout(p, 2*time.Minute)
}

// outboxStates counts the messages of the outbox by state.
func (s *server) outboxStates() map[string]int {
	s.t.Helper()
	var out struct {
		Refrain struct {
			Outbox struct {
				Nodes []struct{ State string }
			}
		}
	}
	s.admin(`{ refrain { outbox(first: 200) { nodes { state } } } }`, nil, &out)
	states := map[string]int{}
	for _, n := range out.Refrain.Outbox.Nodes {
		states[n.State]++
	}
	return states
}

// exactlyOnce waits until every shopper has a mail at the Mailgun server and
// every message is sent, then checks that nobody got two.
func exactlyOnce(t *testing.T, r *server, mg *mailgunServer, shoppers []shopper, within time.Duration) {
	t.Helper()
	t.Cleanup(func() {
		if t.Failed() {
			for _, p := range shoppers {
				if len(mg.to(p.email)) != 1 {
					t.Logf("%s got %d mails", p.email, len(mg.to(p.email)))
					r.dump(p)
				}
			}
			t.Logf("outbox: %v", r.outboxStates())
		}
	})
	eventually(t, within, fmt.Sprintf("a reminder to each of %d shoppers, every message sent", len(shoppers)), func() bool {
		for _, p := range shoppers {
			if len(mg.to(p.email)) == 0 {
				return false
			}
		}
		st := r.outboxStates()
		return st["sent"] == len(shoppers) && len(st) == 1
	})
	for _, p := range shoppers {
		require.Len(t, mg.to(p.email), 1, "mails to %s", p.email)
	}
	require.Len(t, mg.all(), len(shoppers), "no mail to anyone else, none twice")
}

// Mailgun answers 503 for a while, then recovers: the reminder is retried
// and arrives once.
func TestFaultMailgunUnavailable(t *testing.T) {
	t.Parallel()
	mg := newMailgunServer(t)
	mg.set(func(m *mailgunServer) { m.failUntil = time.Now().Add(time.Hour) })
	r := startRefrain(t, storySettings(storyDatabases(t)[0].open(t), mg))
	r.uploadScenario(cartScenario)
	p := newShopper(1, "mg503")
	r.abandon(p)
	eventually(t, 30*time.Second, "Mailgun refuses the first attempt", func() bool {
		f, _ := mg.stats()
		return f >= 1
	})
	// Mailgun recovers a moment later.
	mg.set(func(m *mailgunServer) { m.failUntil = time.Now().Add(500 * time.Millisecond) })
	exactlyOnce(t, r, mg, []shopper{p}, 40*time.Second)
	var out struct {
		Refrain struct {
			Outbox struct{ Nodes []struct{ Attempts int } }
		}
	}
	r.admin(`{ refrain { outbox(first: 5) { nodes { attempts } } } }`, nil, &out)
	require.GreaterOrEqual(t, out.Refrain.Outbox.Nodes[0].Attempts, 2, "sent after a retry")
}

// The PostgreSQL server stops (immediately, as in a crash) while webhooks
// are being processed and mail is due, and comes back: every acknowledged
// webhook is processed, the one refused while it was down is taken when
// the store retries it, and each shopper gets one reminder.
func TestFaultDatabaseRestart(t *testing.T) {
	t.Parallel()
	pg := startPrivatePostgres(t)
	mg := newMailgunServer(t)
	settings := storySettings(pg.URL, mg)
	settings["REFRAIN_DATABASE_MAX_CONNS"] = "8"
	r := startRefrain(t, settings)
	r.uploadScenario(cartScenario)
	var shoppers []shopper
	for i := int64(1); i <= 5; i++ {
		p := newShopper(i, "dbrestart")
		shoppers = append(shoppers, p)
		r.abandon(p)
	}
	late := newShopper(6, "dbrestart")
	shoppers = append(shoppers, late)
	signUp := shopifyBody(t, "shopify_customers_create.json", func(b map[string]any) {
		b["id"], b["admin_graphql_api_id"], b["email"], b["first_name"] = late.id, late.gid(), late.email, "Mia"
		now := time.Now().UTC().Format(time.RFC3339)
		b["created_at"], b["updated_at"] = now, now
		b["email_marketing_consent"] = map[string]any{"state": "subscribed", "opt_in_level": "single_opt_in", "consent_updated_at": now}
	})
	pg.restart(2*time.Second, func() {
		// While the database is down nothing is acknowledged: the store keeps the delivery and retries.
		require.NotEqual(t, http.StatusOK, r.shopifyStatus("customers/create", signUp), "a webhook acknowledged without a database")
		resp, err := http.Get(r.URL + "/readyz")
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode, "/readyz while the database is down")
	})
	// Shopify retries the refused delivery until it is acknowledged.
	eventually(t, 30*time.Second, "the retried webhook is acknowledged once the database is back", func() bool {
		return r.shopifyStatus("customers/create", signUp) == http.StatusOK
	})
	r.leaveCheckout(late, 2*time.Minute)
	exactlyOnce(t, r, mg, shoppers, 60*time.Second)
}

// The binary is killed with SIGKILL while it sends a burst of reminders
// (campaigns are not in this build; see the report) and started again: the
// messages it was sending are checked with Mailgun's events API before any
// is sent again, and every recipient gets exactly one.
func TestFaultKilledWhileSending(t *testing.T) {
	for _, d := range storyDatabases(t) {
		t.Run(d.name, func(t *testing.T) {
			t.Parallel()
			mg := newMailgunServer(t)
			r := startRefrain(t, storySettings(d.open(t), mg))
			r.uploadScenario(cartScenario)
			kill := make(chan struct{})
			mg.set(func(m *mailgunServer) {
				m.delay = 300 * time.Millisecond
				m.onArrive = func(n int) {
					if n == 8 {
						close(kill)
					}
				}
			})
			var shoppers []shopper
			for i := int64(1); i <= 30; i++ {
				p := newShopper(i, "kill-"+d.name)
				shoppers = append(shoppers, p)
				r.abandon(p)
			}
			select {
			case <-kill:
			case <-time.After(45 * time.Second):
				t.Fatal("the burst of reminders never reached the Mailgun server")
			}
			// SIGKILL with sends in flight: the server still records the
			// ones it received, as Mailgun would.
			r.kill()
			mg.set(func(m *mailgunServer) { m.delay, m.onArrive = 0, nil })
			before := len(mg.all())
			r.start()
			exactlyOnce(t, r, mg, shoppers, 60*time.Second)
			_, searches := mg.stats()
			require.Positive(t, searches, "messages in flight at the kill were looked up at Mailgun before sending")
			t.Logf("%d mails accepted before the kill, %d after the restart, %d events searches", before, len(mg.all())-before, searches)
		})
	}
}

func bytesReader(b []byte) *bytes.Reader { return bytes.NewReader(b) }

// hasMutation reports whether this build's GraphQL API has a mutation.
func hasMutation(t *testing.T, r *server, name string) bool {
	t.Helper()
	for _, f := range introspect(t, r, "RefrainMutation").Fields {
		if f.Name == name {
			return true
		}
	}
	return false
}

// A campaign to every customer, killed with SIGKILL in the middle of its
// batches and started again: every recipient gets it exactly once. Campaigns
// come with the campaigns issue: without createCampaign in this build the
// test is skipped, saying so (TestFaultKilledWhileSending covers scenario
// sends meanwhile).
func TestFaultKilledDuringCampaign(t *testing.T) {
	t.Parallel()
	mg := newMailgunServer(t)
	settings := storySettings(storyDatabases(t)[len(storyDatabases(t))-1].open(t), mg)
	settings["REFRAIN_CAMPAIGN_BATCH"] = "5"
	settings["REFRAIN_CAMPAIGN_POLL"] = "200ms"
	settings["REFRAIN_CAMPAIGN_LEASE"] = "2s"
	r := startRefrain(t, settings)
	if !hasMutation(t, r, "createCampaign") {
		t.Skip("campaigns are not in this build (createCampaign comes with the campaigns issue): the kill during a campaign is not checked here")
	}
	var shoppers []shopper
	for i := int64(1); i <= 30; i++ {
		p := newShopper(i, "campaign")
		shoppers = append(shoppers, p)
		r.signUp(p)
	}
	eventually(t, 30*time.Second, "the 30 shoppers are in", func() bool {
		var out struct {
			Refrain struct {
				Customers struct{ Nodes []struct{ ID string } }
			}
		}
		r.admin(`{ refrain { customers(first: 100) { nodes { id } } } }`, nil, &out)
		return len(out.Refrain.Customers.Nodes) == len(shoppers)
	})
	kill := make(chan struct{})
	mg.set(func(m *mailgunServer) {
		m.delay = 300 * time.Millisecond
		m.onArrive = func(n int) {
			if n == 2 {
				close(kill)
			}
		}
	})
	var created struct {
		Refrain struct {
			CreateCampaign struct {
				Campaign   *struct{ ID string }
				UserErrors []struct{ Message string }
			} `json:"createCampaign"`
		}
	}
	r.admin(`mutation($in: CampaignInput!) { refrain { createCampaign(input: $in) { campaign { id } userErrors { message } } } }`,
		map[string]any{"in": map[string]any{"name": "E2E flash sale", "template": "win-back", "segment": "all", "priority": 60,
			"values": map[string]any{"discount_code": "FLASH10"}}}, &created)
	require.Empty(t, created.Refrain.CreateCampaign.UserErrors)
	require.NotNil(t, created.Refrain.CreateCampaign.Campaign)
	id := created.Refrain.CreateCampaign.Campaign.ID
	var sched struct {
		Refrain struct {
			ScheduleCampaign struct {
				Campaign   *struct{ Status string }
				UserErrors []struct{ Message string }
			} `json:"scheduleCampaign"`
		}
	}
	r.admin(`mutation($id: ID!, $at: DateTime) { refrain { scheduleCampaign(id: $id, at: $at) { campaign { status } userErrors { message } } } }`,
		map[string]any{"id": id, "at": time.Now().UTC().Format(time.RFC3339)}, &sched)
	require.Empty(t, sched.Refrain.ScheduleCampaign.UserErrors)
	select {
	case <-kill:
	case <-time.After(45 * time.Second):
		t.Fatal("the campaign never reached the Mailgun server")
	}
	r.kill()
	mg.set(func(m *mailgunServer) { m.delay, m.onArrive = 0, nil })
	r.start()
	eventually(t, 60*time.Second, "the campaign reaches each of the 30 shoppers", func() bool {
		for _, p := range shoppers {
			if len(mg.to(p.email)) == 0 {
				return false
			}
		}
		return true
	})
	var st struct {
		Refrain struct {
			Campaign struct {
				Status    string
				SentCount int
			}
		}
	}
	eventually(t, 30*time.Second, "the campaign is SENT with 30 sent", func() bool {
		r.admin(`query($id: ID!) { refrain { campaign(id: $id) { status sentCount } } }`, map[string]any{"id": id}, &st)
		return st.Refrain.Campaign.Status == "SENT"
	})
	require.Equal(t, len(shoppers), st.Refrain.Campaign.SentCount)
	for _, p := range shoppers {
		require.Len(t, mg.to(p.email), 1, "campaign mails to %s", p.email)
	}
	require.Len(t, mg.all(), len(shoppers))
}
