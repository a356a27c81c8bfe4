package simulate_test

import (
	"context"
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
