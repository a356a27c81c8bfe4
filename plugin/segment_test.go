package plugin_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/refrain-dev/refrain/plugin/customer"
	"github.com/refrain-dev/refrain/plugin/store/storetest"
)

// readmeRules returns the ```rule blocks of the README's Segments section.
func readmeRules(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile("../README.md")
	require.NoError(t, err)
	re := regexp.MustCompile("(?s)```rule\n(.*?)\n```")
	var out []string
	for _, m := range re.FindAllStringSubmatch(string(b), -1) {
		out = append(out, m[1])
	}
	return out
}

type segCustomer struct {
	name string
	mod  func(c *customer.Customer)
	// events: order.created events with product titles, days ago
	orders map[int]string
}

// TestReadmeSegmentExamples saves each README example through GraphQL and
// checks who it holds: one customer made to match each example, and the
// near misses that must not.
func TestReadmeSegmentExamples(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *storetest.DB) {
		e := newEnv(t, db, nil)
		ctx := context.Background()
		now := e.clock.Now()
		ago := func(d int) *time.Time { v := now.Add(-time.Duration(d) * 24 * time.Hour); return &v }
		subscribed := func(c *customer.Customer) { c.ConsentState = customer.ConsentSubscribed }
		rules := readmeRules(t)
		require.Len(t, rules, 4, "the README shows four examples")
		cases := [][]segCustomer{
			{ // sunset
				{"sunset-in", func(c *customer.Customer) { subscribed(c); c.LastOpenAt = ago(100); c.LastOrderAt = ago(200) }, nil},
				{"sunset-opened", func(c *customer.Customer) { subscribed(c); c.LastOpenAt = ago(10) }, nil},
				{"sunset-ordered", func(c *customer.Customer) { subscribed(c); c.LastOrderAt = ago(170) }, nil},
				{"sunset-new", func(c *customer.Customer) { subscribed(c); c.CreatedAt = *ago(20) }, nil},
				// Signed up long ago, imported 20 days ago: no evidence yet.
				{"sunset-imported", func(c *customer.Customer) { subscribed(c); c.ObservedSince = ago(20) }, nil},
			},
			{ // registered over 30 days ago, no order
				{"registered-in", func(c *customer.Customer) { c.CreatedAt = *ago(31) }, nil},
				{"registered-recent", func(c *customer.Customer) { c.CreatedAt = *ago(29) }, nil},
				{"registered-ordered", func(c *customer.Customer) { c.CreatedAt = *ago(31); c.OrdersCount = 1 }, nil},
			},
			{ // vegetarian and a cookbook order in the last year
				{"veg-in", func(c *customer.Customer) { c.Preferences = map[string]any{"diet": "vegetarian"} }, map[int]string{40: "The Green Cookbook"}},
				{"veg-old-order", func(c *customer.Customer) { c.Preferences = map[string]any{"diet": "vegetarian"} }, map[int]string{400: "The Green Cookbook"}},
				{"veg-no-cookbook", func(c *customer.Customer) { c.Preferences = map[string]any{"diet": "vegetarian"} }, map[int]string{40: "Chef knife"}},
				{"meat-cookbook", func(c *customer.Customer) { c.Preferences = map[string]any{"diet": "omnivore"} }, map[int]string{40: "BBQ cookbook"}},
			},
			{ // signed up in store
				{"store-in", func(c *customer.Customer) { subscribed(c); c.Source = customer.SourceStore; c.CreatedAt = *ago(1) }, nil},
				{"online", func(c *customer.Customer) { subscribed(c); c.CreatedAt = *ago(1) }, nil},
			},
		}
		pks := map[string]int64{}
		for _, group := range cases {
			for _, sc := range group {
				c := &customer.Customer{PublicID: sc.name, Source: customer.SourceOnline, ConsentState: customer.ConsentUnknown,
					ConsentProof: map[string]any{}, Attributes: map[string]any{}, Preferences: map[string]any{}, Tags: []string{},
					Stage: "SUBSCRIBER", CreatedAt: *ago(300), UpdatedAt: now}
				sc.mod(c)
				if c.ObservedSince == nil {
					c.ObservedSince = &c.CreatedAt
				}
				_, err := db.NewInsert().Model(c).Exec(ctx)
				require.NoError(t, err)
				pks[sc.name] = c.PK
				for d, title := range sc.orders {
					_, _, err := customer.AppendEvent(ctx, db, now, c.PK, customer.EventInput{Type: "order.created", OccurredAt: *ago(d),
						Properties: map[string]any{"products": []any{map[string]any{"title": title}}}})
					require.NoError(t, err)
				}
			}
		}
		for i, rule := range rules {
			res := e.do(testBootstrapKey, `mutation($n: String!, $r: String!) { refrain { upsertSegment(input: { name: $n, rule: $r }) {
				segment { id rule count members(first: 50) { nodes { customer { id } } } } userErrors { message line column } } } }`,
				map[string]any{"n": fmt.Sprintf("readme-%d", i), "r": rule})
			var out struct {
				Refrain struct {
					UpsertSegment struct {
						Segment struct {
							ID, Rule string
							Count    int
							Members  struct {
								Nodes []struct{ Customer struct{ ID string } }
							}
						}
						UserErrors []any
					}
				}
			}
			res.decode(t, &out)
			seg := out.Refrain.UpsertSegment
			require.Empty(t, seg.UserErrors, rule)
			require.Equal(t, rule, seg.Segment.Rule)
			var got []string
			for _, n := range seg.Segment.Members.Nodes {
				got = append(got, n.Customer.ID)
			}
			// The matching customer is the group's first; customers of other
			// groups may match too, the near misses of this group never.
			group := cases[i]
			require.Contains(t, got, group[0].name, rule)
			for _, miss := range group[1:] {
				require.NotContains(t, got, miss.name, rule)
			}
			require.Equal(t, len(got), seg.Segment.Count)

			// previewSegment gives the same count without saving.
			res = e.do(testBootstrapKey, `query($r: String!) { refrain { previewSegment(rule: $r, sample: 100) { preview { count sample { id } } userErrors { message } } } }`,
				map[string]any{"r": rule})
			var pv struct {
				Refrain struct {
					PreviewSegment struct {
						Preview struct {
							Count  int
							Sample []struct{ ID string }
						}
					}
				}
			}
			res.decode(t, &pv)
			require.Equal(t, len(got), pv.Refrain.PreviewSegment.Preview.Count, rule)
			require.Len(t, pv.Refrain.PreviewSegment.Preview.Sample, len(got))
		}
		// The seeded sunset segment holds the same rule as the first example.
		res := e.do(testBootstrapKey, `{ refrain { segments { name rule } } }`, nil)
		require.Contains(t, string(res.Data), `{"name":"sunset","rule":`+mustJSON(rules[0])+`}`)

		// Customer.segments after a sweep.
		_, err := e.p.SweepSegments(ctx)
		require.NoError(t, err)
		res = e.do(testBootstrapKey, `{ refrain { customers(first: 50) { nodes { id segments { name } } } } }`, nil)
		require.Contains(t, string(res.Data), `{"id":"sunset-in","segments":[{"name":"sunset"},{"name":"readme-0"},{"name":"readme-1"}]}`)
	})
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// TestSegmentGraphQLErrors: bad rules are userErrors with their position,
// injection attempts are data, reads need the admin scope.
func TestSegmentGraphQLErrors(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *storetest.DB) {
		e := newEnv(t, db, nil)
		q := `mutation($r: String!) { refrain { upsertSegment(input: { name: "x", rule: $r }) { segment { id } userErrors { field message code line column } } } }`
		res := e.do(testBootstrapKey, q, map[string]any{"r": "orders_count > 0 &&\n  nickname == \"x\""})
		require.Contains(t, string(res.Data), `"userErrors":[{"code":"INVALID","column":3,"field":["input","rule"],"line":2,"message":"line 2, column 3: unknown field \"nickname\""}]`)
		res = e.do(testBootstrapKey, q, map[string]any{"r": `first_name == "'; DROP TABLE customers; --"`})
		require.Contains(t, string(res.Data), `"userErrors":[]`)
		res = e.do(testBootstrapKey, `{ refrain { previewSegment(rule: "attributes[\"a'b\"] == 1") { preview { count } userErrors { line column message } } } }`, nil)
		require.Contains(t, string(res.Data), `"column":12,"line":1`)
		n, err := db.NewSelect().Table("customers").Count(context.Background())
		require.NoError(t, err)
		require.Zero(t, n)
		read, _ := e.apiKey("read")
		res = e.do(read, q, map[string]any{"r": "true"})
		require.Equal(t, []string{"FORBIDDEN"}, res.codes())
		res = e.do(testBootstrapKey, `mutation { refrain { deleteSegment(id: "999") { deletedId userErrors { code } } } }`, nil)
		require.Contains(t, string(res.Data), `"code":"NOT_FOUND"`)
	})
}

