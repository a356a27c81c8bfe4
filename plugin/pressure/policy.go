package pressure

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/pgdialect"

	"github.com/refrain-dev/refrain/plugin/store"
)

// Decision is the policy's verdict on one message.
type Decision string

// Decisions.
const (
	// Send lets the message go.
	Send Decision = "send"
	// Overridden lets it go although it breaks the rules (OnCapped override).
	Overridden Decision = "override"
	// Deferred holds it until Result.Until.
	Deferred Decision = "defer"
	// Skipped drops it.
	Skipped Decision = "skip"
)

// Goes reports whether the message is sent.
func (d Decision) Goes() bool { return d == Send || d == Overridden }

// Result is the policy's answer for one message.
type Result struct {
	Decision Decision
	// Until is when to try again, for Deferred.
	Until  time.Time
	Reason string
}

// Request is one marketing message asking to go.
type Request struct {
	CustomerPK int64
	// Program is the scenario or campaign program id; Campaign the campaign id, if any.
	Program, Campaign string
	// Key is the message's idempotency key: deferrals of one message share it,
	// and MaxDelay counts from its first deferral.
	Key      string
	Priority int
	// Override is the campaign's own settings; programs take theirs from
	// Policy.Programs.
	Override *Override
	// Reserve says whether scheduled campaigns of higher priority hold
	// slots against this message (scenario steps; not campaigns).
	Reserve bool
}

// Reservation is a scheduled send that holds a slot for a customer.
type Reservation struct {
	At       time.Time
	Campaign string
	Priority int
}

// Reservations finds the scheduled campaigns that include a customer.
type Reservations interface {
	// Reserved returns the scheduled campaigns with a priority above
	// priority, due in (from, to], whose audience includes the customer.
	Reserved(ctx context.Context, db bun.IDB, customerPK int64, priority int, from, to time.Time) ([]Reservation, error)
}

// Policy decides and records. It is safe for concurrent use.
type Policy struct {
	// Default are the global rules.
	Default Rules
	// Programs are the per-program overrides, by program id.
	Programs map[string]*Override
	// TimeZone is used for customers without one. Default UTC.
	TimeZone *time.Location
	// Reservations, when set, lets scheduled campaigns hold their slots.
	Reservations Reservations

	mu   sync.Mutex
	locs map[string]*time.Location
}

// RulesFor returns the rules for a program, with a campaign's own override.
func (p *Policy) RulesFor(program string, o *Override) Rules {
	return p.Default.Apply(p.Programs[program]).Apply(o)
}

