package plugin_test

import (
	"context"
	"fmt"
	"net/url"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/refrain-dev/refrain/plugin"
	"github.com/refrain-dev/refrain/plugin/commerce"
	"github.com/refrain-dev/refrain/plugin/customer"
	"github.com/refrain-dev/refrain/plugin/mail/link"
	"github.com/refrain-dev/refrain/plugin/mail/outbox"
	"github.com/refrain-dev/refrain/plugin/segment"
	"github.com/refrain-dev/refrain/plugin/store/storetest"
	"github.com/refrain-dev/refrain/scenarios/engine"
)

// scenarioEnv runs the real plugin (mail outbox, templates, erasure) with
// the scenario engine driven by hand on a virtual clock.
type scenarioEnv struct {
	*env
	eng *engine.Engine
	ctx context.Context
}

func newScenarioEnv(t *testing.T, db *storetest.DB, mutate func(*plugin.Config)) *scenarioEnv {
	t.Helper()
	e := newEnv(t, db, func(c *plugin.Config) {
		c.PublicURL = "https://refrain.store.example"
		c.StoreURL = "https://store.example"
		c.StoreAnniversary = "06-15"
		if mutate != nil {
			mutate(c)
		}
	})
	s := &scenarioEnv{env: e, eng: e.p.Scenarios(), ctx: context.Background()}
	require.NotNil(t, s.eng)
	// Start the event cursor before the test's events.
	require.NoError(t, s.eng.Drain(s.ctx))
	return s
}

func (s *scenarioEnv) customer(email string, consent customer.ConsentState, at time.Time) *customer.Customer {
	s.t.Helper()
	c, _, err := customer.Upsert(s.ctx, s.db.DB, at, customer.Profile{Email: &email, CreatedAt: &at,
		Consent: &customer.Consent{State: consent, At: at, Source: "test", Method: "form"}})
	require.NoError(s.t, err)
	return c
}

func (s *scenarioEnv) event(c *customer.Customer, typ string, props map[string]any) {
	s.t.Helper()
	now := s.clock.Now()
	_, _, err := customer.AppendEvent(s.ctx, s.db.DB, now, c.PK, customer.EventInput{Type: typ, OccurredAt: now, Source: "shopify", Properties: props})
	require.NoError(s.t, err)
	require.NoError(s.t, s.eng.Drain(s.ctx))
}

// member makes c a current member of the stored segment name, as a
// segment sweep would.
func (s *scenarioEnv) member(c *customer.Customer, name string) {
	s.t.Helper()
	seg, err := segment.GetByName(s.ctx, s.db.DB, name)
	require.NoError(s.t, err)
	_, err = s.db.NewInsert().Model(&segment.Member{SegmentID: seg.ID, CustomerPK: c.PK, EnteredAt: s.clock.Now()}).Exec(s.ctx)
	require.NoError(s.t, err)
}

// leave takes c out of the stored segment name.
func (s *scenarioEnv) leave(c *customer.Customer, name string) {
	s.t.Helper()
	seg, err := segment.GetByName(s.ctx, s.db.DB, name)
	require.NoError(s.t, err)
	_, err = s.db.NewDelete().Model((*segment.Member)(nil)).Where("segment_id = ? AND customer_id = ?", seg.ID, c.PK).Exec(s.ctx)
	require.NoError(s.t, err)
}

// until drives the virtual clock to t, stopping at every due step.
func (s *scenarioEnv) until(t time.Time) {
	s.t.Helper()
	require.NoError(s.t, s.eng.RunUntil(s.ctx, s.clock.Set, t))
}

// sent lists the messages as "recipient template D+n hh:mm" relative to day0.
func (s *scenarioEnv) sent(day0 time.Time) []string {
	s.t.Helper()
	var ms []*outbox.Message
	require.NoError(s.t, s.db.NewSelect().Model(&ms).Order("created_at", "id").Scan(s.ctx))
	var out []string
	for _, m := range ms {
		// Calendar days after day0, in UTC.
		d := m.CreatedAt.UTC().Truncate(day).Sub(day0.UTC().Truncate(day))
		out = append(out, fmt.Sprintf("%s %s D+%d %s", m.Recipient, m.Template, int(d/day), m.CreatedAt.UTC().Format("15:04")))
	}
	sort.Strings(out)
	return out
}

func (s *scenarioEnv) enrollments(c *customer.Customer) map[string]*engine.Enrollment {
	s.t.Helper()
	es, err := engine.CustomerEnrollments(s.ctx, s.db.DB, c.PK)
	require.NoError(s.t, err)
	out := map[string]*engine.Enrollment{}
	for _, e := range es {
		out[e.ScenarioID] = e
	}
	return out
}

