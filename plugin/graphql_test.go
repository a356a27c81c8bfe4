package plugin_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/refrain-dev/refrain/plugin"
	"github.com/refrain-dev/refrain/plugin/auth"
	"github.com/refrain-dev/refrain/plugin/customer"
	"github.com/refrain-dev/refrain/plugin/store/storetest"
	"github.com/stretchr/testify/require"
)

func ptr(s string) *string { return &s }

const customerQuery = `query($id: ID) { refrain { customer(id: $id) { id profile { email firstName } lifecycle { stage ordersCount } } } }`

func TestAccessControl(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *storetest.DB) {
		e := newEnv(t, db, nil)
		ctx := context.Background()
		ann, _, err := customer.Upsert(ctx, db, t0, customer.Profile{ExternalID: ptr("gid://shopify/Customer/1"),
			ExternalSource: ptr("shopify"), Email: ptr("ann@example.com"), FirstName: ptr("Ann")})
		require.NoError(t, err)
		_, _, err = customer.Upsert(ctx, db, t0, customer.Profile{ExternalID: ptr("gid://shopify/Customer/2"),
			ExternalSource: ptr("shopify"), Email: ptr("ben@example.com")})
		require.NoError(t, err)

		readKey, _ := e.apiKey("read")
		writeKey, _ := e.apiKey("write")
		revokedKey, revoked := e.apiKey("read,write")
		_, err = auth.KeyStore{DB: db}.Revoke(ctx, t0, fmt.Sprint(revoked.ID))
		require.NoError(t, err)
		annToken := e.customerToken("gid://shopify/Customer/1", time.Hour, testJWTSecret)
		annByRefrainID := e.customerToken(ann.PublicID, time.Hour, testJWTSecret)
		expired := e.customerToken("gid://shopify/Customer/1", -time.Hour, testJWTSecret)
		forged := e.customerToken("gid://shopify/Customer/1", time.Hour, "another-secret-of-enough-length-0123456789")
		unseen := e.customerToken("gid://shopify/Customer/999", time.Hour, testJWTSecret)

		list := `{ refrain { customers { nodes { id } } } }`
		upsert := `mutation { refrain { upsertCustomer(input: {email: "new@example.com"}) { created userErrors { message } } } }`
		cases := []struct {
			name   string
			bearer string
			query  string
			vars   map[string]any
			code   string // expected error code, "" for success
			want   string // a substring of the data on success
		}{
			{"public field without token", "", `{ refrain { version } }`, nil, "", `"version":"dev"`},
			{"no token", "", list, nil, "UNAUTHENTICATED", ""},
			{"read key lists", readKey, list, nil, "", "gid://shopify/Customer/2"},
			{"read key cannot write", readKey, upsert, nil, "FORBIDDEN", ""},
			{"write key writes", writeKey, upsert, nil, "", `"created":true`},
			{"write key reads too", writeKey, list, nil, "", "gid://shopify/Customer/1"},
			{"revoked key", revokedKey, list, nil, "UNAUTHENTICATED", ""},
			{"unknown key", "rfn_abcdefgh_" + strings.Repeat("A", 43), list, nil, "UNAUTHENTICATED", ""},
			{"bootstrap key", testBootstrapKey, list, nil, "", "gid://shopify/Customer/1"},
			{"customer reads self", annToken, customerQuery, map[string]any{"id": "gid://shopify/Customer/1"}, "", `"email":"ann@example.com"`},
			{"customer reads self by refrain id", annToken, customerQuery, map[string]any{"id": ann.PublicID}, "", `"firstName":"Ann"`},
			{"token naming refrain id", annByRefrainID, `{ refrain { me { id profile { email } } } }`, nil, "", `"email":"ann@example.com"`},
			{"customer reads me", annToken, `{ refrain { me { id profile { firstName } } } }`, nil, "", `"firstName":"Ann"`},
			{"customer reads another", annToken, customerQuery, map[string]any{"id": "gid://shopify/Customer/2"}, "FORBIDDEN", ""},
			{"customer probes a missing id", annToken, customerQuery, map[string]any{"id": "gid://shopify/Customer/404"}, "FORBIDDEN", ""},
			{"customer cannot list", annToken, list, nil, "FORBIDDEN", ""},
			{"customer cannot look up by email", annToken, `{ refrain { customer(email: "ben@example.com") { id } } }`, nil, "FORBIDDEN", ""},
			{"expired token", expired, `{ refrain { me { id } } }`, nil, "UNAUTHENTICATED", ""},
			{"bad signature", forged, `{ refrain { me { id } } }`, nil, "UNAUTHENTICATED", ""},
			{"garbage token", "not-a-token", `{ refrain { me { id } } }`, nil, "UNAUTHENTICATED", ""},
			{"bad credentials even on a public field's neighbour", forged, `{ refrain { version customers { nodes { id } } } }`, nil, "UNAUTHENTICATED", ""},
			{"unseen store customer reads self", unseen, `{ refrain { me { id lifecycle { stage ordersCount } } } }`, nil, "", `"id":"gid://shopify/Customer/999"`},
			{"admin has no me", readKey, `{ refrain { me { id } } }`, nil, "FORBIDDEN", ""},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				res := e.do(c.bearer, c.query, c.vars)
				if c.code == "" {
					require.Empty(t, res.Errors, "errors: %+v", res.Errors)
					require.Contains(t, string(res.Data), c.want)
					return
				}
				require.NotEmpty(t, res.Errors)
				require.Equal(t, c.code, res.codes()[0])
				// A refusal never leaks another customer's data.
				require.NotContains(t, string(res.Data), "ben@example.com")
				for _, er := range res.Errors {
					require.NotContains(t, er.Message, "ben@example.com")
					require.NotContains(t, er.Message, "Customer/2")
				}
			})
		}

		// Entities: the gateway resolves any customer, but the fields are
		// still guarded: a customer token gets its own, not another's.
		q := `query($r: [_Any!]!) { _entities(representations: $r) { ... on Customer { id profile { email } } } }`
		reps := []any{map[string]any{"__typename": "Customer", "id": "gid://shopify/Customer/2"}}
		res := e.do(annToken, q, map[string]any{"r": reps})
		require.Equal(t, []string{"FORBIDDEN"}, res.codes())
		require.NotContains(t, string(res.Data), "ben@example.com")
	})
}

