// Package survey records a customer's answers to a survey (the welcome
// program's preference survey, the sunset program's "still interested?"):
// the answers go into the customer's preferences, where segment rules read
// them (preferences.diet == "vegetarian"), with the time of the answer under
// preferences.surveys.<name>, and a survey.answered event tells the scenarios
// waiting for it.
package survey

import (
	"context"
	"fmt"
	"regexp"
	"sort"
	"time"

	"github.com/uptrace/bun"

	"github.com/refrain-dev/refrain/plugin/customer"
	"github.com/refrain-dev/refrain/plugin/mail/consent"
)

// EventAnswered is the customer event a submitted survey writes.
const EventAnswered = "survey.answered"

// TokenLifetime is how long the survey link of a mail works.
const TokenLifetime = 60 * 24 * time.Hour

// MaxAnswers bounds the answers of one submission.
const MaxAnswers = 50

var (
	nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,39}$`)
	keyRE  = regexp.MustCompile(`^[a-z][a-z0-9_]{0,39}$`)
)

// FieldError is an answer the survey cannot take; Field names it.
type FieldError struct {
	Field, Message string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Message }

// Check validates a submission without storing it.
func Check(name string, answers map[string]any) error {
	if !nameRE.MatchString(name) {
		return &FieldError{"survey", fmt.Sprintf("%q: want 1 to 40 lower-case letters, digits, - or _", name)}
	}
	if len(answers) == 0 {
		return &FieldError{"answers", "at least one answer is required"}
	}
	if len(answers) > MaxAnswers {
		return &FieldError{"answers", fmt.Sprintf("%d answers: at most %d", len(answers), MaxAnswers)}
	}
	keys := make([]string, 0, len(answers))
	for k := range answers {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if !keyRE.MatchString(k) || k == "surveys" {
			return &FieldError{"answers." + k, "a question is 1 to 40 lower-case letters, digits or _, starting with a letter (and not surveys)"}
		}
		switch v := answers[k].(type) {
		case string, bool, float64, int, int64, nil:
		case []any:
			for _, x := range v {
				if _, ok := x.(string); !ok {
					return &FieldError{"answers." + k, "a list answer holds strings only"}
				}
			}
		default:
			return &FieldError{"answers." + k, "an answer is a string, a number, true or false, a list of strings, or null to clear it"}
		}
	}
	return nil
}

// Submit stores answers to the survey name for c at now, in db (the
// caller's transaction, so preferences and event commit together), and
// writes the survey.answered event. source says how it came (link, token,
// admin).
func Submit(ctx context.Context, db bun.IDB, now time.Time, c *customer.Customer, name string, answers map[string]any, source string) error {
	if err := Check(name, answers); err != nil {
		return err
	}
	changes := make(map[string]any, len(answers)+1)
	for k, v := range answers {
		changes[k] = v
	}
	surveys := map[string]any{}
	if old, ok := c.Preferences["surveys"].(map[string]any); ok {
		for k, v := range old {
			surveys[k] = v
		}
	}
	surveys[name] = now.UTC().Format(time.RFC3339)
	changes["surveys"] = surveys
	if err := consent.UpdatePreferences(ctx, db, now, c, changes, source); err != nil {
		return err
	}
	_, _, err := customer.AppendEvent(ctx, db, now, c.PK, customer.EventInput{Type: EventAnswered, OccurredAt: now,
		Source: source, Properties: map[string]any{"survey": name, "answers": answers}})
	return err
}