// only pauses every library program but ids.
func only(ids ...string) func(*plugin.Config) {
	return func(c *plugin.Config) { c.ScenariosLibrary = strings.Join(ids, ",") }
}

func reload(t *testing.T, s *scenarioEnv, c *customer.Customer) *customer.Customer {
	t.Helper()
	got, err := customer.Get(s.ctx, s.db.DB, c.PK)
	require.NoError(t, err)
	return got
}

const day = 24 * time.Hour

func TestScenarioWelcome(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *storetest.DB) {
		s := newScenarioEnv(t, db, only("welcome"))
		d0 := s.clock.Now()
		never := s.customer("never@example.com", customer.ConsentSubscribed, d0)
		answers := s.customer("answers@example.com", customer.ConsentSubscribed, d0)
		unsubscribed := s.customer("gone@example.com", customer.ConsentUnsubscribed, d0)
		for _, c := range []*customer.Customer{never, answers, unsubscribed} {
			s.event(c, "newsletter.subscribed", nil)
		}
		// A second trigger (an account created later) does not enter again.
		s.event(never, "customer.created", nil)
		s.until(d0.Add(4 * day))
		s.event(answers, "survey.answered", map[string]any{"survey": "welcome"})
		s.until(d0.Add(30 * day))
		require.Equal(t, []string{
			"answers@example.com survey-thanks-code D+4 09:00",
			"answers@example.com welcome D+0 09:00",
			"answers@example.com welcome-discount-survey D+3 09:00",
			"never@example.com welcome D+0 09:00",
			"never@example.com welcome-discount-survey D+3 09:00",
			"never@example.com welcome-survey-reminder D+9 09:00",
		}, s.sent(d0))
		require.Equal(t, engine.StateCompleted, s.enrollments(never)["welcome"].State)
		en := s.enrollments(answers)["welcome"]
		require.Equal(t, engine.StateExited, en.State)
		require.Equal(t, "survey answered", *en.ExitReason)
		require.Empty(t, s.enrollments(unsubscribed), "the audience requires consent")

		// The survey link carries the customer, the discount the step's value.
		var m outbox.Message
		require.NoError(t, db.NewSelect().Model(&m).Where("recipient = ? AND template = ?", "never@example.com", "welcome-survey-reminder").Scan(s.ctx))
		// The survey link carries the customer and a signed survey token
		// that submitSurvey takes without a sign-in.
		u, err := url.Parse(fmt.Sprint(m.Values["survey_url"]))
		require.NoError(t, err)
		require.Equal(t, "https://store.example/survey", u.Scheme+"://"+u.Host+u.Path)
		require.Equal(t, never.PublicID, u.Query().Get("customer"))
		claims, err := link.Parse(u.Query().Get("token"))
		require.NoError(t, err)
		require.Equal(t, link.Survey, claims.Purpose)
		require.Equal(t, never.PublicID, claims.CustomerID)
		require.Equal(t, "welcome", *m.Program)
		require.Equal(t, "survey-reminder", *m.Step)
	})
}

// TestScenarioWelcomeSurveyThanks: the extra code the welcome mails
// promise for answering the survey is sent, whether the answer comes
// before the reminder or after it.
func TestScenarioWelcomeSurveyThanks(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *storetest.DB) {
		s := newScenarioEnv(t, db, only("welcome"))
		d0 := s.clock.Now()
		early := s.customer("early@example.com", customer.ConsentSubscribed, d0)
		late := s.customer("late@example.com", customer.ConsentSubscribed, d0)
		s.event(early, "newsletter.subscribed", nil)
		s.event(late, "newsletter.subscribed", nil)
		s.until(d0.Add(5 * day))
		s.event(early, "survey.answered", map[string]any{"survey": "welcome"})
		s.until(d0.Add(12 * day))
		s.event(late, "survey.answered", map[string]any{"survey": "welcome"})
		s.until(d0.Add(40 * day))
		var got []string
		for _, line := range s.sent(d0) {
			if strings.Contains(line, "survey-thanks-code") {
				got = append(got, line)
			}
		}
		require.Equal(t, []string{
			"early@example.com survey-thanks-code D+5 09:00",
			"late@example.com survey-thanks-code D+12 09:00",
		}, got)
		var m outbox.Message
		require.NoError(t, db.NewSelect().Model(&m).Where("recipient = ? AND template = ?", "late@example.com", "survey-thanks-code").Scan(s.ctx))
		require.Contains(t, m.Text, "THANKS15")
		require.Equal(t, "survey answered", *s.enrollments(late)["welcome"].ExitReason)
	})
}