// Location returns the time zone of name, or the policy's default.
func (p *Policy) Location(name *string) *time.Location {
	def := p.TimeZone
	if def == nil {
		def = time.UTC
	}
	if name == nil || *name == "" {
		return def
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.locs == nil {
		p.locs = map[string]*time.Location{}
	}
	if loc, ok := p.locs[*name]; ok {
		return loc
	}
	loc, err := time.LoadLocation(*name)
	if err != nil {
		loc = def
	}
	p.locs[*name] = loc
	return loc
}

// Evaluate is the policy itself, without storage: sent are the times of
// the customer's marketing messages in the window before now (any order),
// firstDue when the message was first deferred (zero if never), reserved
// the higher-priority scheduled sends ahead.
func Evaluate(r Rules, now time.Time, loc *time.Location, sent []time.Time, firstDue time.Time, reserved []Reservation) Result {
	return evaluate(r, now, loc, sent, firstDue, reserved, true)
}

// Verdict is Evaluate without the reason, for callers that weigh many
// messages and keep only the decisions (the forecast). sent must be in
// time order; reserved is sorted in place.
func Verdict(r Rules, now time.Time, loc *time.Location, sent []time.Time, firstDue time.Time, reserved []Reservation) Result {
	return evaluate(r, now, loc, sent, firstDue, reserved, false)
}

func evaluate(r Rules, now time.Time, loc *time.Location, sent []time.Time, firstDue time.Time, reserved []Reservation, explain bool) Result {
	if firstDue.IsZero() || firstDue.After(now) {
		firstDue = now
	}
	var inWindow []time.Time
	if explain {
		for _, t := range sent {
			if t.After(now.Add(-r.Window)) && !t.After(now) {
				inWindow = append(inWindow, t)
			}
		}
		sort.Slice(inWindow, func(i, j int) bool { return inWindow[i].Before(inWindow[j]) })
	} else {
		// sent is in order: the window is a run of it.
		lo, hi := 0, len(sent)
		for lo < hi && !sent[lo].After(now.Add(-r.Window)) {
			lo++
		}
		for hi > lo && sent[hi-1].After(now) {
			hi--
		}
		inWindow = sent[lo:hi]
	}
	var next time.Time
	var why []string
	held := false
	n := len(inWindow)
	if r.Cap > 0 && n >= r.Cap {
		free := inWindow[n-r.Cap].Add(r.Window)
		next = later(next, free)
		held = true
		if explain {
			why = append(why, fmt.Sprintf("cap %d in %s reached (%d sent)", r.Cap, fmtDur(r.Window), n))
		}
	}
	if n > 0 && r.MinGap > 0 && now.Before(inWindow[n-1].Add(r.MinGap)) {
		next = later(next, inWindow[n-1].Add(r.MinGap))
		held = true
		if explain {
			why = append(why, fmt.Sprintf("min gap %s since the last message at %s", fmtDur(r.MinGap), inWindow[n-1].UTC().Format(time.RFC3339)))
		}
	}
	if !held && len(reserved) > 0 {
		sort.Slice(reserved, func(i, j int) bool { return reserved[i].At.Before(reserved[j].At) })
		var hold *Reservation
		for i := range reserved {
			res := &reserved[i]
			// Sends in the window that ends with the reservation: the
			// ones already made, the others reserved before it, this one.
			count := 1 + i + 1
			for _, t := range inWindow {
				if t.After(res.At.Add(-r.Window)) {
					count++
				}
			}
			if (r.Cap > 0 && count > r.Cap) || res.At.Sub(now) < r.MinGap {
				hold = res
			}
		}
		if hold != nil {
			next = later(next, hold.At.Add(r.MinGap))
			held = true
			if explain {
				why = append(why, fmt.Sprintf("slot reserved for campaign %s (priority %d) at %s", hold.Campaign, hold.Priority, hold.At.UTC().Format(time.RFC3339)))
			}
		}
	}
	if held {
		reason := strings.Join(why, "; ")
		switch r.OnCapped {
		case OnCappedOverride:
			if explain {
				reason = "override: " + reason
			}
			return Result{Decision: Overridden, Reason: reason}
		case OnCappedSkip:
			return Result{Decision: Skipped, Reason: reason}
		}
		if quiet, end := r.Quiet.in(next.In(loc)); quiet {
			next = end.UTC()
			if explain {
				reason += "; then quiet hours " + r.Quiet.String()
			}
		}
		if next.Sub(firstDue) > r.MaxDelay {
			if explain {
				reason = fmt.Sprintf("deferred past the max delay of %s: %s", fmtDur(r.MaxDelay), reason)
			}
			return Result{Decision: Skipped, Reason: reason}
		}
		return Result{Decision: Deferred, Until: next.UTC(), Reason: reason}
	}
	if quiet, end := r.Quiet.in(now.In(loc)); quiet {
		reason := ""
		if explain {
			reason = fmt.Sprintf("quiet hours %s in %s", r.Quiet, loc)
		}
		if end.Sub(firstDue) > r.MaxDelay && r.OnCapped != OnCappedOverride {
			if explain {
				reason = fmt.Sprintf("deferred past the max delay of %s: %s", fmtDur(r.MaxDelay), reason)
			}
			return Result{Decision: Skipped, Reason: reason}
		}
		return Result{Decision: Deferred, Until: end.UTC(), Reason: reason}
	}
	if explain {
		return Result{Decision: Send, Reason: "within the policy"}
	}
	return Result{Decision: Send}
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// Record is one stored decision.
type Record struct {
	bun.BaseModel `bun:"table:pressure_decisions"`
	ID            int64      `bun:"id,pk,autoincrement"`
	CustomerPK    int64      `bun:"customer_id,notnull"`
	At            time.Time  `bun:"at,notnull"`
	Program       string     `bun:"program,notnull"`
	Campaign      *string    `bun:"campaign"`
	MessageKey    string     `bun:"message_key,notnull"`
	Priority      int        `bun:"priority,notnull"`
	Decision      Decision   `bun:"decision,notnull"`
	Reason        string     `bun:"reason,notnull"`
	Until         *time.Time `bun:"until"`
}

// customerRow is what the policy reads of a customer.
type customerRow struct {
	PK          int64          `bun:"id"`
	TimeZone    *string        `bun:"time_zone"`
	Preferences map[string]any `bun:"preferences,type:jsonb"`
}

// FrequencyGap is the least time between two marketing messages that a
// customer's frequency preference (chosen on the preference page) asks
// for: a week for "weekly", 30 days for "monthly", none for "as_it_comes"
// or no choice.
func FrequencyGap(preferences map[string]any) time.Duration {
	switch preferences["frequency"] {
	case "weekly":
		return 7 * 24 * time.Hour
	case "monthly":
		return 30 * 24 * time.Hour
	}
	return 0
}

// ForCustomer narrows r to what the customer's preferences ask for: their
// frequency preference is a minimum gap between marketing messages, which
// the window covers.
func (r Rules) ForCustomer(preferences map[string]any) Rules {
	if gap := FrequencyGap(preferences); gap > r.MinGap {
		r.MinGap = gap
		if r.Window < gap {
			r.Window = gap
		}
	}
	return r
}

// Decide locks the customer, decides for req, and records the decision,
// all in tx (which must be the transaction that writes the message).
func (p *Policy) Decide(ctx context.Context, tx bun.IDB, now time.Time, req Request) (Result, error) {
	rules := p.RulesFor(req.Program, req.Override)
	var c customerRow
	q := tx.NewSelect().Table("customers").Column("id", "time_zone", "preferences").Where("id = ?", req.CustomerPK)
	q = store.ForUpdate(q)
	if err := q.Scan(ctx, &c); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return Result{}, fmt.Errorf("pressure: customer %d: %w", req.CustomerPK, store.ErrNotFound)
		}
		return Result{}, fmt.Errorf("pressure: lock customer %d: %w", req.CustomerPK, err)
	}
	rules = rules.ForCustomer(c.Preferences)
	sent, err := sentTimes(ctx, tx, []int64{req.CustomerPK}, now.Add(-rules.Window), now)
	if err != nil {
		return Result{}, err
	}
	first, err := firstDeferrals(ctx, tx, []string{req.Key})
	if err != nil {
		return Result{}, err
	}
	var reserved []Reservation
	if req.Reserve && p.Reservations != nil && rules.OnCapped != OnCappedOverride {
		reserved, err = p.Reservations.Reserved(ctx, tx, req.CustomerPK, req.Priority, now, now.Add(rules.Window))
		if err != nil {
			return Result{}, fmt.Errorf("pressure: reservations: %w", err)
		}
	}
	res := Evaluate(rules, now, p.Location(c.TimeZone), sent[req.CustomerPK], first[req.Key], reserved)
	rec := record(req, req.CustomerPK, req.Key, now, res)
	if _, err := tx.NewInsert().Model(rec).Exec(ctx); err != nil {
		return Result{}, fmt.Errorf("pressure: record decision: %w", err)
	}
	return res, nil
}