// Customer tokens verified with keys from a JWKS address: RS256 and ES256,
// and a rotation that the verifier picks up on the new kid.
func TestCustomerTokensFromJWKS(t *testing.T) {
	db := storetest.SQLite(t)
	srv := newJWKSServer(t)
	k1, k2, ec := mustRSA(t), mustRSA(t), mustEC(t)
	srv.setRSA("k1", &k1.PublicKey)
	srv.addEC("e1", &ec.PublicKey)
	e := newEnv(t, db, func(c *plugin.Config) { c.JWTSecret = ""; c.JWKSURL = srv.serve.URL + "/.well-known/jwks.json" })
	me := `{ refrain { me { id } } }`
	exp := e.clock.Now().Add(time.Hour)

	res := e.do(signWith(t, jwt.SigningMethodRS256, "k1", k1, "cust-1", exp), me, nil)
	require.Empty(t, res.Errors)
	require.Contains(t, string(res.Data), `"id":"cust-1"`)
	res = e.do(signWith(t, jwt.SigningMethodES256, "e1", ec, "cust-2", exp), me, nil)
	require.Empty(t, res.Errors)
	require.Contains(t, string(res.Data), `"id":"cust-2"`)

	// An HS256 token cannot pass where only JWKS is configured.
	res = e.do(e.customerToken("cust-1", time.Hour, testJWTSecret), me, nil)
	require.Equal(t, []string{"UNAUTHENTICATED"}, res.codes())

	// The issuer rotates to k2: a token with the new kid triggers a refetch.
	srv.setRSA("k2", &k2.PublicKey)
	e.clock.Advance(2 * time.Minute) // past the minimum refresh interval
	res = e.do(signWith(t, jwt.SigningMethodRS256, "k2", k2, "cust-3", e.clock.Now().Add(time.Hour)), me, nil)
	require.Empty(t, res.Errors)
	require.Contains(t, string(res.Data), `"id":"cust-3"`)
	// A token signed by k1 with kid k2 fails: the key no longer matches.
	res = e.do(signWith(t, jwt.SigningMethodRS256, "k2", k1, "cust-1", e.clock.Now().Add(time.Hour)), me, nil)
	require.Equal(t, []string{"UNAUTHENTICATED"}, res.codes())
}