func TestScenarioWelcomeReminder(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *storetest.DB) {
		s := newScenarioEnv(t, db, only("welcome", "welcome-reminder"))
		d0 := s.clock.Now()
		opener := s.customer("opener@example.com", customer.ConsentSubscribed, d0)
		silent := s.customer("silent@example.com", customer.ConsentSubscribed, d0)
		s.event(opener, "newsletter.subscribed", nil)
		s.event(silent, "newsletter.subscribed", nil)
		s.until(d0.Add(20 * time.Hour))
		// A machine open says nothing; a real one stops the reminder.
		s.event(silent, "email.opened", map[string]any{"program": "welcome", "machine": true})
		s.event(opener, "email.opened", map[string]any{"program": "welcome", "machine": false})
		s.until(d0.Add(3*day - time.Hour))
		require.Equal(t, []string{
			"opener@example.com welcome D+0 09:00",
			"silent@example.com welcome D+0 09:00",
			"silent@example.com welcome-resend D+2 09:00",
		}, s.sent(d0))
		require.Equal(t, "welcome opened", *s.enrollments(opener)["welcome-reminder"].ExitReason)
	})
}

func TestScenarioSunset(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *storetest.DB) {
		s := newScenarioEnv(t, db, only("sunset"))
		d0 := s.clock.Now()
		opens := s.customer("opens@example.com", customer.ConsentSubscribed, d0.Add(-400*day))
		clicks := s.customer("clicks@example.com", customer.ConsentSubscribed, d0.Add(-400*day))
		silent := s.customer("silent@example.com", customer.ConsentSubscribed, d0.Add(-400*day))
		other := s.customer("other-segment@example.com", customer.ConsentSubscribed, d0.Add(-400*day))
		for _, c := range []*customer.Customer{opens, clicks, silent} {
			s.member(c, "sunset")
			s.event(c, "segment.entered", map[string]any{"segment_id": "sunset", "segment_name": "Sunset"})
		}
		s.event(other, "segment.entered", map[string]any{"segment_id": "vip"})
		s.until(d0.Add(5 * day))
		s.event(opens, "email.opened", map[string]any{"program": "sunset", "machine": false})
		s.until(d0.Add(16 * day))
		// Clicked the last call (after the open window of the survey).
		s.event(clicks, "email.clicked", map[string]any{"program": "sunset", "url": "https://store.example"})
		s.until(d0.Add(40 * day))
		require.Equal(t, []string{
			"clicks@example.com sunset-last-call D+15 09:00",
			"clicks@example.com sunset-survey D+0 09:00",
			// The silent one's two mails, their address erased on D+22.
			"erased sunset-last-call D+15 09:00",
			"erased sunset-survey D+0 09:00",
			"opens@example.com sunset-survey D+0 09:00",
		}, s.sent(d0))
		// Only the silent one is erased, on D+22; the others keep their profile.
		gone := reload(t, s, silent)
		require.Nil(t, gone.Email)
		require.Equal(t, customer.ConsentUnsubscribed, gone.ConsentState)
		require.Equal(t, engine.StateCompleted, s.enrollments(silent)["sunset"].State)
		require.Equal(t, d0.Add(22*day), s.enrollments(silent)["sunset"].FinishedAt.UTC())
		// The full erasure (privacy.Erase), not only the profile: the mail
		// sent to the address no longer names it.
		left, err := db.NewSelect().Table("messages").Where("recipient = ?", "silent@example.com").Count(context.Background())
		require.NoError(t, err)
		require.Zero(t, left, "messages still carry the erased address")
		kept, err := db.NewSelect().Table("messages").Where("customer_id IS NULL OR customer_id = ?", silent.PK).Count(context.Background())
		require.NoError(t, err)
		require.EqualValues(t, 2, kept, "the erased customer's messages are kept, anonymous, for the counts")
		require.NotNil(t, reload(t, s, clicks).Email)
		require.Equal(t, "email.clicked", *s.enrollments(clicks)["sunset"].ExitReason)
		require.NotNil(t, reload(t, s, opens).Email)
		require.Equal(t, "opened the survey", *s.enrollments(opens)["sunset"].ExitReason)
		require.Empty(t, s.enrollments(other))
	})
}

