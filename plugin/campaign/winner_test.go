package campaign_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/uptrace/bun"

	"github.com/refrain-dev/refrain/plugin/campaign"
	"github.com/refrain-dev/refrain/plugin/kpi"
	"github.com/refrain-dev/refrain/plugin/mail"
	"github.com/refrain-dev/refrain/plugin/mail/outbox"
	"github.com/refrain-dev/refrain/plugin/mail/tracking"
	"github.com/refrain-dev/refrain/plugin/stats"
	"github.com/refrain-dev/refrain/plugin/store/storetest"
)

// sent records n sent messages of a campaign variant, the first opens of
// them opened by a person, the first clicks clicked, plus one machine open
// on every other message (machine opens never count), as the outbox and
// the tracking webhook do: rows, events and rollups in one transaction.
func sent(t *testing.T, db bun.IDB, campaignID, variant string, n, opens, clicks int) {
	t.Helper()
	ctx := context.Background()
	now := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	msgs := make([]*outbox.Message, n)
	for i := range msgs {
		id := fmt.Sprintf("%s-%s-%d", campaignID, variant, i)
		c, v := campaignID, variant
		msgs[i] = &outbox.Message{ID: id, IdempotencyKey: id, Recipient: id + "@example.com", Template: "t",
			Values: map[string]any{}, Kind: mail.KindMarketing, Subject: "s", HTML: "h", Text: "t",
			Campaign: &c, Variant: &v, State: outbox.StateSent, NextAttemptAt: now, SentAt: &now, CreatedAt: now, UpdatedAt: now}
	}
	tx, err := db.BeginTx(ctx, nil)
	require.NoError(t, err)
	defer func() { _ = tx.Rollback() }()
	_, err = tx.NewInsert().Model(&msgs).Exec(ctx)
	require.NoError(t, err)
	dims := make([]kpi.Dims, n)
	for i, m := range msgs {
		dims[i] = kpi.DimsOf(m)
	}
	require.NoError(t, kpi.CountSent(ctx, tx, now, dims))
	event := func(m *outbox.Message, kind mail.EventKind, machine bool) {
		ok, err := tracking.RecordTx(ctx, tx, now, mail.Event{ID: fmt.Sprintf("%s-%s-%t", m.ID, kind, machine), Provider: "mailgun",
			Kind: kind, At: now, MessageID: m.ID, MachineOpen: machine}, kpi.Recorder{})
		require.NoError(t, err)
		require.True(t, ok)
	}
	for i, m := range msgs {
		if i < opens {
			event(m, mail.EventOpened, false)
		} else if i%2 == 0 {
			event(m, mail.EventOpened, true)
		}
		if i < clicks {
			event(m, mail.EventClicked, false)
		}
	}
	require.NoError(t, tx.Commit())
}

func abCampaign(id, metric string) *campaign.Campaign {
	return &campaign.Campaign{ID: id, ABTest: &campaign.ABTest{WinnerMetric: metric, TestShare: 0.2,
		Variants: []campaign.Variant{{Name: "A", Template: "t"}, {Name: "B", Template: "t"}}}}
}

// TestBayesPicker: the variant that beats control with 95% probability on
// 500 recipients each wins; a better rate on too few recipients is not
// conclusive and control is kept, where the bare rate comparison would
// have rolled the variant out.
func TestBayesPicker(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *storetest.DB) {
		ctx := context.Background()
		picker := campaign.BayesPicker{Rule: stats.Rule{MinSample: 500, Threshold: 0.95}}

		// 10% against 15% opens on 600 each: P(B beats A) is about 0.996.
		sent(t, db, "big", "A", 600, 60, 6)
		sent(t, db, "big", "B", 600, 90, 6)
		got, err := picker.Pick(ctx, db, abCampaign("big", campaign.MetricOpenRate))
		require.NoError(t, err)
		require.Equal(t, "B", got)
		// On clicks the two are level: nothing beats control.
		got, err = picker.Pick(ctx, db, abCampaign("big", campaign.MetricClickRate))
		require.NoError(t, err)
		require.Equal(t, "A", got)

		// The same rates on 100 each: below the minimum sample.
		sent(t, db, "small", "A", 100, 10, 0)
		sent(t, db, "small", "B", 100, 15, 0)
		got, err = picker.Pick(ctx, db, abCampaign("small", campaign.MetricOpenRate))
		require.NoError(t, err)
		require.Equal(t, "A", got, "not yet conclusive: control is kept")
		got, err = campaign.RatePicker{}.Pick(ctx, db, abCampaign("small", campaign.MetricOpenRate))
		require.NoError(t, err)
		require.Equal(t, "B", got, "the bare rate comparison would roll B out")

		// A variant that loses clearly is not picked either.
		sent(t, db, "lose", "A", 600, 90, 0)
		sent(t, db, "lose", "B", 600, 40, 0)
		got, err = picker.Pick(ctx, db, abCampaign("lose", campaign.MetricOpenRate))
		require.NoError(t, err)
		require.Equal(t, "A", got)
	})
}

// TestStatsAgreeWithKPIs: the counts the winner is decided on are those of
// kpis(filter: { campaign }) by variant, machine opens left out and a
// click without a seen open counted as the open.
func TestStatsAgreeWithKPIs(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *storetest.DB) {
		ctx := context.Background()
		sent(t, db, "agree", "A", 40, 10, 4)
		sent(t, db, "agree", "B", 30, 3, 6)
		sent(t, db, "other", "A", 5, 5, 5)
		got, err := campaign.Stats(ctx, db, "agree")
		require.NoError(t, err)
		require.Equal(t, []campaign.VariantStats{{Variant: "A", Sent: 40, Opens: 10, Clicks: 4}, {Variant: "B", Sent: 30, Opens: 6, Clicks: 6}}, got,
			"B: 3 opens seen, 3 more clicks whose open the pixel missed")
		id := "agree"
		series, err := kpi.Compute(ctx, db, kpi.Query{Filter: kpi.Filter{Campaign: &id}, GroupBy: []kpi.Dim{kpi.DimVariant},
			From: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), To: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)})
		require.NoError(t, err)
		require.Len(t, series, 2)
		for i, s := range series {
			require.Equal(t, got[i].Variant, s.Key)
			require.Equal(t, []int64{int64(got[i].Sent), int64(got[i].Opens), int64(got[i].Clicks)},
				[]int64{s.Total.Sent, s.Total.UniqueOpens, s.Total.UniqueClicks})
		}
	})
}