func TestEntitiesBatchConstantQueries(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *storetest.DB) {
		e := newEnv(t, db, nil)
		ctx := context.Background()
		for i := 0; i < 100; i++ {
			_, _, err := customer.Upsert(ctx, db, t0, customer.Profile{ExternalID: ptr(fmt.Sprintf("gid://shopify/Customer/%d", i)),
				ExternalSource: ptr("shopify"), Email: ptr(fmt.Sprintf("c%d@example.com", i))})
			require.NoError(t, err)
		}
		counter := storetest.CountQueries(db.DB)
		q := `query($r: [_Any!]!) { _entities(representations: $r) { ... on Customer { id lifecycle { stage ordersCount } profile { email } } } }`
		run := func(n int) (int64, string) {
			reps := make([]any, n)
			for i := range reps {
				reps[i] = map[string]any{"__typename": "Customer", "id": fmt.Sprintf("gid://shopify/Customer/%d", i)}
			}
			counter.Start()
			res := e.do(testBootstrapKey, q, map[string]any{"r": reps})
			queries := counter.Stop()
			require.Empty(t, res.Errors)
			return queries, string(res.Data)
		}
		q10, _ := run(10)
		q100, data := run(100)
		require.Equal(t, q10, q100, "the entity resolver batches: same number of SQL queries for 10 and 100")
		require.LessOrEqual(t, q100, int64(3))
		require.Contains(t, data, "c99@example.com")

		// A store customer never seen: an empty lifecycle, not an error.
		res := e.do(testBootstrapKey, q, map[string]any{"r": []any{map[string]any{"__typename": "Customer", "id": "gid://shopify/Customer/77777"}}})
		require.Empty(t, res.Errors)
		require.JSONEq(t, `{"_entities":[{"id":"gid://shopify/Customer/77777","lifecycle":{"stage":"SUBSCRIBER","ordersCount":0},"profile":null}]}`, string(res.Data))
	})
}

func TestServiceSDLComposesWithStoreGraph(t *testing.T) {
	e := newEnv(t, storetest.SQLite(t), nil)
	var out struct {
		Service struct{ SDL string } `json:"_service"`
	}
	e.do("", `{ _service { sdl } }`, nil).decode(t, &out)
	sdl := out.Service.SDL
	require.Contains(t, sdl, `extend schema @link(url: "https://specs.apollo.dev/federation/v2.7"`)
	require.Contains(t, sdl, `type Customer @key(fields: "id")`)
	for _, f := range fieldsOf(sdl, "Customer") {
		for _, storeField := range []string{"email", "firstName", "lastName"} {
			require.False(t, strings.HasPrefix(f, storeField+":"), "Customer must not redefine the store field %s", storeField)
		}
	}

	requireNode(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "refrain.graphql")
	require.NoError(t, os.WriteFile(path, []byte(sdl), 0o600))
	cmd := exec.Command("node", "compose.mjs", "store=store.graphql", "refrain="+path)
	cmd.Dir = "../e2e/federation"
	outb, err := cmd.CombinedOutput()
	require.NoError(t, err, "composition failed:\n%s", outb)
	require.Contains(t, string(outb), "join__graph")
	require.Contains(t, string(outb), "refrain: RefrainQuery!")
}