// TestScenarioSunsetKeepLink: the last call's "Keep me subscribed" link
// keeps the customer: following it (a page, then a POST, so that a link
// scanner does not act) takes them out of sunset, and they are not erased.
func TestScenarioSunsetKeepLink(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *storetest.DB) {
		s := newScenarioEnv(t, db, only("sunset"))
		d0 := s.clock.Now()
		keeper := s.customer("keeper@example.com", customer.ConsentSubscribed, d0.Add(-400*day))
		s.member(keeper, "sunset")
		s.event(keeper, "segment.entered", map[string]any{"segment_id": "sunset", "segment_name": "Sunset"})
		s.until(d0.Add(16 * day))
		var m outbox.Message
		require.NoError(t, db.NewSelect().Model(&m).Where("template = ?", "sunset-last-call").Scan(s.ctx))
		keep := fmt.Sprint(m.Values["keep_url"])
		require.True(t, strings.HasPrefix(keep, "https://refrain.store.example/u/k."), keep)
		require.Contains(t, m.HTML, `href="`+keep+`"`)
		require.Contains(t, m.Text, keep)
		path := strings.TrimPrefix(keep, "https://refrain.store.example")

		get := s.httpDo("GET", path, "", "", nil)
		require.Equal(t, 200, get.Code)
		require.Contains(t, get.Body.String(), "Keep me subscribed")
		require.NoError(t, s.eng.Drain(s.ctx))
		require.Equal(t, engine.StateActive, s.enrollments(keeper)["sunset"].State, "showing the page keeps nobody")

		post := s.httpDo("POST", path, "application/x-www-form-urlencoded", "action=keep", nil)
		require.Equal(t, 200, post.Code, post.Body.String())
		require.NoError(t, s.eng.Drain(s.ctx))
		s.until(d0.Add(40 * day))
		en := s.enrollments(keeper)["sunset"]
		require.Equal(t, engine.StateExited, en.State)
		require.Equal(t, "subscription.kept", *en.ExitReason)
		kept := reload(t, s, keeper)
		require.NotNil(t, kept.Email, "the customer who asked to stay is not erased")
		require.Equal(t, customer.ConsentSubscribed, kept.ConsentState)
	})
}

func TestScenarioCartAbandonment(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *storetest.DB) {
		s := newScenarioEnv(t, db, only("cart-abandonment"))
		d0 := s.clock.Now()
		buyer := s.customer("buyer@example.com", customer.ConsentSubscribed, d0)
		leaver := s.customer("leaver@example.com", customer.ConsentSubscribed, d0)
		cart := func(token string) map[string]any {
			return map[string]any{"cart_token": token, "recovery_url": "https://store.example/cart/" + token, "value": 4200, "currency": "EUR"}
		}
		s.event(buyer, "cart.abandoned", cart("c-buyer"))
		s.event(leaver, "cart.abandoned", cart("c-leaver"))
		s.until(d0.Add(30 * time.Hour))
		// An order for another cart does not stop it; the order for this cart does.
		s.event(buyer, "cart.converted", map[string]any{"cart_token": "c-other", "order_id": "1"})
		s.until(d0.Add(40 * time.Hour))
		s.event(buyer, "order.created", map[string]any{"order_id": "1001", "cart_token": "c-buyer"})
		s.event(buyer, "cart.converted", map[string]any{"cart_token": "c-buyer", "order_id": "1001"})
		s.until(d0.Add(10 * day))
		require.Equal(t, []string{
			"buyer@example.com cart-reminder-1h D+0 09:00",
			"buyer@example.com cart-reminder-24h D+1 08:00",
			"leaver@example.com cart-reminder-1h D+0 09:00",
			"leaver@example.com cart-reminder-24h D+1 08:00",
			"leaver@example.com cart-reminder-72h D+3 08:00",
		}, s.sent(d0))
		en := s.enrollments(buyer)["cart-abandonment"]
		require.Equal(t, engine.StateExited, en.State)
		require.Equal(t, "cart.converted", *en.ExitReason)
		require.NotNil(t, en.GoalAt)
		require.Nil(t, s.enrollments(leaver)["cart-abandonment"].GoalAt)
		var m outbox.Message
		require.NoError(t, db.NewSelect().Model(&m).Where("recipient = ? AND template = ?", "leaver@example.com", "cart-reminder-72h").Scan(s.ctx))
		require.Contains(t, m.Text, "https://store.example/cart/c-leaver")
		require.Contains(t, m.Text, "COMEBACK10")
	})
}

func TestScenarioNewCustomerOffer(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *storetest.DB) {
		s := newScenarioEnv(t, db, only("new-customer-offer"))
		d0 := s.clock.Now()
		first := s.customer("first@example.com", customer.ConsentSubscribed, d0)
		regular := s.customer("regular@example.com", customer.ConsentSubscribed, d0)
		_, err := db.NewUpdate().Model((*customer.Customer)(nil)).Set("orders_count = 1").Where("id = ?", first.PK).Exec(s.ctx)
		require.NoError(t, err)
		_, err = db.NewUpdate().Model((*customer.Customer)(nil)).Set("orders_count = 5").Where("id = ?", regular.PK).Exec(s.ctx)
		require.NoError(t, err)
		s.event(first, "order.created", map[string]any{"order_id": "1"})
		s.event(regular, "order.created", map[string]any{"order_id": "2"})
		s.until(d0.Add(10 * day))
		s.event(first, "order.created", map[string]any{"order_id": "3"})
		s.until(d0.Add(20 * day))
		require.Equal(t, []string{"first@example.com new-customer-offer D+2 09:00"}, s.sent(d0))
		en := s.enrollments(first)["new-customer-offer"]
		require.Equal(t, d0.Add(10*day), en.GoalAt.UTC(), "the second order is the goal")
		require.Empty(t, s.enrollments(regular))
	})
}

