package segment_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/refrain-dev/refrain/plugin/customer"
	"github.com/refrain-dev/refrain/plugin/segment"
	"github.com/refrain-dev/refrain/plugin/store/storetest"
)

func TestCheckErrorsHavePositions(t *testing.T) {
	for _, tc := range []struct {
		rule         string
		line, column int
		message      string
	}{
		{`orders_count > 0 && nickname == "x"`, 1, 21, `unknown field "nickname"`},
		{"orders_count > 0 &&\n  consent == 3", 2, 11, "cannot compare a string with a number"},
		{`orders_count == "one"`, 1, 14, "cannot compare a number with a string"},
		{`last_order_at < now - 90`, 1, 21, "cannot apply - to a time and a number"},
		{`orders_count`, 1, 1, "expected a condition, found a number"},
		{`upper(email) == "A"`, 1, 1, "unknown function upper"},
		{`len(tags) > 1`, 1, 1, "unknown function len"},
		{`days(orders_count) > days(1)`, 1, 6, "days needs a constant number"},
		{`has(tags, email)`, 1, 11, "has needs a constant string"},
		{`events(180) == 0`, 1, 8, "events needs an event type"},
		{`opens(3) == 0`, 1, 7, "the window must be a positive constant duration"},
		{`attributes == null`, 1, 1, "attributes needs a key"},
		{`attributes.diet == preferences.diet`, 1, 17, "not with another JSON field"},
		{`attributes.a.b == 1`, 1, 1, "field access works only as"},
		{`attributes["a'b"] == 1`, 1, 12, `key "a'b"`},
		{`attributes["x; DROP TABLE customers"] == 1`, 1, 12, "letters, digits"},
		{`orders_count > null`, 1, 14, "only == and != compare with null"},
		{`tags == null`, 1, 6, "a list is never null"},
		{`orders_count > 0 &&`, 1, 19, "unexpected token EOF"},
		{`consent == "a" ; consent == "b"`, 1, 18, "one expression"},
		{"consent ==\n  == 1", 2, 3, "unexpected token"},
		{`has(attributes, "a b")`, 1, 17, "has(attributes, KEY) needs a key"},
		{`customers.id == 1`, 1, 1, "field access works only as"},
		{`email matches "a.*"`, 1, 7, "unsupported operator matches"},
		{`"   "`, 1, 1, "expected a condition"},
		{``, 1, 1, "the rule is empty"},
		{`hour(email) > 3`, 1, 6, "hour needs a time first"},
		{`weekday(now, "Mars/Olympus") == 1`, 1, 14, `unknown time zone "Mars/Olympus"`},
		{`day(now, time_zone) == 1`, 1, 10, "day needs a constant time zone"},
		{`month() == 1`, 1, 1, "month takes 1 or 2 arguments, found 0"},
		{`created_at > date("24/12/2026")`, 1, 19, `date "24/12/2026": write YYYY-MM-DD`},
		{`created_at > date(email)`, 1, 19, "date needs a constant"},
		{`created_at > date("2026-12-24", "Local")`, 1, 33, `unknown time zone "Local"`},
	} {
		t.Run(tc.rule, func(t *testing.T) {
			err := segment.Check(tc.rule)
			var e *segment.Error
			require.True(t, errors.As(err, &e), "%v", err)
			require.Equal(t, tc.line, e.Line, e.Error())
			require.Equal(t, tc.column, e.Column, e.Error())
			require.Contains(t, e.Message, tc.message)
		})
	}
}

