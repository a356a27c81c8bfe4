package segment_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/uptrace/bun"

	"github.com/refrain-dev/refrain/plugin/customer"
	"github.com/refrain-dev/refrain/plugin/segment"
	"github.com/refrain-dev/refrain/plugin/store"
	"github.com/refrain-dev/refrain/plugin/store/storetest"
)

var now = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

// tricky strings: quotes, comments, semicolons, unicode. They appear as
// customer values and as rule literals.
var words = []string{"vegetarian", "vegan", "it's", `a"b`, "x'; DROP TABLE customers; --", "/* c */", "é", ""}

// zones are real time zones (half and quarter hours, southern summer time)
// and names that are not, read as UTC on every side.
var zones = []string{"Europe/Paris", "America/New_York", "Asia/Kolkata", "Asia/Kathmandu", "Australia/Lord_Howe",
	"Pacific/Chatham", "UTC", "Local", "europe/paris", "Mars/Olympus", ""}

func pick[T any](r *rand.Rand, xs ...T) T { return xs[r.IntN(len(xs))] }

// times is a small pool so that equal times occur.
func randTime(r *rand.Rand) *time.Time {
	if r.IntN(4) == 0 {
		return nil
	}
	t := now.Add(time.Duration(r.IntN(400)-300) * 12 * time.Hour)
	if r.IntN(3) == 0 {
		t = now.Add(-time.Duration(r.IntN(30)) * 24 * time.Hour)
	}
	return &t
}

func randJSON(r *rand.Rand) any {
	switch r.IntN(8) {
	case 0:
		return nil
	case 1:
		return pick(r, words...)
	case 2:
		return float64(r.IntN(5))
	case 3:
		return 2.5
	case 4:
		return r.IntN(2) == 0
	case 5:
		return []any{pick(r, words...), pick(r, words...), 3.0}
	case 6:
		return map[string]any{pick(r, words...): true, "vegan": 1.0}
	}
	return "cookbook"
}

func randCustomer(r *rand.Rand, i int) *customer.Customer {
	str := func() *string {
		if r.IntN(4) == 0 {
			return nil
		}
		s := pick(r, words...)
		return &s
	}
	zone := func() *string {
		if r.IntN(3) == 0 {
			return str()
		}
		z := pick(r, zones...)
		return &z
	}
	attrs, prefs := map[string]any{}, map[string]any{}
	for _, k := range []string{"diet", "n", "flag", "list"} {
		if r.IntN(3) > 0 {
			attrs[k] = randJSON(r)
		}
		if r.IntN(3) > 0 {
			prefs[k] = randJSON(r)
		}
	}
	var tags []string
	for _, t := range []string{"vip", "it's", "cookbook"} {
		if r.IntN(2) == 0 {
			tags = append(tags, t)
		}
	}
	created := now.Add(-time.Duration(r.IntN(100)) * 24 * time.Hour)
	return &customer.Customer{
		PublicID: fmt.Sprintf("c%d", i), Email: str(), FirstName: str(), Locale: str(),
		TimeZone: zone(), Currency: str(),
		Source:       pick(r, customer.Source("online"), customer.Source("store")),
		ConsentState: pick(r, customer.ConsentState("subscribed"), customer.ConsentState("unsubscribed"), customer.ConsentState("unknown")),
		ConsentProof: map[string]any{}, Attributes: attrs, Preferences: prefs, Tags: tags,
		OrdersCount: r.IntN(4), TotalSpentMinor: int64(r.IntN(5) * 2500),
		FirstOrderAt: randTime(r), LastOrderAt: randTime(r), LastOpenAt: randTime(r),
		LastClickAt: randTime(r), LastVisitAt: randTime(r),
		Stage:     pick(r, "SUBSCRIBER", "CUSTOMER", "AT_RISK"),
		CreatedAt: created, UpdatedAt: created,
	}
}

// gen writes random rules that check.
type gen struct{ r *rand.Rand }

func (g gen) lit() string {
	w := pick(g.r, words...)
	return strconv.Quote(w)
}

func (g gen) dur() string {
	return fmt.Sprintf("%s(%d)", pick(g.r, "days", "hours"), pick(g.r, 1, 3, 30, 90, 180, 400))
}

func (g gen) json() string {
	return pick(g.r, "attributes", "preferences") + "." + pick(g.r, "diet", "n", "flag", "list", "missing")
}