// TestScenarioOrderMailCarriesOrder: mail triggered by an order shows that
// order (its number and lines), not an empty one.
func TestScenarioOrderMailCarriesOrder(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *storetest.DB) {
		s := newScenarioEnv(t, db, only("new-customer-offer"))
		d0 := s.clock.Now()
		first := s.customer("first@example.com", customer.ConsentSubscribed, d0)
		_, err := db.NewUpdate().Model((*customer.Customer)(nil)).Set("orders_count = 1").Where("id = ?", first.PK).Exec(s.ctx)
		require.NoError(t, err)
		number, eur := "#1042", "EUR"
		_, err = db.NewInsert().Model(&commerce.Order{Source: "shopify", ExternalID: "820982911946154508", CustomerPK: &first.PK,
			Number: &number, Status: "paid", TotalMinor: 5400, Currency: &eur, PlacedAt: d0, CreatedAt: d0, UpdatedAt: d0,
			Items: []commerce.Item{{Title: "The Green Cookbook", Quantity: 2, PriceMinor: 2700}}}).Exec(s.ctx)
		require.NoError(t, err)
		s.event(first, "order.created", map[string]any{"order_id": "820982911946154508"})
		s.until(d0.Add(3 * day))
		var m outbox.Message
		require.NoError(t, db.NewSelect().Model(&m).Where("template = ?", "new-customer-offer").Scan(s.ctx))
		for _, body := range []string{m.HTML, m.Text} {
			require.Contains(t, body, "#1042")
			require.Contains(t, body, "2 × The Green Cookbook, €54.00")
		}
	})
}

func TestScenarioAnniversaries(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *storetest.DB) {
		s := newScenarioEnv(t, db, only("customer-anniversary", "store-anniversary"))
		d0 := s.clock.Now() // 2026-06-01 09:00 UTC
		loyal := s.customer("loyal@example.com", customer.ConsentSubscribed, d0.Add(-800*day))
		paris := s.customer("paris@example.com", customer.ConsentSubscribed, d0.Add(-800*day))
		_ = s.customer("none@example.com", customer.ConsentSubscribed, d0.Add(-800*day))
		firstOrder := time.Date(2024, 6, 3, 15, 0, 0, 0, time.UTC)
		for _, c := range []*customer.Customer{loyal, paris} {
			_, err := db.NewUpdate().Model((*customer.Customer)(nil)).Set("orders_count = 2").Set("first_order_at = ?", firstOrder).Where("id = ?", c.PK).Exec(s.ctx)
			require.NoError(t, err)
		}
		_, err := db.NewUpdate().Model((*customer.Customer)(nil)).Set("time_zone = ?", "Europe/Paris").Where("id = ?", paris.PK).Exec(s.ctx)
		require.NoError(t, err)
		// Day by day, so the daily sweep sees each date.
		for d := 0; d < 20; d++ {
			s.until(time.Date(2026, 6, 2+d, 0, 30, 0, 0, time.UTC))
		}
		require.Equal(t, []string{
			"loyal@example.com customer-anniversary D+2 10:00",
			"loyal@example.com store-anniversary D+14 09:00",
			"none@example.com store-anniversary D+14 09:00",
			"paris@example.com customer-anniversary D+2 08:00",
			"paris@example.com store-anniversary D+14 07:00",
		}, s.sent(d0))
	})
}

func TestScenarioContest(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *storetest.DB) {
		s := newScenarioEnv(t, db, only("contest"))
		d0 := s.clock.Now()
		player := s.customer("player@example.com", customer.ConsentSubscribed, d0)
		idle := s.customer("idle@example.com", customer.ConsentSubscribed, d0)
		out := s.customer("out@example.com", customer.ConsentUnsubscribed, d0)
		for _, c := range []*customer.Customer{player, idle} {
			_, err := s.eng.Enroll(s.ctx, db.DB, "contest", c.PK)
			require.NoError(t, err)
		}
		_, err := s.eng.Enroll(s.ctx, db.DB, "contest", out.PK)
		require.ErrorIs(t, err, engine.ErrNotEligible)
		s.until(d0.Add(2 * day))
		s.event(player, "contest.entered", nil)
		s.until(d0.Add(12 * day))
		require.Equal(t, []string{
			"idle@example.com contest-announce D+0 09:00",
			"idle@example.com contest-reminder D+8 09:00",
			"player@example.com contest-announce D+0 09:00",
		}, s.sent(d0))
		require.Equal(t, "contest.entered", *s.enrollments(player)["contest"].ExitReason)
		require.NotNil(t, s.enrollments(player)["contest"].GoalAt)
	})
}