// TestLibraryRulesCheck: every audience, exit_when, if and trigger rule of
// the scenario library checks unchanged.
func TestLibraryRulesCheck(t *testing.T) {
	files, err := filepath.Glob("../../scenarios/library/*.yaml")
	require.NoError(t, err)
	require.NotEmpty(t, files)
	re := regexp.MustCompile(`(?m)^\s*(audience|exit_when|if):\s*(.+)$`)
	n := 0
	for _, f := range files {
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		for _, m := range re.FindAllStringSubmatch(string(b), -1) {
			require.NoError(t, segment.Check(m[2]), "%s: %s", f, m[2])
			n++
		}
	}
	require.Greater(t, n, 3)
	// and the rules the scenario tests and docs use
	for _, r := range []string{
		`consent == "subscribed" && orders_count > 0`,
		`orders_count == 0 && last_visit_at == null`,
		`has(tags, "vip") && preferences.diet == "vegetarian"`,
		`created_at < now - days(30) && total_spent >= 5000 && currency != null`,
		`last_open_at < now - hours(12) || !(stage == "AT_RISK")`,
		`has(attributes, "x") && -orders_count < 0 && (orders_count > 1) == true`,
	} {
		require.NoError(t, segment.Check(r), r)
	}
}

// TestInjectionStaysData: quotes, comments and semicolons in string
// literals are values, never SQL; the table survives and the answer is the
// same as in memory.
func TestInjectionStaysData(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *storetest.DB) {
		ctx := context.Background()
		evil := []string{
			`x'; DROP TABLE customers; --`, `' OR 1=1 --`, `"; DELETE FROM customers; /*`, `*/ OR TRUE --`,
			`\'); DROP TABLE customers; --`, `$1`, `?`, `'?'`, `%s`,
		}
		for i, s := range evil {
			name := s
			c := &customer.Customer{PublicID: "p" + string(rune('a'+i)), FirstName: &name, Source: "online", ConsentState: "unknown",
				ConsentProof: map[string]any{}, Attributes: map[string]any{"k": s}, Preferences: map[string]any{"l": []any{s}},
				Tags: []string{s}, Stage: "SUBSCRIBER", CreatedAt: now, UpdatedAt: now}
			_, err := db.NewInsert().Model(c).Exec(ctx)
			require.NoError(t, err)
		}
		for i, s := range evil {
			q := quote(s)
			for _, src := range []string{
				`first_name == ` + q,
				`attributes.k == ` + q + ` && has(tags, ` + q + `)`,
				q + ` in preferences.l && ` + q + ` in tags`,
				`events(` + q + `, days(1)) == 0 && first_name >= ` + q,
			} {
				rule, err := segment.Parse(src)
				require.NoError(t, err, src)
				ids, err := rule.IDs(ctx, db, now)
				require.NoError(t, err, src)
				if src[0] != 'e' {
					require.Len(t, ids, 1, src)
					require.EqualValues(t, i+1, ids[0], src)
				}
			}
		}
		n, err := db.NewSelect().Table("customers").Count(ctx)
		require.NoError(t, err)
		require.EqualValues(t, len(evil), n)
	})
}

func quote(s string) string {
	b := []byte{'"'}
	for _, r := range []byte(s) {
		if r == '"' || r == '\\' {
			b = append(b, '\\')
		}
		b = append(b, r)
	}
	return string(append(b, '"'))
}

func TestUsesTime(t *testing.T) {
	for rule, want := range map[string]bool{
		`orders_count == 0`:                     false,
		`last_open_at < now - days(90)`:         true,
		`events("order.created") == 0`:          false,
		`events("order.created", days(1)) == 0`: true,
		`opens(days(90)) == 0`:                  true,
	} {
		r, err := segment.Parse(rule)
		require.NoError(t, err)
		require.Equal(t, want, r.UsesTime(), rule)
	}
	_ = time.Now
}