// TestOrderWebhookExitsSunsetOnceOnTwoReplicas: a customer in the sunset
// segment orders; two replicas on one database process the webhook and
// sweep at the same time; the customer leaves once, with one
// segment.exited.
func TestOrderWebhookExitsSunsetOnceOnTwoReplicas(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *storetest.DB) {
		ctx := context.Background()
		a := newHooks(t, db, nil)
		other := &storetest.DB{DB: db.Reopen(t), URL: db.URL, SearchPath: db.SearchPath}
		b := newHooks(t, other, nil)
		b.clock.Set(a.clock.Now())
		now := a.clock.Now()
		email := "john@example.com"
		created := now.Add(-200 * 24 * time.Hour)
		c := &customer.Customer{PublicID: "john", Email: &email, EmailNormalized: &email, Source: customer.SourceOnline,
			ConsentState: customer.ConsentSubscribed, ConsentProof: map[string]any{}, Attributes: map[string]any{},
			Preferences: map[string]any{}, Tags: []string{}, Stage: "SUBSCRIBER", ObservedSince: &created, CreatedAt: created, UpdatedAt: created}
		_, err := db.NewInsert().Model(c).Exec(ctx)
		require.NoError(t, err)
		_, err = a.p.SweepSegments(ctx)
		require.NoError(t, err)
		require.Equal(t, 1, a.events(c.PK, "segment.entered"))

		var order map[string]any
		require.NoError(t, json.Unmarshal(readWebhookFixture(t, "shopify_orders_create.json"), &order))
		at := now.Add(-time.Hour).Format(time.RFC3339)
		order["created_at"], order["processed_at"], order["updated_at"] = at, at, at
		order["financial_status"], order["cancelled_at"] = "paid", nil
		body, err := json.Marshal(order)
		require.NoError(t, err)
		require.Less(t, a.deliver("shopify", "orders/create", body).Code, 300)

		errs := make(chan error, 4)
		for _, h := range []*hooks{a, b} {
			go func() { _, err := h.p.ProcessInbox(ctx); errs <- err }()
			go func() { _, err := h.p.SweepSegments(ctx); errs <- err }()
		}
		for range 4 {
			if err := <-errs; err != nil && !busy(err) {
				require.NoError(t, err)
			}
		}
		_, err = b.p.ProcessInbox(ctx)
		require.NoError(t, err)
		_, err = a.p.SweepSegments(ctx)
		require.NoError(t, err)
		got, err := customer.Get(ctx, db, c.PK)
		require.NoError(t, err)
		require.NotNil(t, got.LastOrderAt, "the order reached the customer")
		require.Equal(t, 1, a.events(c.PK, "segment.exited"))
		require.Equal(t, 1, a.events(c.PK, "segment.entered"))
	})
}

// busy reports an SQLite lock error met by the second writer; its next
// pass retries.
func busy(err error) bool {
	return err != nil && (strings.Contains(err.Error(), "SQLITE_BUSY") || strings.Contains(err.Error(), "database is locked"))
}