func TestScenarioRegisteredNotReturned(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *storetest.DB) {
		s := newScenarioEnv(t, db, only("registered-not-returned"))
		d0 := s.clock.Now()
		idle := s.customer("idle@example.com", customer.ConsentSubscribed, d0)
		buyer := s.customer("buyer@example.com", customer.ConsentSubscribed, d0)
		visitor := s.customer("visitor@example.com", customer.ConsentSubscribed, d0)
		for _, c := range []*customer.Customer{idle, buyer, visitor} {
			s.event(c, "customer.created", nil)
		}
		s.until(d0.Add(10 * day))
		s.event(buyer, "order.created", map[string]any{"order_id": "7"})
		s.event(visitor, "page.viewed", map[string]any{"path": "/"})
		s.until(d0.Add(40 * day))
		require.Equal(t, []string{"idle@example.com registered-not-returned D+30 09:00"}, s.sent(d0))
		var m outbox.Message
		require.NoError(t, db.NewSelect().Model(&m).Where("recipient = ?", "idle@example.com").Scan(s.ctx))
		require.Equal(t, "https://store.example/account/recover", m.Values["password_reset_url"])
		require.Equal(t, "order.created", *s.enrollments(buyer)["registered-not-returned"].ExitReason)
		require.Equal(t, "page.viewed", *s.enrollments(visitor)["registered-not-returned"].ExitReason)
	})
}

func TestScenarioWinBack(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *storetest.DB) {
		s := newScenarioEnv(t, db, only("win-back"))
		d0 := s.clock.Now()
		var cs []*customer.Customer
		for i := 0; i < 40; i++ {
			c := s.customer(fmt.Sprintf("c%02d@example.com", i), customer.ConsentSubscribed, d0)
			cs = append(cs, c)
			s.event(c, "lifecycle.stage_changed", map[string]any{"from": "ACTIVE", "to": "AT_RISK"})
		}
		lapsed := s.customer("lapsed@example.com", customer.ConsentSubscribed, d0)
		s.event(lapsed, "lifecycle.stage_changed", map[string]any{"from": "AT_RISK", "to": "LAPSED"})
		s.until(d0.Add(day))
		sent := s.sent(d0)
		held := 0
		for _, c := range cs {
			en := s.enrollments(c)["win-back"]
			require.NotNil(t, en)
			if en.Holdout {
				held++
				require.Equal(t, engine.StateHoldout, en.State)
				require.NotContains(t, sent, *c.Email+" win-back D+0 09:00")
			} else {
				require.Contains(t, sent, *c.Email+" win-back D+0 09:00")
			}
		}
		require.Equal(t, 40-held, len(sent))
		require.Greater(t, held, 0, "about one in ten is held out")
		require.Less(t, held, 12)
		require.Empty(t, s.enrollments(lapsed))
	})
}

