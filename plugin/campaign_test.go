package plugin_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/uptrace/bun"

	"github.com/refrain-dev/refrain/plugin"
	"github.com/refrain-dev/refrain/plugin/campaign"
	"github.com/refrain-dev/refrain/plugin/customer"
	"github.com/refrain-dev/refrain/plugin/kpi"
	"github.com/refrain-dev/refrain/plugin/mail"
	"github.com/refrain-dev/refrain/plugin/mail/outbox"
	"github.com/refrain-dev/refrain/plugin/mail/tracking"
	"github.com/refrain-dev/refrain/plugin/segment"
	"github.com/refrain-dev/refrain/plugin/store/storetest"
)

// mailgunCapture is a local Mailgun: it accepts single and batch sends
// (recipient-variables), counts every recipient, and answers the events
// API with an accepted event for each message it took, so that the
// outbox can reconcile a send interrupted by a crash.
type mailgunCapture struct {
	*httptest.Server
	mu         sync.Mutex
	recipients map[string]int
	accepted   map[string]string // message_id -> provider id
	total      int
	calls      int
	// after, when set, is called with the recipients counted so far after each call.
	after func(total int)
}

func newMailgunCapture(t *testing.T) *mailgunCapture {
	mc := &mailgunCapture{recipients: map[string]int{}, accepted: map[string]string{}}
	mc.Server = httptest.NewServer(mc)
	t.Cleanup(mc.Close)
	return mc
}

func (mc *mailgunCapture) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	if r.Method == http.MethodGet {
		mc.events(w, r)
		return
	}
	// Read the parts one by one: a batch has more parts than
	// ParseMultipartForm allows (GODEBUG multipartmaxparts).
	form := url.Values{}
	mr, err := r.MultipartReader()
	if errors.Is(err, http.ErrNotMultipart) {
		if err := r.ParseForm(); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		form = r.PostForm
	} else if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	for mr != nil {
		part, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		v, err := io.ReadAll(part)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		form.Add(part.FormName(), string(v))
	}
	rv := map[string]map[string]any{}
	if raw := form.Get("recipient-variables"); raw != "" {
		if err := json.Unmarshal([]byte(raw), &rv); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
	}
	mc.mu.Lock()
	mc.calls++
	id := fmt.Sprintf("%d.capture@mg.test.example", mc.calls)
	for _, to := range form["to"] {
		mc.recipients[to]++
		mc.total++
		mid := form.Get("v:message_id")
		if v, ok := rv[to]["message_id"].(string); ok {
			mid = v
		}
		mc.accepted[mid] = id
	}
	total, after := mc.total, mc.after
	mc.mu.Unlock()
	if after != nil {
		after(total)
	}
	fmt.Fprintf(w, `{"id":"<%s>","message":"Queued. Thank you."}`, id)
}

func (mc *mailgunCapture) events(w http.ResponseWriter, r *http.Request) {
	var filter map[string]string
	_ = json.Unmarshal([]byte(r.URL.Query().Get("user-variables")), &filter)
	mc.mu.Lock()
	id, ok := mc.accepted[filter["message_id"]]
	mc.mu.Unlock()
	if !ok || filter["message_id"] == "" {
		_, _ = w.Write([]byte(`{"items":[],"paging":{}}`))
		return
	}
	fmt.Fprintf(w, `{"items":[{"event":"accepted","id":"ev-%s","timestamp":%d,"user-variables":{"message_id":%q},
		"message":{"headers":{"message-id":%q}}}],"paging":{"next":"%s/v3/mg.test.example/events/next"}}`,
		filter["message_id"], time.Now().Unix(), filter["message_id"], id, mc.URL)
}

func (mc *mailgunCapture) counts() (total int, perRecipient map[string]int) {
	mc.mu.Lock()
	defer mc.mu.Unlock()
	out := make(map[string]int, len(mc.recipients))
	for k, v := range mc.recipients {
		out[k] = v
	}
	return mc.total, out
}