// DecideBatch decides for one campaign message to many customers with a
// fixed number of statements: lock the customers, read their windows and
// earlier deferrals, record every decision in one insert. keyOf gives each
// customer's message key. Customers that no longer exist are left out.
func (p *Policy) DecideBatch(ctx context.Context, tx bun.IDB, now time.Time, req Request, pks []int64, keyOf func(int64) string) (map[int64]Result, error) {
	out := make(map[int64]Result, len(pks))
	if len(pks) == 0 {
		return out, nil
	}
	rules := p.RulesFor(req.Program, req.Override)
	var cs []customerRow
	q := tx.NewSelect().Table("customers").Column("id", "time_zone", "preferences").Where(store.In(tx, "id", pks)).Order("id")
	q = store.ForUpdate(q)
	if err := q.Scan(ctx, &cs); err != nil {
		return nil, fmt.Errorf("pressure: lock customers: %w", err)
	}
	window := rules.Window
	for _, c := range cs {
		window = max(window, rules.ForCustomer(c.Preferences).Window)
	}
	sent, err := sentTimes(ctx, tx, pks, now.Add(-window), now)
	if err != nil {
		return nil, err
	}
	keys := make([]string, len(cs))
	for i, c := range cs {
		keys[i] = keyOf(c.PK)
	}
	first, err := firstDeferrals(ctx, tx, keys)
	if err != nil {
		return nil, err
	}
	recs := make([]*Record, 0, len(cs))
	for i, c := range cs {
		res := Evaluate(rules.ForCustomer(c.Preferences), now, p.Location(c.TimeZone), sent[c.PK], first[keys[i]], nil)
		out[c.PK] = res
		recs = append(recs, record(req, c.PK, keys[i], now, res))
	}
	if err := insertRecords(ctx, tx, recs); err != nil {
		return nil, fmt.Errorf("pressure: record decisions: %w", err)
	}
	return out, nil
}