func TestScenarioGraphQL(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *storetest.DB) {
		s := newScenarioEnv(t, db, only("contest"))
		admin, _ := s.apiKey("read,write")
		reader, _ := s.apiKey("read")
		ann := s.customer("ann@example.com", customer.ConsentSubscribed, s.clock.Now())

		// Problems name the line and step.
		bad := "id: promo\ntitle: Promo\nobjective: maintain\ntrigger: manual\nsteps:\n  - id: mail\n    send: nope\n  - wait: 0s\n"
		res := s.do(admin, `mutation($d: String!) { refrain { upsertScenario(definition: $d) { scenario { id } userErrors { message line step code } } } }`, map[string]any{"d": bad})
		var up struct {
			Refrain struct {
				UpsertScenario struct {
					Scenario   *struct{ ID string }
					UserErrors []struct {
						Message, Code string
						Line          int
						Step          string
					}
				}
			}
		}
		res.decode(t, &up)
		require.Nil(t, up.Refrain.UpsertScenario.Scenario)
		require.Len(t, up.Refrain.UpsertScenario.UserErrors, 2)
		require.Equal(t, 6, up.Refrain.UpsertScenario.UserErrors[0].Line)
		require.Equal(t, "mail", up.Refrain.UpsertScenario.UserErrors[0].Step)
		require.Equal(t, "INVALID", up.Refrain.UpsertScenario.UserErrors[0].Code)
		require.Equal(t, "s2", up.Refrain.UpsertScenario.UserErrors[1].Step)

		good := "id: promo\ntitle: Promo\nobjective: maintain\ntrigger: manual\nsteps:\n  - id: mail\n    send: welcome\n  - wait: 2d\n  - id: again\n    send: welcome-resend\n"
		res = s.do(reader, `mutation($d: String!) { refrain { upsertScenario(definition: $d) { scenario { id } } } }`, map[string]any{"d": good})
		require.Equal(t, []string{"FORBIDDEN"}, res.codes())
		res = s.do(admin, `mutation($d: String!) { refrain { upsertScenario(definition: $d) { scenario { id version status } userErrors { message } } } }`, map[string]any{"d": good})
		require.Contains(t, string(res.Data), `"scenario":{"id":"promo","status":"ACTIVE","version":1},"userErrors":[]`)

		res = s.do(admin, `mutation($c: ID!) { refrain { enrollCustomer(scenarioId: "promo", customerId: $c) { enrollment { id scenario step state } userErrors { code } } } }`, map[string]any{"c": ann.PublicID})
		require.Contains(t, string(res.Data), `"scenario":"promo","state":"ACTIVE","step":"mail"`)
		require.NoError(t, s.eng.Drain(s.ctx))

		// A new version: the running enrollment stays on version 1.
		res = s.do(admin, `mutation($d: String!) { refrain { upsertScenario(definition: $d) { scenario { version steps { id kind } } } } }`,
			map[string]any{"d": strings.Replace(good, "wait: 2d", "wait: 5d", 1)})
		require.Contains(t, string(res.Data), `"steps":[{"id":"mail","kind":"send"},{"id":"s2","kind":"wait"},{"id":"again","kind":"send"}],"version":2`)
		s.until(s.clock.Now().Add(3 * day))
		require.Equal(t, engine.StateCompleted, s.enrollments(ann)["promo"].State)

		// The customer reads their own enrollments.
		annToken := s.customerToken(ann.PublicID, time.Hour, testJWTSecret)
		res = s.do(annToken, `{ refrain { me { enrollments { scenario step state nextRunAt } } } }`, nil)
		require.Empty(t, res.Errors)
		require.Contains(t, string(res.Data), `{"nextRunAt":null,"scenario":"promo","state":"COMPLETED","step":"again"}`)

		res = s.do(admin, `{ refrain { scenario(id: "promo") { definition counts { completed active } enrollments(state: COMPLETED, first: 5) { nodes { customerId } pageInfo { hasNextPage } } } } }`, nil)
		require.Contains(t, string(res.Data), `"counts":{"active":0,"completed":1}`)
		require.Contains(t, string(res.Data), `"nodes":[{"customerId":"`+ann.PublicID+`"}]`)
		require.Contains(t, string(res.Data), `wait: 5d`)

		// Manual enrollment, then an admin exits it; pausing and archiving.
		res = s.do(admin, `mutation($c: ID!) { refrain { enrollCustomer(scenarioId: "contest", customerId: $c) { enrollment { id } } } }`, map[string]any{"c": ann.PublicID})
		var en struct {
			Refrain struct {
				EnrollCustomer struct{ Enrollment struct{ ID string } }
			}
		}
		res.decode(t, &en)
		res = s.do(admin, `mutation($id: ID!) { refrain { exitEnrollment(id: $id) { enrollment { state exitReason } userErrors { code } } } }`, map[string]any{"id": en.Refrain.EnrollCustomer.Enrollment.ID})
		require.Contains(t, string(res.Data), `"exitReason":"exited by an admin","state":"EXITED"`)
		res = s.do(admin, `mutation { refrain { setScenarioStatus(id: "nope", status: PAUSED) { userErrors { code } } } }`, nil)
		require.Contains(t, string(res.Data), `"code":"NOT_FOUND"`)
		res = s.do(admin, `mutation { refrain { setScenarioStatus(id: "promo", status: ARCHIVED) { scenario { status } } } }`, nil)
		require.Contains(t, string(res.Data), `"status":"ARCHIVED"`)

		res = s.do(reader, `query($d: String!) { refrain { simulateScenario(definition: $d, customers: 100, days: 5) { report { total { entries sends } steps { id sends } } userErrors { message } } } }`, map[string]any{"d": good})
		require.Empty(t, res.Errors)
		require.Contains(t, string(res.Data), `"userErrors":[]`)
		// The simulator reads rules as the service does: segment rules,
		// event counts included.
		counted := "id: quiet\ntitle: Quiet ones\nobjective: reactivate\ntrigger: manual\n" +
			"audience: opens(days(90)) == 0 && events(\"order.created\", days(180)) == 0\nsteps:\n  - id: mail\n    send: welcome\n"
		res = s.do(reader, `query($d: String!) { refrain { simulateScenario(definition: $d, customers: 50, days: 2) { report { total { entries } } userErrors { message } } } }`, map[string]any{"d": counted})
		require.Empty(t, res.Errors)
		require.Contains(t, string(res.Data), `"userErrors":[]`, string(res.Data))
		res = s.do(admin, `{ refrain { scenarios { id status origin } } }`, nil)
		require.Contains(t, string(res.Data), `{"id":"promo","origin":"api","status":"ARCHIVED"}`)
		// Disabled library programs are not installed.
		require.NotContains(t, string(res.Data), `"id":"welcome"`)
	})
}