func withMailgun(mc *mailgunCapture) func(*plugin.Config) {
	return func(c *plugin.Config) {
		c.MailgunAPIKey, c.MailgunDomain, c.MailgunAPIBase = "key-test", "mg.test.example", mc.URL
		c.PublicURL, c.StoreURL = "https://refrain.test.example", "https://store.example"
		c.ScenariosLibrary = "none"
	}
}

// seedSubscribers inserts n subscribed customers (n0, n1, ...) with multi-row inserts.
func seedSubscribers(t *testing.T, db bun.IDB, at time.Time, n int, tags ...string) []int64 {
	t.Helper()
	pks := make([]int64, 0, n)
	if tags == nil {
		tags = []string{}
	}
	for start := 0; start < n; start += 1000 {
		chunk := make([]*customer.Customer, 0, 1000)
		for i := start; i < min(start+1000, n); i++ {
			email := "n" + strconv.Itoa(i) + "@example.com"
			first := "N" + strconv.Itoa(i)
			chunk = append(chunk, &customer.Customer{PublicID: customer.NewPublicID(), Email: &email, EmailNormalized: &email,
				FirstName: &first, Source: customer.SourceImport, ConsentState: customer.ConsentSubscribed,
				ConsentProof: map[string]any{}, Attributes: map[string]any{}, Preferences: map[string]any{}, Tags: tags,
				Stage: "SUBSCRIBER", CreatedAt: at, UpdatedAt: at})
		}
		_, err := db.NewInsert().Model(&chunk).Exec(context.Background())
		require.NoError(t, err)
		for _, c := range chunk {
			pks = append(pks, c.PK)
		}
	}
	return pks
}

func strp(s string) *string { return &s }

// TestCampaignCrashResumes kills a campaign sender halfway through 20,000
// recipients (its context is cancelled while batches are in flight) and
// lets another replica finish: each recipient reaches the Mailgun capture
// server exactly once.
func TestCampaignCrashResumes(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *storetest.DB) {
		const n = 20000
		ctx := context.Background()
		mc := newMailgunCapture(t)
		e := newEnv(t, db, withMailgun(mc))
		seedSubscribers(t, db.DB, e.clock.Now(), n)
		svc := e.p.Campaigns()
		c, err := svc.Create(ctx, campaign.Input{Name: strp("Summer sale"), Audience: strp("all"), Template: strp("welcome"),
			Values: map[string]string{"discount_code": "SUMMER"}})
		require.NoError(t, err)
		now := e.clock.Now()
		_, _, err = svc.Schedule(ctx, c.ID, &now)
		require.NoError(t, err)

		// The first replica sends until the capture server has seen half.
		killCtx, kill := context.WithCancel(ctx)
		mc.mu.Lock()
		mc.after = func(total int) {
			if total >= n/2 {
				kill()
			}
		}
		mc.mu.Unlock()
		for idle := 0; killCtx.Err() == nil; {
			k, err := svc.Pass(killCtx)
			if killCtx.Err() == nil {
				require.NoError(t, err)
			}
			if k == 0 {
				idle++
				require.Less(t, idle, 3, "the sender stopped before half the audience")
			}
		}
		mc.mu.Lock()
		mc.after = nil
		mc.mu.Unlock()
		half, _ := mc.counts()
		require.GreaterOrEqual(t, half, n/2)
		require.Less(t, half, n, "the sender was killed before the end")
		// Calls cut off in flight are left unconfirmed: their rows are
		// stored as sent and read as sending until the lease runs out.
		var left []*outbox.MessageBody
		require.NoError(t, db.NewSelect().Model(&left).Where("state = ?", outbox.BodySending).Scan(ctx))
		require.NotEmpty(t, left, "calls in flight when the sender was killed")
		rows := 0
		for _, b := range left {
			rows += len(b.MessageIDs)
			m, err := outbox.Get(ctx, db.DB, firstMessageID(t, db, b.MessageIDs[0]))
			require.NoError(t, err)
			require.Equal(t, outbox.StateSending, m.State, "a row of an unconfirmed call")
		}
		t.Logf("killed with %d recipients at the capture server and %d calls (%d message rows) unconfirmed", half, len(left), rows)

		// Another replica, once the dead one's leases ran out.
		e.clock.Advance(5 * time.Minute)
		cfg := e.p.Config()
		p2, err := plugin.New(ctx, cfg, plugin.WithDB(db.DB), plugin.WithClock(e.clock), plugin.WithLogger(quietLogger()))
		require.NoError(t, err)
		require.NoError(t, p2.Campaigns().Drain(ctx))
		for {
			m, err := p2.Mail().ProcessDue(ctx)
			require.NoError(t, err)
			if m == 0 {
				break
			}
		}
		total, per := mc.counts()
		require.Equal(t, n, total, "recipients counted at the capture server")
		require.Len(t, per, n)
		for addr, k := range per {
			if k != 1 {
				t.Fatalf("%s received %d messages", addr, k)
			}
		}
		got, err := campaign.Get(ctx, db.DB, c.ID)
		require.NoError(t, err)
		require.Equal(t, campaign.StatusSent, got.Status)
		require.Equal(t, n, got.AudienceCount)
		sent, err := db.NewSelect().Model((*outbox.Message)(nil)).Where("campaign = ? AND state = ?", c.ID, outbox.StateSent).Count(ctx)
		require.NoError(t, err)
		require.EqualValues(t, n, sent)
	})
}