func TestCustomersTrackAndUpsert(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *storetest.DB) {
		e := newEnv(t, db, nil)
		key, _ := e.apiKey("read,write")
		up := `mutation($in: UpsertCustomerInput!) { refrain { upsertCustomer(input: $in) { created customer { id profile { email tags attributes source } } userErrors { field message code } } } }`
		for i, email := range []string{"a@shop.example", "b@shop.example", "c@other.example"} {
			var r struct {
				Refrain struct {
					UpsertCustomer struct{ Created bool } `json:"upsertCustomer"`
				} `json:"refrain"`
			}
			e.do(key, up, map[string]any{"in": map[string]any{"email": email, "tags": []string{fmt.Sprintf("t%d", i%2)},
				"attributes": map[string]any{"n": i}, "source": "store"}}).decode(t, &r)
			require.True(t, r.Refrain.UpsertCustomer.Created)
		}
		res := e.do(key, up, map[string]any{"in": map[string]any{"email": "not an email"}})
		require.Contains(t, string(res.Data), `"code":"INVALID"`)
		require.Contains(t, string(res.Data), `"field":["input","email"]`)
		res = e.do(key, up, map[string]any{"in": map[string]any{"email": "tz@shop.example", "timeZone": "Mars/Base"}})
		require.Contains(t, string(res.Data), `"field":["input","timeZone"]`)

		var page struct {
			Refrain struct {
				Customers struct {
					Nodes    []struct{ ID string }
					PageInfo struct {
						HasNextPage bool
						EndCursor   string
					}
				}
			}
		}
		e.do(key, `{ refrain { customers(first: 2, filter: {emailContains: "shop.example"}) { nodes { id } pageInfo { hasNextPage endCursor } } } }`, nil).decode(t, &page)
		require.Len(t, page.Refrain.Customers.Nodes, 2)
		require.False(t, page.Refrain.Customers.PageInfo.HasNextPage, "the invalid addresses were never stored")
		e.do(key, `{ refrain { customers(first: 2, filter: {emailContains: "EXAMPLE"}) { nodes { id } pageInfo { hasNextPage endCursor } } } }`, nil).decode(t, &page)
		require.True(t, page.Refrain.Customers.PageInfo.HasNextPage)
		e.do(key, `query($a: String) { refrain { customers(first: 2, after: $a, filter: {emailContains: "example"}) { nodes { id } pageInfo { hasNextPage } } } }`,
			map[string]any{"a": page.Refrain.Customers.PageInfo.EndCursor}).decode(t, &page)
		require.Len(t, page.Refrain.Customers.Nodes, 1)
		require.False(t, page.Refrain.Customers.PageInfo.HasNextPage)
		res = e.do(key, `{ refrain { customers(first: 1000) { nodes { id } } } }`, nil)
		require.Equal(t, []string{"BAD_USER_INPUT"}, res.codes())
		res = e.do(key, `{ refrain { customers(after: "nope") { nodes { id } } } }`, nil)
		require.Equal(t, []string{"BAD_USER_INPUT"}, res.codes())

		track := `mutation($in: TrackEventInput!) { refrain { trackEvent(input: $in) { created event { id type properties } userErrors { field code } } } }`
		in := map[string]any{"email": "a@shop.example", "type": "page.viewed", "properties": map[string]any{"path": "/sale"}, "idempotencyKey": "v-1"}
		res = e.do(key, track, map[string]any{"in": in})
		require.Empty(t, res.Errors)
		require.Contains(t, string(res.Data), `"created":true`)
		res = e.do(key, track, map[string]any{"in": in})
		require.Contains(t, string(res.Data), `"created":false`, "same idempotency key: nothing added")
		in["type"] = "Bad Type"
		res = e.do(key, track, map[string]any{"in": in})
		require.Contains(t, string(res.Data), `"field":["input","type"]`)

		// A customer tracks its own event; naming another is refused.
		tok := e.customerToken("gid://shopify/Customer/55", time.Hour, testJWTSecret)
		res = e.do(tok, track, map[string]any{"in": map[string]any{"type": "page.viewed"}})
		require.Empty(t, res.Errors)
		res = e.do(tok, track, map[string]any{"in": map[string]any{"type": "page.viewed", "customerId": "gid://shopify/Customer/56"}})
		require.Equal(t, []string{"FORBIDDEN"}, res.codes())
		var events struct {
			Refrain struct {
				Me struct {
					Events struct{ Nodes []struct{ Type string } }
				}
			}
		}
		e.do(tok, `{ refrain { me { events { nodes { type } } } } }`, nil).decode(t, &events)
		require.Equal(t, "page.viewed", events.Refrain.Me.Events.Nodes[0].Type)
	})
}

