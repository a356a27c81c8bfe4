package plugin_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/refrain-dev/refrain/plugin"
	"github.com/refrain-dev/refrain/plugin/store/storetest"
	"github.com/stretchr/testify/require"
)

// A GraphQL body over REFRAIN_GRAPHQL_MAX_BODY is refused, announced or not,
// without being read whole.
func TestGraphQLBodyLimit(t *testing.T) {
	e := newEnv(t, storetest.SQLite(t), func(c *plugin.Config) { c.GraphQLMaxBody = 64 << 10 })
	big := `{"query":"{ refrain { version } }","variables":{"x":"` + strings.Repeat("a", 128<<10) + `"}}`
	req := httptest.NewRequest(http.MethodPost, "/graphql", strings.NewReader(big))
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	e.p.Handler().ServeHTTP(rec, req)
	require.Equal(t, http.StatusRequestEntityTooLarge, rec.Code)

	// Without a length (chunked), reading stops at the limit.
	req = httptest.NewRequest(http.MethodPost, "/graphql", io.MultiReader(strings.NewReader(big)))
	req.ContentLength = -1
	req.Header.Set("Content-Type", "application/json")
	rec = httptest.NewRecorder()
	e.p.Handler().ServeHTTP(rec, req)
	require.NotContains(t, rec.Body.String(), `"version"`)
	require.Contains(t, rec.Body.String(), "too large")
}

// A document of thousands of fields stops at the parser's token limit,
// before the validation whose cost grows with the square of the fields.
func TestParserTokenLimit(t *testing.T) {
	e := newEnv(t, storetest.SQLite(t), nil)
	body := `{"query":"{ refrain { ` + strings.Repeat("version ", 20000) + `} }"}`
	req := httptest.NewRequest(http.MethodPost, "/graphql", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	e.p.Handler().ServeHTTP(rec, req)
	require.Contains(t, rec.Body.String(), "exceeded token limit of 3000")
}

// Every list multiplies its children: nested members of nested segments
// are refused, where they once added a few points each.
func TestComplexityMultipliesEveryList(t *testing.T) {
	e := newEnv(t, storetest.SQLite(t), nil)
	q := `{ refrain { segments { members(first: 100) { nodes { customer { segments { members(first: 100) { nodes { customer { id } } } } } } } } } }`
	require.Equal(t, []string{"COMPLEXITY_LIMIT_EXCEEDED"}, e.do(testBootstrapKey, q, nil).codes())
	// A plain page stays allowed.
	res := e.do(testBootstrapKey, `{ refrain { segments { id members(first: 20) { nodes { customer { id } } } } } }`, nil)
	require.Empty(t, res.Errors, "%+v", res.Errors)
}

func TestAliasLimit(t *testing.T) {
	e := newEnv(t, storetest.SQLite(t), func(c *plugin.Config) { c.QueryMaxAliases = 5 })
	var b strings.Builder
	for i := range 6 {
		b.WriteString("v" + string(rune('a'+i)) + ": version ")
	}
	require.Equal(t, []string{"TOO_MANY_ALIASES"}, e.do("", "{ refrain { "+b.String()+"} }", nil).codes())
}

// Operation names never become metric labels: only the dashboard's own.
func TestMetricsLabelsAreAFixedSet(t *testing.T) {
	e := newEnv(t, storetest.SQLite(t), nil)
	for _, name := range []string{"AttackerChosenName1", "AttackerChosenName2"} {
		e.do("", "query "+name+" { refrain { version } }", nil)
	}
	e.do("", "query Dashboard { refrain { version } }", nil)
	req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
	rec := httptest.NewRecorder()
	e.p.Handler().ServeHTTP(rec, req)
	body := rec.Body.String()
	require.NotContains(t, body, "AttackerChosenName")
	require.Contains(t, body, `refrain_graphql_operations_total{operation="other",type="query"} 2`)
	require.Contains(t, body, `refrain_graphql_operations_total{operation="Dashboard",type="query"} 1`)
}

// While storage cannot answer (its one connection held), a request fails
// with a clear error once its deadline passes, instead of waiting forever.
func TestRequestDeadlineWhileStorageIsLocked(t *testing.T) {
	db := storetest.SQLite(t)
	e := newEnv(t, db, func(c *plugin.Config) { c.RequestTimeout = 200 * 1e6 })
	db.DB.SetMaxOpenConns(1)
	conn, err := db.DB.Conn(context.Background())
	require.NoError(t, err)
	defer conn.Close()
	res := e.do(testBootstrapKey, `{ refrain { customers { nodes { id } } } }`, nil)
	require.Equal(t, []string{"TIMEOUT"}, res.codes())
	require.Contains(t, res.Errors[0].Message, "REFRAIN_REQUEST_TIMEOUT")
}