func TestCampaignLifecycle(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *storetest.DB) {
		ctx := context.Background()
		mc := newMailgunCapture(t)
		// About seven recipients a variant: the A/B rule is lowered to decide
		// on them (the default asks 500 each; see TestBayesPicker).
		e := newEnv(t, db, func(c *plugin.Config) { withMailgun(mc)(c); c.ABMinSample = 5 })
		seedSubscribers(t, db.DB, e.clock.Now(), 30, "vip")
		svc := e.p.Campaigns()

		_, err := svc.Create(ctx, campaign.Input{Name: strp("x"), Audience: strp("orders_count >"), Template: strp("welcome")})
		require.EqualError(t, err, `segment: not all, tag:NAME or a stored segment, and not a rule: line 1, column 14: unexpected token EOF`)
		_, err = svc.Create(ctx, campaign.Input{Name: strp("x"), Audience: strp("all"), Template: strp("nope")})
		require.EqualError(t, err, `template: no template named "nope"`)
		_, err = svc.Create(ctx, campaign.Input{Name: strp("x"), Audience: strp("all"), Template: strp("win-back")})
		require.EqualError(t, err, `values: template "win-back" needs discount_code`)
		_, err = svc.Create(ctx, campaign.Input{Name: strp("x"), Audience: strp("all"), Template: strp("win-back"),
			ABTest: &campaign.ABTest{TestShare: 0.5, WinnerMetric: campaign.MetricOpenRate, DecideAfter: time.Hour,
				Variants: []campaign.Variant{{Name: "a", Values: map[string]string{"discount_code": "A"}}, {Name: "b", Values: map[string]string{}}}}})
		require.EqualError(t, err, `abTest.variants[1].values: template "win-back" needs discount_code`)

		c, err := svc.Create(ctx, campaign.Input{Name: strp("VIP test"), Audience: strp("tag:vip"), Template: strp("welcome"),
			Values: map[string]string{"discount_code": "A"},
			ABTest: &campaign.ABTest{TestShare: 0.5, WinnerMetric: campaign.MetricOpenRate, DecideAfter: 4 * time.Hour,
				Variants: []campaign.Variant{{Name: "a", Values: map[string]string{"discount_code": "A"}},
					{Name: "b", Values: map[string]string{"discount_code": "B"}}}}})
		require.NoError(t, err)
		require.Equal(t, campaign.StatusDraft, c.Status)
		_, err = svc.Pause(ctx, c.ID)
		require.EqualError(t, err, "campaign "+c.ID+" is DRAFT: cannot pause it (only [SCHEDULED SENDING] campaigns can be)")
		_, _, err = svc.Schedule(ctx, c.ID, nil)
		require.EqualError(t, err, "scheduledAt: is required to schedule a campaign")
		at := e.clock.Now().Add(time.Hour)
		_, _, err = svc.Schedule(ctx, c.ID, &at)
		require.NoError(t, err)
		require.NoError(t, svc.Drain(ctx))
		total, _ := mc.counts()
		require.Zero(t, total, "nothing before the scheduled time")

		e.clock.Set(at)
		require.NoError(t, svc.Drain(ctx))
		got, err := campaign.Get(ctx, db.DB, c.ID)
		require.NoError(t, err)
		require.Equal(t, campaign.StatusSending, got.Status)
		require.Equal(t, 30, got.AudienceCount)
		counts, err := campaign.CountsOf(ctx, db.DB, c.ID)
		require.NoError(t, err)
		tested := counts.Written
		require.Equal(t, 30, counts.Written+counts.Held)
		require.Greater(t, tested, 5)
		require.Greater(t, counts.Held, 5)

		// Variant b gets the opens; after decideAfter it goes to the rest.
		var opened []*outbox.Message
		require.NoError(t, db.NewSelect().Model(&opened).Where("campaign = ? AND variant = ?", c.ID, "b").Scan(ctx))
		require.NotEmpty(t, opened)
		for i, m := range opened {
			// Through the tracking path, which moves the KPI rollups the
			// winner is decided on.
			_, err := tracking.Record(ctx, db.DB, at, mail.Event{ID: "ev" + strconv.Itoa(i), Provider: "mailgun", Kind: mail.EventOpened,
				At: at, MessageID: m.ID}, kpi.Recorder{})
			require.NoError(t, err)
		}
		_, err = svc.Pause(ctx, c.ID)
		require.NoError(t, err)
		e.clock.Set(at.Add(5 * time.Hour))
		require.NoError(t, svc.Drain(ctx))
		counts, err = campaign.CountsOf(ctx, db.DB, c.ID)
		require.NoError(t, err)
		require.Equal(t, tested, counts.Written, "a paused campaign sends nothing")
		got, err = svc.Resume(ctx, c.ID)
		require.NoError(t, err)
		require.Equal(t, campaign.StatusSending, got.Status)
		require.NoError(t, svc.Drain(ctx))
		got, err = campaign.Get(ctx, db.DB, c.ID)
		require.NoError(t, err)
		require.Equal(t, campaign.StatusSent, got.Status)
		require.Equal(t, "b", *got.Winner)
		rest, err := db.NewSelect().Model((*outbox.Message)(nil)).Where("campaign = ? AND variant = ?", c.ID, "b").Count(ctx)
		require.NoError(t, err)
		require.EqualValues(t, len(opened)+counts.Held, rest)
		total, _ = mc.counts()
		require.Equal(t, 30, total)
		_, err = svc.Cancel(ctx, c.ID)
		require.EqualError(t, err, "campaign "+c.ID+" is SENT: cannot cancel it (only [DRAFT SCHEDULED SENDING PAUSED] campaigns can be)")
	})
}