func TestQueryLimits(t *testing.T) {
	db := storetest.SQLite(t)
	e := newEnv(t, db, func(c *plugin.Config) { c.QueryMaxDepth = 4; c.QueryMaxComplexity = 500 })
	res := e.do(testBootstrapKey, `{ refrain { customers(first: 1) { nodes { events(first: 1) { nodes { id } } } } } }`, nil)
	require.Equal(t, []string{"QUERY_TOO_DEEP"}, res.codes())
	res = e.do(testBootstrapKey, `{ refrain { customers(first: 400) { nodes { id profile { email } } } } }`, nil)
	require.Equal(t, []string{"COMPLEXITY_LIMIT_EXCEEDED"}, res.codes())
	res = e.do("", `{ __schema { types { name } } }`, nil)
	require.Empty(t, res.Errors, "introspection is on by default")

	closed := newEnv(t, storetest.SQLite(t), func(c *plugin.Config) { c.Introspection = false })
	res = closed.do("", `{ __schema { types { name } } }`, nil)
	require.NotEmpty(t, res.Errors)
	require.Contains(t, res.Errors[0].Message, "introspection")
}

func TestOperationalRoutes(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *storetest.DB) {
		e := newEnv(t, db, nil)
		get := func(path string, header ...string) (int, string) {
			req := httptest.NewRequest(http.MethodGet, path, nil)
			if len(header) == 2 {
				req.Header.Set(header[0], header[1])
			}
			rec := httptest.NewRecorder()
			e.p.Handler().ServeHTTP(rec, req)
			return rec.Code, rec.Body.String()
		}
		code, body := get("/healthz")
		require.Equal(t, http.StatusOK, code)
		require.Contains(t, body, "ok")
		code, body = get("/readyz")
		require.Equal(t, http.StatusOK, code, body)
		e.do("", `{ refrain { customers { nodes { id } } } }`, nil)
		code, body = get("/metrics")
		require.Equal(t, http.StatusOK, code)
		for _, want := range []string{`refrain_http_requests_total{method="POST",route="/graphql",status="200"} 1`,
			`refrain_graphql_errors_total{operation="other"} 1`, `go_sql_max_open_connections{db_name="refrain"}`} {
			require.True(t, strings.Contains(body, want), "metrics lack %s", want)
		}
		code, body = get("/graphql", "Accept", "text/html")
		require.Equal(t, http.StatusOK, code)
		require.Contains(t, body, "graphiql")
		code, _ = get("/nowhere")
		require.Equal(t, http.StatusNotFound, code)

		// Readiness fails while a migration is pending.
		_, err := db.ExecContext(context.Background(), "DELETE FROM bun_migrations WHERE name = (SELECT max(name) FROM bun_migrations)")
		require.NoError(t, err)
		code, body = get("/readyz")
		require.Equal(t, http.StatusServiceUnavailable, code)
		require.Contains(t, body, "migrations pending")
	})
}

func TestGraphiQLCanBeTurnedOff(t *testing.T) {
	e := newEnv(t, storetest.SQLite(t), func(c *plugin.Config) { c.GraphiQL = false })
	req := httptest.NewRequest(http.MethodGet, "/graphql", nil)
	req.Header.Set("Accept", "text/html")
	rec := httptest.NewRecorder()
	e.p.Handler().ServeHTTP(rec, req)
	require.NotContains(t, rec.Body.String(), "graphiql")
}

// Every field of Refrain's namespaces and of Customer (but its key) carries
// exactly one access directive, so no field is served by accident.
func TestEveryFieldHasAnAccessRule(t *testing.T) {
	e := newEnv(t, storetest.SQLite(t), nil)
	var out struct {
		Service struct{ SDL string } `json:"_service"`
	}
	e.do("", `{ _service { sdl } }`, nil).decode(t, &out)
	checked := 0
	for _, typ := range []string{"RefrainQuery", "RefrainMutation", "Customer"} {
		for _, f := range fieldsOf(out.Service.SDL, typ) {
			if typ == "Customer" && strings.HasPrefix(strings.TrimSpace(f), "id:") {
				continue
			}
			n := 0
			for _, d := range []string{"@public", "@admin", "@owner", "@signedIn"} {
				n += strings.Count(f, d)
			}
			require.Equal(t, 1, n, "field %s.%s must carry exactly one access directive", typ, f)
			checked++
		}
	}
	require.Greater(t, checked, 8)
}