// TestLocalTime: local parts of times in the customer's own time zone (UTC
// without one, or with a name that is not a time zone) or in a named one,
// and date literals, worked by hand, the same in SQL and in memory.
func TestLocalTime(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *storetest.DB) {
		ctx := context.Background()
		now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC) // a Monday
		at := func(s string) *time.Time {
			v, err := time.Parse(time.RFC3339, s)
			require.NoError(t, err)
			return &v
		}
		zone := func(s string) *string { return &s }
		mk := func(id string, tz *string, lastOrder *time.Time, created time.Time) *customer.Customer {
			return &customer.Customer{PublicID: id, TimeZone: tz, Source: "online", ConsentState: "subscribed", Stage: "CUSTOMER",
				ConsentProof: map[string]any{}, Attributes: map[string]any{}, Preferences: map[string]any{}, Tags: []string{},
				LastOrderAt: lastOrder, CreatedAt: created, UpdatedAt: created}
		}
		cs := []*customer.Customer{
			// 17:30 UTC is 19:30 in Paris (summer time); created on Sunday 1 November 00:30 in Paris (Saturday 23:30 UTC).
			mk("paris", zone("Europe/Paris"), at("2026-06-01T17:30:00Z"), *at("2026-10-31T23:30:00Z")),
			// the same instants in UTC: 17:30, and created on Saturday 31 October.
			mk("utc", nil, at("2026-06-01T17:30:00Z"), *at("2026-10-31T23:30:00Z")),
			// 12:15 UTC is 18:00 in Kathmandu (+05:45); created on Sunday 23 November 2025 in Kathmandu: an anniversary today.
			mk("kathmandu", zone("Asia/Kathmandu"), at("2026-06-01T12:15:00Z"), *at("2025-11-22T20:00:00Z")),
			// not a time zone: read as UTC, so 12:15 and created on 22 November.
			mk("bad", zone("Mars/Olympus"), at("2026-06-01T12:15:00Z"), *at("2025-11-22T20:00:00Z")),
			// no order; created on Sunday 1 November 07:00 in New York.
			mk("none", zone("America/New_York"), nil, *at("2026-11-01T12:00:00Z")),
		}
		for _, c := range cs {
			_, err := db.NewInsert().Model(c).Exec(ctx)
			require.NoError(t, err)
		}
		ids := func(names ...string) []string { return names }
		for _, tc := range []struct {
			rule string
			want []string
		}{
			{`hour(last_order_at) >= 18`, ids("paris", "kathmandu")},
			{`hour(last_order_at, "Europe/Paris") >= 18`, ids("paris", "utc")},
			{`minute(last_order_at) == 15`, ids("bad")},
			{`minute(last_order_at) == 0`, ids("kathmandu")},
			{`weekday(created_at) == 7`, ids("paris", "kathmandu", "none")},
			{`weekday(created_at) == 6`, ids("utc", "bad")},
			{`day(created_at) == day(now) && month(created_at) == month(now)`, ids("kathmandu")},
			{`year(created_at) == 2025`, ids("kathmandu", "bad")},
			// 12:15 UTC minus 18 hours is midnight, 1 June, in Kathmandu; minus 19 hours is 31 May.
			{`month(last_order_at - hours(18), "Asia/Kathmandu") == 5`, nil},
			{`month(last_order_at - hours(19), "Asia/Kathmandu") == 5`, ids("kathmandu", "bad")},
			{`created_at >= date("2026-11-01", "Europe/Paris")`, ids("paris", "utc", "none")},
			{`created_at >= date("2026-11-01")`, ids("none")},
			{`created_at < date("2026-10-31 23:30:01") - days(300)`, ids("kathmandu", "bad")},
			// now is 13:00 in Paris, 17:45 in Kathmandu, 07:00 in New York, 17:30 in Kolkata.
			{`hour(now) == 12 && hour(now, "Asia/Kolkata") == 17 && minute(now, "Asia/Kolkata") == 30`, ids("utc", "bad")},
			{`hour(now) >= 9 && hour(now) < 18`, ids("paris", "utc", "kathmandu", "bad")},
			{`hour(last_order_at) == null`, ids("none")},
		} {
			rule, err := segment.Parse(tc.rule)
			require.NoError(t, err, tc.rule)
			got, err := rule.IDs(ctx, db, now)
			require.NoError(t, err, tc.rule)
			var sqlNames, memNames []string
			for _, c := range cs {
				for _, id := range got {
					if id == c.PK {
						sqlNames = append(sqlNames, c.PublicID)
					}
				}
				ok, err := rule.Match(ctx, c, now, nil)
				require.NoError(t, err, tc.rule)
				if ok {
					memNames = append(memNames, c.PublicID)
				}
			}
			require.ElementsMatch(t, tc.want, sqlNames, "SQL: "+tc.rule)
			require.ElementsMatch(t, tc.want, memNames, "memory: "+tc.rule)
		}
	})
}
