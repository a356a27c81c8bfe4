package plugin_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/refrain-dev/refrain/plugin/customer"
	"github.com/refrain-dev/refrain/plugin/pressure"
	"github.com/refrain-dev/refrain/plugin/store/storetest"
)

// decisions lists a customer's pressure decisions, oldest first, as
// "program decision at: reason".
func (s *scenarioEnv) decisions(c *customer.Customer) []string {
	s.t.Helper()
	page, err := pressure.Decisions(context.Background(), s.db.DB, c.PK, 500, "")
	require.NoError(s.t, err)
	var out []string
	for i := len(page.Records) - 1; i >= 0; i-- {
		r := page.Records[i]
		out = append(out, fmt.Sprintf("%s %s %s: %s", r.Program, r.Decision, r.At.UTC().Format("01-02 15:04"), r.Reason))
	}
	return out
}

func TestPressureQuietHoursMoveAScenarioSend(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *storetest.DB) {
		s := newScenarioEnv(t, db, only("welcome"))
		d0 := s.clock.Now() // 09:00 UTC: 05:00 in New York, 11:00 in Paris
		ny, paris := "America/New_York", "Europe/Paris"
		early := s.customer("early@example.com", customer.ConsentSubscribed, d0)
		_, _, err := customer.Upsert(s.ctx, db.DB, d0, customer.Profile{Email: early.Email, TimeZone: &ny})
		require.NoError(t, err)
		awake := s.customer("awake@example.com", customer.ConsentSubscribed, d0)
		_, _, err = customer.Upsert(s.ctx, db.DB, d0, customer.Profile{Email: awake.Email, TimeZone: &paris})
		require.NoError(t, err)
		s.event(early, "newsletter.subscribed", nil)
		s.event(awake, "newsletter.subscribed", nil)
		s.until(d0.Add(day))
		// 08:00 in New York is 12:00 UTC.
		require.Equal(t, []string{
			"awake@example.com welcome D+0 09:00",
			"early@example.com welcome D+0 12:00",
		}, s.sent(d0))
		require.Equal(t, []string{
			"welcome defer 06-01 09:00: quiet hours 21:00-08:00 in America/New_York",
			"welcome send 06-01 12:00: within the policy",
		}, s.decisions(early))
		require.Equal(t, []string{"welcome send 06-01 09:00: within the policy"}, s.decisions(awake))
	})
}