func (g gen) num(d int) string {
	switch g.r.IntN(10) {
	case 8:
		part := pick(g.r, "hour", "minute", "weekday", "day", "month", "year")
		if g.r.IntN(3) == 0 {
			return fmt.Sprintf("%s(%s, %q)", part, g.time(), pick(g.r, "Europe/Paris", "Asia/Kathmandu", "America/New_York", "UTC"))
		}
		return part + "(" + g.time() + ")"
	case 0:
		return "orders_count"
	case 1:
		return "total_spent"
	case 2:
		return pick(g.r, "0", "1", "2", "2.5", "5000", "-1")
	case 3:
		if d > 0 {
			return "(" + g.num(d-1) + " " + pick(g.r, "+", "-") + " " + g.num(d-1) + ")"
		}
		return "3"
	case 4:
		return fmt.Sprintf(`events(%s, %s)`, pick(g.r, `"order.created"`, `"survey.answered"`, `"x'y"`), g.dur())
	case 5:
		return pick(g.r, "opens", "clicks") + "(" + pick(g.r, "", g.dur()) + ")"
	case 6:
		return pick(g.r, `events("order.created")`, `bought("cookbook", `+g.dur()+`)`, `bought("Veg")`)
	case 7:
		return pick(g.r, "-orders_count", "loyalty_points")
	}
	return "(" + g.json() + " + 0)"
}

func (g gen) str() string {
	if g.r.IntN(2) == 0 {
		return g.lit()
	}
	return pick(g.r, "email", "first_name", "locale", "time_zone", "currency", "source", "consent", "stage", "loyalty_tier", `"online"`, `"subscribed"`, `"CUSTOMER"`, `"gold"`)
}

func (g gen) time() string {
	t := pick(g.r, "now", "created_at", "first_order_at", "last_order_at", "last_open_at", "last_click_at", "last_visit_at",
		`date("2026-10-25")`, `date("2026-03-29 02:30", "Europe/Paris")`, `date("2026-11-23T12:00:00", "Asia/Kathmandu")`)
	if g.r.IntN(2) == 0 {
		t += " " + pick(g.r, "+", "-") + " " + g.dur()
	}
	return t
}

func (g gen) cond(d int) string {
	op := pick(g.r, "==", "!=", "<", "<=", ">", ">=")
	k := g.r.IntN(12)
	if d <= 0 && k >= 8 {
		k = g.r.IntN(8)
	}
	switch k {
	case 0:
		return g.num(1) + " " + op + " " + g.num(1)
	case 1:
		return g.str() + " " + op + " " + g.str()
	case 2:
		return g.time() + " " + op + " " + g.time()
	case 3:
		return g.json() + " " + op + " " + pick(g.r, g.lit(), "2", "2.5", "0")
	case 4:
		return pick(g.r, g.json(), "email", "last_open_at", "first_name") + " " + pick(g.r, "==", "!=") + " " + pick(g.r, "null", "nil")
	case 5:
		if g.r.IntN(3) == 0 {
			return fmt.Sprintf("has(%s, %s)", pick(g.r, "attributes", "preferences"), pick(g.r, `"diet"`, `"n"`, `"flag"`, `"missing"`))
		}
		return fmt.Sprintf("has(%s, %s)", pick(g.r, "tags", g.json()), pick(g.r, g.lit(), `"vip"`, `"cookbook"`, `"diet"`))
	case 6:
		return pick(g.r, `"vip" in tags`, g.json(), g.json()+" == "+pick(g.r, "true", "false"))
	case 7:
		return pick(g.r, "true", "false")
	case 8, 9:
		return "(" + g.cond(d-1) + " " + pick(g.r, "&&", "||", "and", "or") + " " + g.cond(d-1) + ")"
	case 10:
		return "!(" + g.cond(d-1) + ")"
	}
	return "not (" + g.cond(d-1) + ")"
}

// memo caches event counts per customer and window: the rules of a run
// share now.
type memo struct {
	db    bun.IDB
	pk    int64
	cache map[string]int
}

func (m memo) CountEvents(ctx context.Context, q segment.CountQuery) (int, error) {
	key := fmt.Sprint(m.pk, q.Kind, q.Event, q.Product, q.Since.UnixNano())
	if n, ok := m.cache[key]; ok {
		return n, nil
	}
	n, err := segment.DBCounter{DB: m.db, PK: m.pk}.CountEvents(ctx, q)
	m.cache[key] = n
	return n, err
}

func (m memo) Loyalty(ctx context.Context) (int64, *string, error) {
	return segment.DBCounter{DB: m.db, PK: m.pk}.Loyalty(ctx)
}

func seed(t *testing.T, ctx context.Context, db bun.IDB, r *rand.Rand, n int) []*customer.Customer {
	t.Helper()
	cs := make([]*customer.Customer, n)
	for i := range cs {
		cs[i] = randCustomer(r, i)
		_, err := db.NewInsert().Model(cs[i]).Exec(ctx)
		require.NoError(t, err)
		// Loyalty is kept by the loyalty program in columns of its own.
		var tier any
		if k := r.IntN(4); k > 0 {
			tier = pick(r, "bronze", "silver", "gold")
		}
		_, err = db.NewUpdate().Table("customers").Set("loyalty_points = ?", r.IntN(3)*250).Set("loyalty_tier = ?", tier).
			Where("id = ?", cs[i].PK).Exec(ctx)
		require.NoError(t, err)
		for j := r.IntN(4); j > 0; j-- {
			e := &customer.Event{CustomerPK: cs[i].PK, Type: pick(r, "order.created", "survey.answered", "x'y"),
				OccurredAt: now.Add(-time.Duration(r.IntN(400*24)) * time.Hour), Properties: randProducts(r), Source: "test", CreatedAt: now}
			_, err := db.NewInsert().Model(e).Exec(ctx)
			require.NoError(t, err)
		}
		for j := r.IntN(4); j > 0; j-- {
			at := now.Add(-time.Duration(r.IntN(200*24)) * time.Hour)
			_, err := db.NewRaw(`INSERT INTO message_events (provider_event_id, provider, customer_id, kind, occurred_at, machine_open, created_at)
				VALUES (?, 'test', ?, ?, ?, ?, ?)`, fmt.Sprintf("%d-%d", i, j), cs[i].PK, pick(r, "opened", "clicked", "delivered"),
				at, r.IntN(3) == 0, now).Exec(ctx)
			require.NoError(t, err)
		}
	}
	// Read them back as the store gives them (JSON decoded, times rounded).
	require.NoError(t, db.NewSelect().Model(&cs).Order("id").Scan(ctx))
	return cs
}