func TestCampaignGraphQL(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *storetest.DB) {
		mc := newMailgunCapture(t)
		e := newEnv(t, db, withMailgun(mc))
		seedSubscribers(t, db.DB, e.clock.Now(), 12, "vip")
		type payload struct {
			Campaign *struct {
				ID, Status    string
				AudienceCount int
			}
			Warnings   []string
			UserErrors []struct {
				Field         []string
				Message, Code string
			}
		}
		var bad struct {
			Refrain struct{ CreateCampaign payload }
		}
		e.do(testBootstrapKey, createCampaignMutation, map[string]any{"in": map[string]any{"name": "x", "template": "nope"}}).decode(t, &bad)
		require.Nil(t, bad.Refrain.CreateCampaign.Campaign)
		require.Equal(t, []string{"input", "template"}, bad.Refrain.CreateCampaign.UserErrors[0].Field)
		require.Equal(t, `template: no template named "nope"`, bad.Refrain.CreateCampaign.UserErrors[0].Message)
		e.do(testBootstrapKey, createCampaignMutation, map[string]any{"in": map[string]any{"name": "x", "template": "welcome",
			"pressure": map[string]any{"minGap": "soon"}}}).decode(t, &bad)
		require.Equal(t, []string{"input", "pressure", "minGap"}, bad.Refrain.CreateCampaign.UserErrors[0].Field)
		require.Equal(t, `"soon" is not a duration (72h, 30m, 7d)`, bad.Refrain.CreateCampaign.UserErrors[0].Message)

		var ok struct {
			Refrain struct{ CreateCampaign payload }
		}
		e.do(testBootstrapKey, createCampaignMutation, map[string]any{"in": map[string]any{"name": "VIP", "template": "welcome",
			"segment": "tag:vip", "pressure": map[string]any{"onCapped": "SKIP", "cap": 5}}}).decode(t, &ok)
		require.Empty(t, ok.Refrain.CreateCampaign.UserErrors)
		id := ok.Refrain.CreateCampaign.Campaign.ID
		require.Equal(t, 12, ok.Refrain.CreateCampaign.Campaign.AudienceCount)

		var paused struct {
			Refrain struct{ PauseCampaign payload }
		}
		e.do(testBootstrapKey, `mutation($id: ID!) { refrain { pauseCampaign(id: $id) { campaign { id } userErrors { field message code } } } }`,
			map[string]any{"id": id}).decode(t, &paused)
		require.Equal(t, "campaign "+id+" is DRAFT: cannot pause it (only [SCHEDULED SENDING] campaigns can be)", paused.Refrain.PauseCampaign.UserErrors[0].Message)

		var sched struct {
			Refrain struct{ ScheduleCampaign payload }
		}
		e.do(testBootstrapKey, scheduleCampaignMutation, map[string]any{"id": id, "at": e.clock.Now().Format(time.RFC3339)}).decode(t, &sched)
		require.Equal(t, "SCHEDULED", sched.Refrain.ScheduleCampaign.Campaign.Status)
		require.NoError(t, e.p.Campaigns().Drain(context.Background()))

		q := `query($id: ID!, $from: DateTime!, $to: DateTime!) { refrain { campaign(id: $id) { status segment audienceCount sentCount skippedCount pendingCount
			pressure { cap onCapped minGap quietHours } stats(from: $from, to: $to) { total { sent delivered } } }
			campaigns(status: SENT, first: 5) { nodes { id } pageInfo { hasNextPage } } } }`
		var got struct {
			Refrain struct {
				Campaign struct {
					Status, Segment                                      string
					AudienceCount, SentCount, SkippedCount, PendingCount int
					Pressure                                             struct {
						Cap                          int
						OnCapped, MinGap, QuietHours string
					}
					Stats struct{ Total struct{ Sent, Delivered int } }
				}
				Campaigns struct{ Nodes []struct{ ID string } }
			}
		}
		day := e.clock.Now().UTC().Truncate(time.Hour)
		e.do(testBootstrapKey, q, map[string]any{"id": id, "from": day.Add(-24 * time.Hour).Format(time.RFC3339),
			"to": day.Add(24 * time.Hour).Format(time.RFC3339)}).decode(t, &got)
		c := got.Refrain.Campaign
		require.Equal(t, 12, c.Stats.Total.Sent, "Campaign.stats counts the campaign's sends")
		require.Zero(t, c.Stats.Total.Delivered)
		require.Equal(t, "SENT", c.Status)
		require.Equal(t, "tag:vip", c.Segment)
		require.Equal(t, []int{12, 12, 0, 0}, []int{c.AudienceCount, c.SentCount, c.SkippedCount, c.PendingCount})
		require.Equal(t, 5, c.Pressure.Cap)
		require.Equal(t, "SKIP", c.Pressure.OnCapped)
		require.Equal(t, "16h", c.Pressure.MinGap)
		require.Equal(t, "21:00-08:00", c.Pressure.QuietHours)
		require.Len(t, got.Refrain.Campaigns.Nodes, 1)
		total, _ := mc.counts()
		require.Equal(t, 12, total)

		// Scheduling warns of the days over the cap and of campaigns
		// reaching the same customers the same day.
		at := e.clock.Now().Add(48 * time.Hour)
		var warnings []string
		for i := range 4 {
			var cr struct {
				Refrain struct{ CreateCampaign payload }
			}
			e.do(testBootstrapKey, createCampaignMutation, map[string]any{"in": map[string]any{"name": fmt.Sprintf("Week %d", i),
				"template": "welcome", "segment": "tag:vip"}}).decode(t, &cr)
			var sc struct {
				Refrain struct{ ScheduleCampaign payload }
			}
			e.do(testBootstrapKey, scheduleCampaignMutation, map[string]any{"id": cr.Refrain.CreateCampaign.Campaign.ID,
				"at": at.Add(time.Duration(i) * time.Hour).Format(time.RFC3339)}).decode(t, &sc)
			warnings = sc.Refrain.ScheduleCampaign.Warnings
		}
		require.Len(t, warnings, 4)
		require.Equal(t, "2026-06-03: 12 customers of the audience over the cap of 3 in 7d", warnings[0])
		require.Regexp(t, `^2026-06-03: campaign cmp_\w+ \(Week 0, priority 50\) reaches 12 of the same customers the same day$`, warnings[1])

		// Only admin keys see campaigns.
		key, _ := e.apiKey("read")
		res := e.do(key, `{ refrain { campaigns { nodes { id } } } }`, nil)
		require.Empty(t, res.Errors)
		tok := e.customerToken("cust-1", time.Hour, testJWTSecret)
		res = e.do(tok, `{ refrain { campaigns { nodes { id } } } }`, nil)
		require.Equal(t, []string{"FORBIDDEN"}, res.codes())
	})
}