// insertRecords writes decisions: on PostgreSQL as one array per column
// (unnest), which the server parses far faster than a thousand-row VALUES
// list or a JSON document; on SQLite as a multi-row insert.
func insertRecords(ctx context.Context, tx bun.IDB, recs []*Record) error {
	if len(recs) == 0 {
		return nil
	}
	if !store.Arrays(tx) {
		_, err := tx.NewInsert().Model(&recs).Exec(ctx)
		return err
	}
	n := len(recs)
	var (
		customers, priorities           = make([]int64, n), make([]int64, n)
		at                              = make([]time.Time, n)
		programs, keys, decisions, whys = make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		campaigns                       = make([]*string, n)
		until                           = make([]*time.Time, n)
	)
	for i, r := range recs {
		customers[i], priorities[i], at[i], until[i] = r.CustomerPK, int64(r.Priority), r.At, r.Until
		programs[i], keys[i], decisions[i], whys[i], campaigns[i] = r.Program, r.MessageKey, string(r.Decision), r.Reason, r.Campaign
	}
	_, err := tx.NewRaw(`INSERT INTO pressure_decisions (customer_id, at, program, campaign, message_key, priority, decision, reason, until)
		SELECT * FROM unnest(?::bigint[], ?::timestamptz[], ?::text[], ?::text[], ?::text[], ?::integer[], ?::text[], ?::text[], ?::timestamptz[])`,
		pgdialect.Array(customers), pgdialect.Array(at), pgdialect.Array(programs), pgdialect.Array(campaigns),
		pgdialect.Array(keys), pgdialect.Array(priorities), pgdialect.Array(decisions), pgdialect.Array(whys),
		pgdialect.Array(until)).Exec(ctx)
	return err
}

func record(req Request, pk int64, key string, now time.Time, res Result) *Record {
	rec := &Record{CustomerPK: pk, At: now, Program: req.Program, MessageKey: key, Priority: req.Priority,
		Decision: res.Decision, Reason: res.Reason}
	if req.Campaign != "" {
		c := req.Campaign
		rec.Campaign = &c
	}
	if res.Decision == Deferred {
		u := res.Until
		rec.Until = &u
	}
	return rec
}

// sentTimes returns, by customer, when their marketing messages in
// (from, to] were written (failed and suppressed ones did not go).
func sentTimes(ctx context.Context, db bun.IDB, pks []int64, from, to time.Time) (map[int64][]time.Time, error) {
	var rows []struct {
		PK int64     `bun:"customer_id"`
		At time.Time `bun:"created_at"`
	}
	var err error
	if store.Arrays(db) && len(pks) > 1 {
		// One index lookup per customer, whatever the statistics say: a
		// table that grows fast during a campaign is not analyzed yet, and
		// the planner would scan it whole for every batch (OFFSET 0 keeps
		// the lookup apart from the join).
		err = db.NewRaw(`SELECT k.id AS customer_id, m.created_at FROM unnest(?::bigint[]) AS k (id)
			CROSS JOIN LATERAL (SELECT created_at FROM messages WHERE customer_id = k.id AND kind = 'marketing'
			AND created_at > ? AND created_at <= ? AND state NOT IN ('failed', 'suppressed') OFFSET 0) AS m`,
			pgdialect.Array(pks), from, to).Scan(ctx, &rows)
	} else {
		err = db.NewSelect().Table("messages").Column("customer_id", "created_at").
			Where("customer_id IN (?)", bun.List(pks)).Where("kind = 'marketing'").
			Where("created_at > ? AND created_at <= ?", from, to).
			Where("state NOT IN ('failed', 'suppressed')").Scan(ctx, &rows)
	}
	if err != nil {
		return nil, fmt.Errorf("pressure: read sent messages: %w", err)
	}
	out := make(map[int64][]time.Time, len(pks))
	for _, r := range rows {
		out[r.PK] = append(out[r.PK], r.At)
	}
	return out, nil
}

// firstDeferrals returns, by message key, when each was first deferred.
func firstDeferrals(ctx context.Context, db bun.IDB, keys []string) (map[string]time.Time, error) {
	var rows []struct {
		Key string    `bun:"message_key"`
		At  time.Time `bun:"at"`
	}
	var err error
	if store.Arrays(db) && len(keys) > 1 {
		// One index lookup per key (see sentTimes).
		err = db.NewRaw(`SELECT k.key AS message_key, d.at FROM unnest(?::text[]) AS k (key)
			CROSS JOIN LATERAL (SELECT min(at) AS at FROM pressure_decisions WHERE message_key = k.key AND decision = ? OFFSET 0) AS d
			WHERE d.at IS NOT NULL`, pgdialect.Array(keys), Deferred).Scan(ctx, &rows)
	} else {
		err = db.NewSelect().Table("pressure_decisions").ColumnExpr("message_key, min(at) AS at").
			Where("message_key IN (?)", bun.List(keys)).Where("decision = ?", Deferred).
			Group("message_key").Scan(ctx, &rows)
	}
	if err != nil {
		return nil, fmt.Errorf("pressure: read deferrals: %w", err)
	}
	out := make(map[string]time.Time, len(rows))
	for _, r := range rows {
		out[r.Key] = r.At
	}
	return out, nil
}