// TestSQLMatchesMemory is the property test: for random customers and
// random rules, the SQL set equals the set of customers the in-memory
// evaluation accepts.
func TestSQLMatchesMemory(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *storetest.DB) {
		ctx := context.Background()
		r := rand.New(rand.NewPCG(7, 11))
		cs := seed(t, ctx, db, r, 80)
		caches := map[int64]map[string]int{}
		for _, c := range cs {
			caches[c.PK] = map[string]int{}
		}
		g := gen{r}
		nonEmpty, notAll := 0, 0
		for i := 0; i < 400; i++ {
			src := g.cond(3)
			rule, err := segment.Parse(src)
			require.NoError(t, err, src)
			got, err := rule.IDs(ctx, db, now)
			require.NoError(t, err, src)
			var want []int64
			for _, c := range cs {
				ok, err := rule.Match(ctx, c, now, memo{db, c.PK, caches[c.PK]})
				require.NoError(t, err, src)
				if ok {
					want = append(want, c.PK)
				}
			}
			if !equalIDs(got, want) {
				w, a := args(rule, db)
				t.Fatalf("rule %d %s\nSQL %v\nmemory %v\n%s %v", i, src, got, want, w, a)
			}
			if len(got) > 0 {
				nonEmpty++
			}
			if len(got) < len(cs) {
				notAll++
			}
		}
		// The generator must produce rules that discriminate.
		require.Greater(t, nonEmpty, 100)
		require.Greater(t, notAll, 100)
	})
}

func args(r *segment.Rule, db *storetest.DB) (string, []any) {
	return r.Where(store.DialectOf(db), now)
}

func equalIDs(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func randProducts(r *rand.Rand) map[string]any {
	switch r.IntN(4) {
	case 0:
		return map[string]any{}
	case 1:
		return map[string]any{"products": "cookbook"}
	}
	var items []any
	for i := r.IntN(3); i >= 0; i-- {
		items = append(items, pick[any](r, map[string]any{"title": "The Veggie COOKBOOK"}, map[string]any{"title": "Knife"},
			map[string]any{"title": 5.0}, "cookbook", map[string]any{"name": "cookbook"}, map[string]any{"title": "vegan it's"}))
	}
	return map[string]any{"products": items}
}

// TestLoyaltyFields: loyalty points and tier, kept by the loyalty program
// in columns of the customer row, give the same set in SQL and in memory.
func TestLoyaltyFields(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *storetest.DB) {
		ctx := context.Background()
		r := rand.New(rand.NewPCG(3, 5))
		cs := seed(t, ctx, db, r, 4)
		for i, set := range []struct {
			points int
			tier   any
		}{{0, nil}, {250, "bronze"}, {500, "silver"}, {1200, "gold"}} {
			_, err := db.NewUpdate().Table("customers").Set("loyalty_points = ?", set.points).Set("loyalty_tier = ?", set.tier).
				Where("id = ?", cs[i].PK).Exec(ctx)
			require.NoError(t, err)
		}
		for src, want := range map[string][]int64{
			`loyalty_points >= 500`:  {cs[2].PK, cs[3].PK},
			`loyalty_points == 0`:    {cs[0].PK},
			`loyalty_tier == "gold"`: {cs[3].PK},
			`loyalty_tier == null`:   {cs[0].PK},
			`(loyalty_tier == "silver" || loyalty_tier == "gold") && loyalty_points < 1000`: {cs[2].PK},
		} {
			rule, err := segment.Parse(src)
			require.NoError(t, err, src)
			got, err := rule.IDs(ctx, db, now)
			require.NoError(t, err, src)
			require.Equal(t, want, got, "SQL: "+src)
			var mem []int64
			for _, c := range cs {
				ok, err := rule.Match(ctx, c, now, segment.DBCounter{DB: db, PK: c.PK})
				require.NoError(t, err, src)
				if ok {
					mem = append(mem, c.PK)
				}
			}
			require.Equal(t, want, mem, "memory: "+src)
		}
		err := segment.Check(`loyalty_tier > 3`)
		require.Error(t, err, "a tier is a string")
	})
}
