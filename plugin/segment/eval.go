package segment

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/uptrace/bun"

	"github.com/refrain-dev/refrain/plugin/customer"
	"github.com/refrain-dev/refrain/plugin/store"
)

// Counter counts one customer's events for rules that use events, opens
// or clicks (since is zero for all time), and reads the loyalty fields.
type Counter interface {
	CountEvents(ctx context.Context, q CountQuery) (int, error)
	// Loyalty returns the customer's loyalty points and tier (nil for none).
	Loyalty(ctx context.Context) (points int64, tier *string, err error)
}

// CountQuery is one count a rule asks for.
type CountQuery struct {
	// Kind is events (customer events of type Event), opens or clicks.
	Kind, Event string
	// Product, when set, keeps events with a product whose title contains
	// it (lower-case ASCII; titles are lowered the same way).
	Product string
	// Since is the start of the window; zero for all time.
	Since time.Time
}

// DBCounter counts the events of customer PK in the database.
type DBCounter struct {
	DB bun.IDB
	PK int64
}

// Loyalty implements Counter: the loyalty columns of the customer row.
func (d DBCounter) Loyalty(ctx context.Context) (int64, *string, error) {
	var row struct {
		Points int64   `bun:"loyalty_points"`
		Tier   *string `bun:"loyalty_tier"`
	}
	err := d.DB.NewSelect().TableExpr("customers AS c").Column("c.loyalty_points", "c.loyalty_tier").
		Where("c.id = ?", d.PK).Scan(ctx, &row)
	if err != nil {
		return 0, nil, fmt.Errorf("read loyalty of customer %d: %w", d.PK, err)
	}
	return row.Points, row.Tier, nil
}

// CountEvents implements Counter with the same conditions as the SQL form.
func (d DBCounter) CountEvents(ctx context.Context, cq CountQuery) (int, error) {
	q := d.DB.NewSelect()
	switch cq.Kind {
	case "events":
		q = q.TableExpr("customer_events AS e").Where("e.customer_id = ?", d.PK).Where("e.type = ?", cq.Event)
	default:
		k := "opened"
		if cq.Kind == "clicks" {
			k = "clicked"
		}
		q = q.TableExpr("message_events AS e").Where("e.customer_id = ?", d.PK).Where("e.kind = ?", k)
		if k == "opened" {
			q = q.Where("e.machine_open = ?", false)
		}
	}
	if !cq.Since.IsZero() {
		q = q.Where("e.occurred_at >= ?", cq.Since.UTC())
	}
	if cq.Product == "" {
		n, err := q.Count(ctx)
		return int(n), err
	}
	var events []*customer.Event
	if err := q.ColumnExpr("e.*").Scan(ctx, &events); err != nil {
		return 0, err
	}
	n := 0
	for _, e := range events {
		if boughtIn(e.Properties, cq.Product) {
			n++
		}
	}
	return n, nil
}

func boughtIn(props map[string]any, text string) bool {
	items, _ := props["products"].([]any)
	for _, it := range items {
		m, _ := it.(map[string]any)
		if title, ok := m["title"].(string); ok && strings.Contains(asciiLower(title), text) {
			return true
		}
	}
	return false
}

// Match evaluates the rule for c at now. counter may be nil when the rule
// counts no events (CountsEvents is false).
func (r *Rule) Match(ctx context.Context, c *customer.Customer, now time.Time, counter Counter) (bool, error) {
	e := &evaluator{ctx: ctx, c: c, now: now, counter: counter}
	v, err := e.eval(r.root)
	if err != nil {
		return false, fmt.Errorf("evaluate %q: %w", r.src, err)
	}
	b, _ := v.(bool)
	return b, nil
}

type evaluator struct {
	ctx     context.Context
	c       *customer.Customer
	now     time.Time
	counter Counter
	// loyalty holds the loyalty fields once read: one query per evaluation.
	loyalty *loyalty
}

// loyalty is a customer's loyalty fields, read from the database.
type loyalty struct {
	points int64
	tier   *string
}

func ts(t *time.Time) any {
	if t == nil {
		return nil
	}
	return *t
}

func str(s *string) any {
	if s == nil {
		return nil
	}
	return *s
}

func (e *evaluator) column(name string) any {
	c := e.c
	switch name {
	case "email":
		return str(c.Email)
	case "first_name":
		return str(c.FirstName)
	case "last_name":
		return str(c.LastName)
	case "locale":
		return str(c.Locale)
	case "time_zone":
		return str(c.TimeZone)
	case "source":
		return string(c.Source)
	case "consent":
		return string(c.ConsentState)
	case "stage":
		return c.Stage
	case "currency":
		return str(c.Currency)
	case "orders_count":
		return float64(c.OrdersCount)
	case "total_spent":
		return float64(c.TotalSpentMinor)
	case "first_order_at":
		return ts(c.FirstOrderAt)
	case "last_order_at":
		return ts(c.LastOrderAt)
	case "last_open_at":
		return ts(c.LastOpenAt)
	case "last_click_at":
		return ts(c.LastClickAt)
	case "last_visit_at":
		return ts(c.LastVisitAt)
	case "created_at":
		return c.CreatedAt
	case "observed_since":
		return ts(c.ObservedSince)
	case "tags":
		return c.Tags
	}
	panic("segment: column " + name + " has no value")
}

// jsonValue reads attributes.KEY or preferences.KEY as JSON would decode it.
func (e *evaluator) jsonValue(n *jsonNode) any {
	m := e.c.Attributes
	if n.column == "preferences" {
		m = e.c.Preferences
	}
	v := m[n.key]
	switch x := v.(type) {
	case int:
		return float64(x)
	case int64:
		return float64(x)
	case json.Number:
		f, err := x.Float64()
		if err != nil {
			return nil
		}
		return f
	}
	return v
}

