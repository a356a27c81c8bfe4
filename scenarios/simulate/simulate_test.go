package simulate_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/refrain-dev/refrain/scenarios/library"
	"github.com/refrain-dev/refrain/scenarios/simulate"
)

func TestSimulateLibrary(t *testing.T) {
	ctx := context.Background()
	welcome, _ := library.FS.ReadFile("welcome.yaml")
	r, err := simulate.Run(ctx, welcome, simulate.Options{Customers: 200, Days: 20, Seed: 7})
	require.NoError(t, err)
	require.Len(t, r.Days, 20)
	require.Greater(t, r.Total.Entries, 50)
	steps := map[string]simulate.Step{}
	sends := 0
	for _, s := range r.Steps {
		steps[s.ID] = s
		sends += s.Sends
	}
	// Every entrant gets the D0 mail; the survey mail goes to those still in after 3 days.
	require.Equal(t, r.Total.Entries, steps["welcome"].Sends+0)
	require.LessOrEqual(t, steps["discount-survey"].Sends, steps["welcome"].Sends)
	require.Greater(t, steps["survey-reminder"].Sends, 0)
	require.Equal(t, r.Total.Sends, sends)
	require.Zero(t, r.Total.Deletions)

	sunset, _ := library.FS.ReadFile("sunset.yaml")
	r, err = simulate.Run(ctx, sunset, simulate.Options{Customers: 600, Days: 40, Seed: 7})
	require.NoError(t, err)
	require.Greater(t, r.Total.Deletions, 0)
	require.Greater(t, r.Total.Exits, 0)
	require.Less(t, r.Total.Deletions, r.Total.Entries)

	// Invalid definitions are refused before anything runs.
	_, err = simulate.Run(ctx, []byte("id: x\n"), simulate.Options{})
	require.Error(t, err)
}

// TestSimulateGoalsOnlyFromTheWorld: the simulated world reacts to mail
// (nothing before the first send) and emits only events it has a source
// for, so a goal on another event is never counted.
func TestSimulateGoalsOnlyFromTheWorld(t *testing.T) {
	ctx := context.Background()
	def := `id: late
title: Late
objective: reactivate
trigger:
  event: customer.created
goal:
  event: %s
  within: 30d
steps:
  - wait: 10d
  - id: mail
    send: anything
`
	r, err := simulate.Run(ctx, []byte(fmt.Sprintf(def, "order.created")), simulate.Options{Customers: 300, Days: 20, Seed: 3, ReactionRate: 0.3})
	require.NoError(t, err)
	require.Greater(t, r.Total.Entries, 50)
	for _, d := range r.Days[:10] {
		require.Zero(t, d.Goals, "day %d: a goal before any mail was sent", d.Day)
	}
	require.Greater(t, r.Total.Goals, 0)
	require.Greater(t, r.Touched, 0)
	require.LessOrEqual(t, r.Touched, r.Total.Entries)

	r, err = simulate.Run(ctx, []byte(fmt.Sprintf(def, "loyalty.tier_changed")), simulate.Options{Customers: 300, Days: 20, Seed: 3, ReactionRate: 0.3})
	require.NoError(t, err)
	require.Zero(t, r.Total.Goals, "nothing in the simulated world emits loyalty.tier_changed")
}
