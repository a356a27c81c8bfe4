package scenarios_test

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/refrain-dev/refrain/plugin/mail/template"
	"github.com/refrain-dev/refrain/scenarios"
	"github.com/refrain-dev/refrain/scenarios/library"
	"github.com/refrain-dev/refrain/scenarios/library/templates"
)

func engine(t *testing.T) *template.Engine {
	t.Helper()
	e, err := template.New(nil)
	require.NoError(t, err)
	require.NoError(t, e.Load(templates.FS))
	return e
}

func TestLibraryValidates(t *testing.T) {
	opts := scenarios.ValidateOpts{Templates: engine(t), Rules: scenarios.BasicRules{}}
	ids := map[string]bool{}
	for _, f := range library.Files() {
		s, err := scenarios.Load(f.Name, f.Data, opts)
		require.NoError(t, err, f.Name)
		require.Equal(t, "library/"+s.ID+".yaml", f.Name)
		ids[s.ID] = true
	}
	for _, id := range []string{"welcome", "welcome-reminder", "new-customer-offer", "customer-anniversary",
		"store-anniversary", "contest", "cart-abandonment", "registered-not-returned", "win-back", "sunset"} {
		require.True(t, ids[id], "library program %s is missing", id)
	}
	require.Len(t, ids, 10)
}

func TestStepGraph(t *testing.T) {
	f, _ := library.FS.ReadFile("welcome.yaml")
	s, err := scenarios.Load("welcome.yaml", f, scenarios.ValidateOpts{})
	require.NoError(t, err)
	idx := s.Index()
	require.Equal(t, "s2", idx["welcome"].Next)
	require.Equal(t, 3*24*time.Hour, idx["s2"].Duration)
	require.Equal(t, "survey", idx["discount-survey"].Next)
	require.Equal(t, "survey-late", idx["survey-reminder"].Next)
	require.Equal(t, "", idx["survey-late"].Next)
	require.Equal(t, "survey-thanks", idx["survey"].OnEvent[0].ID)
	require.Equal(t, "survey.on_event.2", idx["survey"].OnEvent[1].ID)
	require.Equal(t, []string{"newsletter.subscribed", "customer.created"}, s.Trigger.Events)
}

func TestProblemsNameFileLineAndStep(t *testing.T) {
	src := `id: bad
title: Bad
objective: build
colour: blue
trigger:
  event: order.created
  filter: total >
audience: nosuchfield == 1
steps:
  - id: first
    send: no-such-template
  - id: second
    send: welcome-discount-survey
    values:
      survey_url: x
  - id: nap
    wait: 0s
  - wait: -3d
  - exit: done
  - id: never
    send: welcome
`
	_, err := scenarios.Load("bad.yaml", []byte(src), scenarios.ValidateOpts{Templates: engine(t), Rules: scenarios.BasicRules{}})
	require.Error(t, err)
	// Parse problems come first: the unknown key stops validation.
	ps := scenarios.AsProblems(err)
	require.Len(t, ps, 1)
	require.Equal(t, "bad.yaml:4: unknown key \"colour\" in scenario (allowed: id, title, objective, kpi, priority, audience, trigger, reentry, exit_when, exit_on, goal, holdout, observed_for, steps)", ps[0].Error())

	_, err = scenarios.Load("bad.yaml", []byte(strings.Replace(src, "colour: blue\n", "", 1)), scenarios.ValidateOpts{Templates: engine(t), Rules: scenarios.BasicRules{}})
	ps = scenarios.AsProblems(err)
	var got []string
	for _, p := range ps {
		got = append(got, p.Error())
	}
	require.Len(t, got, 7, strings.Join(got, "\n"))
	require.Contains(t, got[0], "bad.yaml:5: trigger.filter does not check: parse rule")
	require.Contains(t, got[1], "bad.yaml:7: audience does not check: column 1: unknown field \"nosuchfield\"")
	require.Equal(t, `bad.yaml:9: step first: unknown template "no-such-template"`, got[2])
	require.Equal(t, `bad.yaml:11: step second: template "welcome-discount-survey" needs values: discount_code`, got[3])
	require.Equal(t, `bad.yaml:15: step nap: wait must be longer than zero`, got[4])
	require.Equal(t, `bad.yaml:17: step s4: wait must be longer than zero`, got[5])
	require.Equal(t, `bad.yaml:19: step never: unreachable: it follows an exit`, got[6])
}

func TestBasicRules(t *testing.T) {
	r := scenarios.BasicRules{}
	ok, err := r.MatchEvent(`to == "AT_RISK" && machine != true`, map[string]any{"to": "AT_RISK"})
	require.NoError(t, err)
	require.True(t, ok)
	ok, err = r.MatchEvent(`to == "AT_RISK"`, map[string]any{"to": "ACTIVE"})
	require.NoError(t, err)
	require.False(t, ok)
	require.Error(t, r.CheckCustomer(`orders_count == 0 && os.Exit(1)`))
}

func TestParseDuration(t *testing.T) {
	for in, want := range map[string]time.Duration{"3d": 72 * time.Hour, "2w": 14 * 24 * time.Hour, "36h": 36 * time.Hour, "90m": 90 * time.Minute} {
		got, err := scenarios.ParseDuration(in)
		require.NoError(t, err)
		require.Equal(t, want, got, in)
	}
	_, err := scenarios.ParseDuration("3 days")
	require.Error(t, err)
}

// TestUnknownPlaceholderRefused: a step value with a placeholder the
// engine does not fill is refused when the scenario is saved, instead of
// being sent as nothing.
func TestUnknownPlaceholderRefused(t *testing.T) {
	src := `id: typo
title: Typo
objective: build
trigger: manual
steps:
  - id: mail
    send: welcome-discount-survey
    values:
      discount_code: ${context.code}
      survey_url: ${survey_ur}/x?o=${order_id}&c=${customer.id}
`
	_, err := scenarios.Load("typo.yaml", []byte(src), scenarios.ValidateOpts{Templates: engine(t), Rules: scenarios.BasicRules{}})
	ps := scenarios.AsProblems(err)
	require.Len(t, ps, 1, "%v", err)
	require.Contains(t, ps[0].Error(), `value "survey_url": unknown placeholder ${survey_ur}, ${order_id}`)
	require.Empty(t, scenarios.UnknownPlaceholders("${store_url}/orders/${context.order_id}?c=${customer.id}"))
	require.Equal(t, []string{"${Store_URL}", "${unclosed"}, scenarios.UnknownPlaceholders("${Store_URL} ${unclosed"))
}

// TestDeletingProgramNeedsObservedFor: a program that deletes profiles
// must say how long a customer must have been observed first.
func TestDeletingProgramNeedsObservedFor(t *testing.T) {
	src := `id: purge
title: Purge
objective: retain
trigger:
  segment: idle
steps:
  - id: gone
    delete_profile: true
`
	_, err := scenarios.Load("purge.yaml", []byte(src), scenarios.ValidateOpts{})
	require.ErrorContains(t, err, "needs observed_for")
	s, err := scenarios.Load("purge.yaml", []byte(strings.Replace(src, "steps:", "observed_for: 90d\nsteps:", 1)), scenarios.ValidateOpts{})
	require.NoError(t, err)
	require.Equal(t, 90*24*time.Hour, s.ObservedFor)
	require.True(t, s.Destructive())
}