func (e *evaluator) eval(n node) (any, error) {
	switch n := n.(type) {
	case *litNode:
		return n.v, nil
	case *nowNode:
		return e.now, nil
	case *colNode:
		if loyaltyField(n.name) {
			if e.counter == nil {
				return nil, fmt.Errorf("%s needs the database", n.name)
			}
			if e.loyalty == nil {
				points, tier, err := e.counter.Loyalty(e.ctx)
				if err != nil {
					return nil, err
				}
				e.loyalty = &loyalty{points, tier}
			}
			if n.name == "loyalty_points" {
				return float64(e.loyalty.points), nil
			}
			return str(e.loyalty.tier), nil
		}
		return e.column(n.name), nil
	case *jsonNode:
		v := e.jsonValue(n)
		switch n.as {
		case tStr:
			if s, ok := v.(string); ok {
				return s, nil
			}
			return nil, nil
		case tNum:
			if f, ok := v.(float64); ok {
				return f, nil
			}
			return nil, nil
		case tBool:
			if b, ok := v.(bool); ok {
				return b, nil
			}
			return nil, nil
		}
		return v, nil
	case *notNode:
		v, err := e.eval(n.x)
		if err != nil {
			return nil, err
		}
		return !v.(bool), nil
	case *negNode:
		v, err := e.eval(n.x)
		if err != nil || v == nil {
			return nil, err
		}
		return -v.(float64), nil
	case *logicNode:
		l, err := e.eval(n.l)
		if err != nil {
			return nil, err
		}
		if lb := l.(bool); (n.op == "&&" && !lb) || (n.op == "||" && lb) {
			return lb, nil
		}
		return e.eval(n.r)
	case *arithNode:
		l, err := e.eval(n.l)
		if err != nil {
			return nil, err
		}
		r, err := e.eval(n.r)
		if err != nil {
			return nil, err
		}
		return arith(n.op, l, r)
	case *cmpNode:
		l, err := e.eval(n.l)
		if err != nil {
			return nil, err
		}
		r, err := e.eval(n.r)
		if err != nil {
			return nil, err
		}
		return compareValues(n.op, n.on, l, r), nil
	case *hasNode:
		if c, ok := n.list.(*colNode); ok && c.name == "tags" {
			for _, t := range e.c.Tags {
				if t == n.val {
					return true, nil
				}
			}
			return false, nil
		}
		j := n.list.(*jsonNode)
		if j.key == "" {
			m := e.c.Attributes
			if j.column == "preferences" {
				m = e.c.Preferences
			}
			_, ok := m[n.val]
			return ok, nil
		}
		switch x := e.jsonValue(j).(type) {
		case []any:
			for _, item := range x {
				if s, ok := item.(string); ok && s == n.val {
					return true, nil
				}
			}
		case []string:
			for _, s := range x {
				if s == n.val {
					return true, nil
				}
			}
		case map[string]any:
			_, ok := x[n.val]
			return ok, nil
		}
		return false, nil
	case *countNode:
		if e.counter == nil {
			return nil, errors.New("the rule counts events and no counter was given")
		}
		var since time.Time
		if n.window > 0 {
			since = e.now.Add(-n.window)
		}
		k, err := e.counter.CountEvents(e.ctx, CountQuery{Kind: n.kind, Event: n.event, Product: n.product, Since: since})
		if err != nil {
			return nil, fmt.Errorf("count %s: %w", n.kind, err)
		}
		return float64(k), nil
	case *localNode:
		v, err := e.eval(n.t)
		if err != nil || v == nil {
			return nil, err
		}
		name := n.zone
		if name == "" && e.c.TimeZone != nil {
			name = *e.c.TimeZone
		}
		loc, _ := store.Zone(name)
		return float64(store.LocalPart(v.(time.Time), loc, n.part)), nil
	}
	return nil, fmt.Errorf("segment: cannot evaluate %T", n)
}

func arith(op string, l, r any) (any, error) {
	if l == nil || r == nil {
		return nil, nil
	}
	sign := 1.0
	if op == "-" {
		sign = -1
	}
	switch a := l.(type) {
	case float64:
		return a + sign*r.(float64), nil
	case time.Time:
		return a.Add(time.Duration(sign) * r.(time.Duration)), nil
	case time.Duration:
		return a + time.Duration(sign)*r.(time.Duration), nil
	}
	return nil, fmt.Errorf("cannot apply %s to %T", op, l)
}

func compareValues(op string, on typ, l, r any) bool {
	if on == tNull || l == nil || r == nil {
		same := l == nil && r == nil
		if !same && l != nil && r != nil {
			same = cmp(on, l, r) == 0
		}
		switch op {
		case "==":
			return same
		case "!=":
			return !same
		}
		return false
	}
	c := cmp(on, l, r)
	switch op {
	case "==":
		return c == 0
	case "!=":
		return c != 0
	case "<":
		return c < 0
	case "<=":
		return c <= 0
	case ">":
		return c > 0
	case ">=":
		return c >= 0
	}
	return false
}

func cmp(on typ, l, r any) int {
	switch a := l.(type) {
	case float64:
		b := r.(float64)
		switch {
		case a < b:
			return -1
		case a > b:
			return 1
		}
		return 0
	case string:
		b := r.(string)
		switch {
		case a < b:
			return -1
		case a > b:
			return 1
		}
		return 0
	case time.Time:
		// The databases keep microseconds.
		return a.Truncate(time.Microsecond).Compare(r.(time.Time).Truncate(time.Microsecond))
	case bool:
		if a == r.(bool) {
			return 0
		}
		return 1
	}
	return 1
}
