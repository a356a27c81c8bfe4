package segment

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/uptrace/bun"

	"github.com/refrain-dev/refrain/plugin/store"
)

// Audience is a set of customers written as an SQL condition over the
// customers table aliased c. An empty condition is every customer.
type Audience interface {
	Where(db bun.IDB) (string, []any)
}

// ParseAudience reads a campaign's audience: all, tag:NAME, a stored
// segment by name or id, or a segment rule written in place. A segment is
// read as its rule at now, so the audience a campaign fixes when it starts
// sending is the segment's rule at that moment, over the whole base (not
// the last swept membership).
func ParseAudience(ctx context.Context, db bun.IDB, spec string, now time.Time) (Audience, error) {
	spec = strings.TrimSpace(spec)
	switch {
	case spec == "all":
		return allAudience{}, nil
	case strings.HasPrefix(spec, "tag:") && strings.TrimSpace(spec[4:]) != "":
		return tagAudience(strings.TrimSpace(spec[4:])), nil
	case spec == "":
		return nil, errors.New("audience is empty: want all, tag:NAME, a segment id or name, or a segment rule")
	}
	rule, err := storedRule(ctx, db, spec)
	if err != nil {
		return nil, err
	}
	r, err := Compile(rule)
	if err != nil {
		return nil, fmt.Errorf("not all, tag:NAME or a stored segment, and not a rule: %w", err)
	}
	return ruleAudience{rule: r, now: now}, nil
}

// storedRule is the rule of the stored segment spec names (by name, else
// by numeric id), or spec itself when it names none.
func storedRule(ctx context.Context, db bun.IDB, spec string) (string, error) {
	s, err := GetByName(ctx, db, spec)
	if err == nil {
		return s.Rule, nil
	}
	if !errors.Is(err, ErrNotFound) {
		return "", err
	}
	id, perr := strconv.ParseInt(spec, 10, 64)
	if perr != nil {
		return spec, nil
	}
	if s, err = Get(ctx, db, id); err != nil {
		return "", fmt.Errorf("segment %d: %w", id, err)
	}
	return s.Rule, nil
}

type ruleAudience struct {
	rule *Rule
	now  time.Time
}

func (a ruleAudience) Where(db bun.IDB) (string, []any) {
	return a.rule.Where(store.DialectOf(db), a.now)
}

type allAudience struct{}

func (allAudience) Where(bun.IDB) (string, []any) { return "", nil }

type tagAudience string

func (t tagAudience) Where(db bun.IDB) (string, []any) {
	return store.JSONArrayContains(db, "c.tags"), []any{string(t)}
}
