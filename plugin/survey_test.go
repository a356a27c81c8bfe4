package plugin_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/refrain-dev/refrain/plugin"
	"github.com/refrain-dev/refrain/plugin/customer"
	"github.com/refrain-dev/refrain/plugin/mail/link"
	"github.com/refrain-dev/refrain/plugin/segment"
	"github.com/refrain-dev/refrain/plugin/store/storetest"
)

const testSigningSecret = "survey-test-signing-secret-of-32-bytes-or-more"

const submitSurveyMutation = `mutation($in: SubmitSurveyInput!) { refrain { submitSurvey(input: $in) {
	ok preferences userErrors { field message code } } } }`

type surveyPayload struct {
	Refrain struct {
		SubmitSurvey struct {
			Ok          bool
			Preferences map[string]any
			UserErrors  []struct {
				Field         []string
				Message, Code string
			}
		}
	}
}

// TestSubmitSurvey: the link of a mail answers for its customer without a
// sign-in; the answers land in preferences (where segment rules read them)
// with their time, and a survey.answered event is written. Forged, expired
// and other-purpose tokens, and bad answers, change nothing.
func TestSubmitSurvey(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *storetest.DB) {
		ctx := context.Background()
		e := newEnv(t, db, func(c *plugin.Config) { c.SigningSecret = testSigningSecret })
		pks := seedSubscribers(t, db.DB, e.clock.Now(), 2)
		ann, err := customer.Get(ctx, db.DB, pks[0])
		require.NoError(t, err)
		bob, err := customer.Get(ctx, db.DB, pks[1])
		require.NoError(t, err)
		signer, err := link.New([]byte(testSigningSecret))
		require.NoError(t, err)
		now := e.clock.Now()
		token := signer.Sign(link.Survey, ann.ID(), *ann.EmailNormalized, now.Add(24*time.Hour))

		submit := func(bearer string, in map[string]any) surveyPayload {
			var out surveyPayload
			e.do(bearer, submitSurveyMutation, map[string]any{"in": in}).decode(t, &out)
			return out
		}
		answered := func(pk int64) int {
			n, err := db.NewSelect().Table("customer_events").Where("customer_id = ? AND type = ?", pk, "survey.answered").Count(ctx)
			require.NoError(t, err)
			return int(n)
		}

		// Refused: every one of these changes nothing.
		for name, in := range map[string]map[string]any{
			"forged":         {"token": token[:len(token)-2] + "xx", "survey": "welcome", "answers": map[string]any{"diet": "vegetarian"}},
			"expired":        {"token": signer.Sign(link.Survey, ann.ID(), *ann.EmailNormalized, now.Add(-time.Minute)), "survey": "welcome", "answers": map[string]any{"diet": "vegetarian"}},
			"unsubscribe":    {"token": signer.Sign(link.Unsubscribe, ann.ID(), *ann.EmailNormalized, time.Time{}), "survey": "welcome", "answers": map[string]any{"diet": "vegetarian"}},
			"other address":  {"token": signer.Sign(link.Survey, ann.ID(), "someone@else.example", now.Add(time.Hour)), "survey": "welcome", "answers": map[string]any{"diet": "vegetarian"}},
			"other customer": {"token": token, "customer": bob.ID(), "survey": "welcome", "answers": map[string]any{"diet": "vegetarian"}},
		} {
			got := submit("", in)
			require.False(t, got.Refrain.SubmitSurvey.Ok, name)
			require.Equal(t, []string{"input", "token"}, got.Refrain.SubmitSurvey.UserErrors[0].Field, name)
			require.Equal(t, "invalid or expired link", got.Refrain.SubmitSurvey.UserErrors[0].Message, name)
		}
		got := submit("", map[string]any{"token": token, "survey": "Welcome!", "answers": map[string]any{"diet": "vegetarian"}})
		require.Equal(t, []string{"input", "survey"}, got.Refrain.SubmitSurvey.UserErrors[0].Field)
		got = submit("", map[string]any{"token": token, "survey": "welcome", "answers": map[string]any{"diet": map[string]any{"x": 1}}})
		require.Equal(t, []string{"input", "answers", "diet"}, got.Refrain.SubmitSurvey.UserErrors[0].Field)
		got = submit("", map[string]any{"token": token, "survey": "welcome", "answers": map[string]any{}})
		require.Equal(t, "at least one answer is required", got.Refrain.SubmitSurvey.UserErrors[0].Message)
		res := e.do("", submitSurveyMutation, map[string]any{"in": map[string]any{"survey": "welcome", "answers": map[string]any{"diet": "vegan"}}})
		require.Equal(t, []string{"UNAUTHENTICATED"}, res.codes(), "no token and nobody signed in")
		require.Zero(t, answered(ann.PK))

		// The link's token answers for Ann; the caller reads nothing back.
		got = submit("", map[string]any{"token": token, "survey": "welcome", "answers": map[string]any{"diet": "vegetarian", "topics": []any{"baking"}}})
		require.Empty(t, got.Refrain.SubmitSurvey.UserErrors)
		require.True(t, got.Refrain.SubmitSurvey.Ok)
		require.Nil(t, got.Refrain.SubmitSurvey.Preferences)
		ann, err = customer.Get(ctx, db.DB, ann.PK)
		require.NoError(t, err)
		require.Equal(t, "vegetarian", ann.Preferences["diet"])
		require.Equal(t, []any{"baking"}, ann.Preferences["topics"])
		require.Equal(t, map[string]any{"welcome": now.UTC().Format(time.RFC3339)}, ann.Preferences["surveys"])
		require.Equal(t, 1, answered(ann.PK))
		r, err := segment.Compile(`preferences.diet == "vegetarian"`)
		require.NoError(t, err)
		ids, err := r.IDs(ctx, db.DB, now)
		require.NoError(t, err)
		require.Equal(t, []int64{ann.PK}, ids, "segments read the answer")

		// A customer token answers for itself; an admin names the customer.
		got = submit(e.customerToken(bob.ID(), time.Hour, testJWTSecret), map[string]any{"survey": "sunset", "answers": map[string]any{"still_interested": false}})
		require.True(t, got.Refrain.SubmitSurvey.Ok)
		require.Equal(t, false, got.Refrain.SubmitSurvey.Preferences["still_interested"])
		res = e.do(e.customerToken(bob.ID(), time.Hour, testJWTSecret), submitSurveyMutation, map[string]any{"in": map[string]any{
			"customer": ann.ID(), "survey": "sunset", "answers": map[string]any{"still_interested": true}}})
		require.Equal(t, []string{"FORBIDDEN"}, res.codes())
		got = submit(testBootstrapKey, map[string]any{"survey": "sunset", "answers": map[string]any{"still_interested": true}})
		require.Equal(t, "customer is required with an admin key", got.Refrain.SubmitSurvey.UserErrors[0].Message)
		got = submit(testBootstrapKey, map[string]any{"customer": ann.ID(), "survey": "sunset", "answers": map[string]any{"still_interested": true}})
		require.True(t, got.Refrain.SubmitSurvey.Ok)
		require.Equal(t, "vegetarian", got.Refrain.SubmitSurvey.Preferences["diet"], "earlier answers stay")
		require.Len(t, got.Refrain.SubmitSurvey.Preferences["surveys"], 2)
		require.Equal(t, 2, answered(ann.PK))
		require.Equal(t, 1, answered(bob.PK))
	})
}