// TestScenarioStoreAnniversaryUnset: with REFRAIN_STORE_ANNIVERSARY empty
// the store-anniversary program never fires (it used to fire every day).
func TestScenarioStoreAnniversaryUnset(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *storetest.DB) {
		s := newScenarioEnv(t, db, func(c *plugin.Config) {
			c.ScenariosLibrary = "store-anniversary"
			c.StoreAnniversary = ""
		})
		d0 := s.clock.Now()
		_ = s.customer("any@example.com", customer.ConsentSubscribed, d0.Add(-800*day))
		for d := 0; d < 3; d++ {
			s.until(time.Date(2026, 6, 2+d, 0, 30, 0, 0, time.UTC))
		}
		require.Empty(t, s.sent(d0))
	})
}

// TestScenarioSunsetImportedBase: the library as it ships (all) leaves
// sunset paused; enabled, it does not enrol a base imported today even
// when the base is two years old and has no open on record, and it
// enrols a customer observed for its 90 days.
func TestScenarioSunsetImportedBase(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *storetest.DB) {
		shipped := newScenarioEnv(t, db, func(c *plugin.Config) { c.ScenariosLibrary = "all" })
		row, err := engine.GetScenario(shipped.ctx, db.DB, "sunset")
		require.NoError(t, err)
		require.Equal(t, engine.StatusPaused, row.Status, "a program that deletes ships paused")
		row, err = engine.GetScenario(shipped.ctx, db.DB, "welcome")
		require.NoError(t, err)
		require.Equal(t, engine.StatusActive, row.Status)

		// A person enables it.
		_, err = shipped.eng.SetStatus(shipped.ctx, db.DB, "sunset", engine.StatusActive)
		require.NoError(t, err)
		s := shipped
		d0 := s.clock.Now()
		twoYears := d0.Add(-730 * day)
		email := "imported@example.com"
		// Imported today: the store says they signed up two years ago.
		imported, _, err := customer.Upsert(s.ctx, db.DB, d0, customer.Profile{Email: &email, CreatedAt: &twoYears,
			Consent: &customer.Consent{State: customer.ConsentSubscribed, At: twoYears, Source: "import", Method: "csv"}})
		require.NoError(t, err)
		require.Equal(t, d0.UTC(), imported.ObservedSince.UTC())
		watched := s.customer("watched@example.com", customer.ConsentSubscribed, d0.Add(-400*day))
		for _, c := range []*customer.Customer{imported, watched} {
			s.member(c, "sunset")
			s.event(c, "segment.entered", map[string]any{"segment_id": "sunset"})
		}
		s.until(d0.Add(40 * day))
		require.Empty(t, s.enrollments(imported), "no evidence of inactivity yet")
		require.NotNil(t, reload(t, s, imported).Email)
		require.Equal(t, engine.StateCompleted, s.enrollments(watched)["sunset"].State)
		require.Nil(t, reload(t, s, watched).Email)
	})
}

// TestScenarioSunsetExitRacesEntry: a customer who subscribed and ordered
// within a second left the segment before the enrollment was written; the
// exit wins, and a member who leaves later is taken out before the next step.
func TestScenarioSunsetExitRacesEntry(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *storetest.DB) {
		s := newScenarioEnv(t, db, only("sunset"))
		d0 := s.clock.Now()
		raced := s.customer("raced@example.com", customer.ConsentSubscribed, d0.Add(-400*day))
		later := s.customer("later@example.com", customer.ConsentSubscribed, d0.Add(-400*day))
		s.member(later, "sunset")
		s.event(later, "segment.entered", map[string]any{"segment_id": "sunset"})
		// raced entered and left before the engine read the entry.
		for _, typ := range []string{"segment.entered", "segment.exited"} {
			_, _, err := customer.AppendEvent(s.ctx, db.DB, d0, raced.PK, customer.EventInput{Type: typ, OccurredAt: d0,
				Source: "segment", Properties: map[string]any{"segment_id": "sunset"}})
			require.NoError(t, err)
		}
		require.NoError(t, s.eng.Drain(s.ctx))
		s.until(d0.Add(2 * day))
		s.leave(later, "sunset")
		s.until(d0.Add(40 * day))
		require.Empty(t, s.enrollments(raced))
		en := s.enrollments(later)["sunset"]
		require.Equal(t, engine.StateExited, en.State)
		require.Equal(t, "left segment sunset", *en.ExitReason)
		require.Equal(t, []string{"later@example.com sunset-survey D+0 09:00"}, s.sent(d0))
		require.NotNil(t, reload(t, s, later).Email)
	})
}