// TestCampaignAudienceFromSegment: a campaign's audience is a stored
// segment (by name or id) or a rule written in place, read over the whole
// base when the campaign fixes its audience.
func TestCampaignAudienceFromSegment(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *storetest.DB) {
		ctx := context.Background()
		e := newEnv(t, db, nil)
		pks := seedSubscribers(t, db.DB, e.clock.Now(), 20)
		_, err := db.NewUpdate().Table("customers").Set("orders_count = 3").Where("id IN (?)", bun.List(pks[:8])).Exec(ctx)
		require.NoError(t, err)
		seg, err := segment.Upsert(ctx, db.DB, e.clock.Now(), 0, "repeat-buyers", "orders_count >= 2")
		require.NoError(t, err)
		svc := e.p.Campaigns()
		for spec, want := range map[string]int{
			"repeat-buyers":               8,
			strconv.FormatInt(seg.ID, 10): 8,
			"orders_count == 0":           12,
			"all":                         20,
		} {
			c, err := svc.Create(ctx, campaign.Input{Name: strp(spec), Audience: strp(spec), Template: strp("welcome")})
			require.NoError(t, err, spec)
			n, err := svc.AudienceCount(ctx, db.DB, c.Audience)
			require.NoError(t, err, spec)
			require.Equal(t, want, n, spec)
		}
		_, err = svc.Create(ctx, campaign.Input{Name: strp("x"), Audience: strp("9999"), Template: strp("welcome")})
		require.EqualError(t, err, "segment: segment 9999: segment not found")
	})
}

// firstMessageID is the public id of the message row pk.
func firstMessageID(t *testing.T, db *storetest.DB, pk int64) string {
	t.Helper()
	var id string
	require.NoError(t, db.NewSelect().Model((*outbox.Message)(nil)).Column("public_id").Where("id = ?", pk).Scan(context.Background(), &id))
	return id
}
