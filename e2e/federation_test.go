package e2e

import (
	"bufio"
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/require"
)

// requireNode skips when the federation Node packages are not installed,
// unless REFRAIN_REQUIRE_NODE is set (CI), where their absence fails.
func requireNode(t *testing.T) {
	t.Helper()
	_, err := exec.LookPath("node")
	if err == nil {
		_, err = os.Stat("federation/node_modules/@apollo/gateway")
	}
	if err != nil {
		if os.Getenv("REFRAIN_REQUIRE_NODE") != "" {
			t.Fatalf("node or the federation packages are missing (run npm ci in e2e/federation): %v", err)
		}
		t.Skipf("node or e2e/federation/node_modules is missing (run npm ci in e2e/federation): %v", err)
	}
}

// startGateway runs e2e/federation/serve.mjs (the storefront subgraph and
// @apollo/gateway) in front of refrain and returns the gateway's address.
func startGateway(t *testing.T, refrainGraphQL string, extra ...string) string {
	t.Helper()
	cmd := exec.Command("node", append([]string{"serve.mjs", "--refrain", refrainGraphQL}, extra...)...)
	cmd.Dir = "federation"
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("gateway stderr:\n%s", stderr.String())
		}
	})
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if l := sc.Text(); strings.HasPrefix(l, "{") {
				lines <- l
			}
		}
	}()
	select {
	case l := <-lines:
		var addr struct{ Gateway, Store string }
		require.NoError(t, json.Unmarshal([]byte(l), &addr), "serve.mjs printed %q", l)
		require.NotEmpty(t, addr.Gateway)
		return addr.Gateway
	case <-done:
		t.Fatalf("serve.mjs exited:\n%s", stderr.String())
	case <-time.After(60 * time.Second):
		t.Fatalf("serve.mjs not listening after a minute:\n%s", stderr.String())
	}
	return ""
}

func customerToken(t *testing.T, id string) string {
	t.Helper()
	tok := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"sub": id, "exp": time.Now().Add(time.Hour).Unix()})
	s, err := tok.SignedString([]byte(jwtSecret))
	require.NoError(t, err)
	return s
}

// One query through a real @apollo/gateway returns the store's fields and
// Refrain's; the gateway forwards Authorization, so a customer token reads
// its own lifecycle and is refused another customer's.
func TestGatewayFederation(t *testing.T) {
	t.Parallel()
	requireNode(t)
	r := startRefrain(t, map[string]string{"REFRAIN_DATABASE_URL": "sqlite:" + t.TempDir() + "/refrain.db"})
	// The two customers of federation/testdata/store-customers.json, known to Refrain by the store's id.
	for _, c := range []struct{ id, email string }{
		{"gid://shopify/Customer/1001", "ann@store.example"},
		{"gid://shopify/Customer/1002", "ben@store.example"},
	} {
		var out struct {
			Refrain struct {
				UpsertCustomer struct{ UserErrors []any } `json:"upsertCustomer"`
			}
		}
		r.admin(`mutation($in: UpsertCustomerInput!) { refrain { upsertCustomer(input: $in) { userErrors { message } } } }`,
			map[string]any{"in": map[string]any{"externalId": c.id, "externalSource": "shopify", "email": c.email}}, &out)
		require.Empty(t, out.Refrain.UpsertCustomer.UserErrors)
	}

	gw := startGateway(t, r.URL+"/graphql")
	const q = `query($id: ID!) { customer(id: $id) { email firstName lifecycle { stage } engagement { lastOpenAt } } }`
	type result struct {
		Customer *struct {
			Email, FirstName string
			Lifecycle        *struct{ Stage string }
			Engagement       *struct{ LastOpenAt *string }
		}
	}

	// An admin key through the gateway: both subgraphs answer.
	var admin result
	postGraphQL(t, gw, adminKey, q, map[string]any{"id": "gid://shopify/Customer/1002"}).decode(t, &admin)
	require.NotNil(t, admin.Customer)
	require.Equal(t, "ben@store.example", admin.Customer.Email, "email comes from the store subgraph")
	require.Equal(t, "Ben", admin.Customer.FirstName)
	require.NotNil(t, admin.Customer.Lifecycle, "lifecycle comes from Refrain")
	require.Equal(t, "SUBSCRIBER", admin.Customer.Lifecycle.Stage)
	require.NotNil(t, admin.Customer.Engagement)

	// Ann's own token reads her lifecycle through the gateway.
	ann := customerToken(t, "gid://shopify/Customer/1001")
	var own result
	postGraphQL(t, gw, ann, q, map[string]any{"id": "gid://shopify/Customer/1001"}).decode(t, &own)
	require.Equal(t, "Ann", own.Customer.FirstName)
	require.NotNil(t, own.Customer.Lifecycle)
	require.NotEmpty(t, own.Customer.Lifecycle.Stage)
	require.NotNil(t, own.Customer.Engagement, "Refrain's engagement of Ann")

	// Ann's token is refused Ben's lifecycle: FORBIDDEN from Refrain, no data of his.
	res := postGraphQL(t, gw, ann, q, map[string]any{"id": "gid://shopify/Customer/1002"})
	require.NotEmpty(t, res.Errors)
	for _, e := range res.Errors {
		require.Equal(t, "FORBIDDEN", e.Extensions["code"], "error %+v", e)
		require.Equal(t, "refrain", e.Extensions["serviceName"])
	}
	var other result
	require.NoError(t, json.Unmarshal(res.Data, &other))
	require.Nil(t, other.Customer.Lifecycle)
	require.Nil(t, other.Customer.Engagement)

	// Without a token Refrain's fields are refused, the store's still served.
	res = postGraphQL(t, gw, "", q, map[string]any{"id": "gid://shopify/Customer/1001"})
	require.Contains(t, res.codes(), "UNAUTHENTICATED")
	require.Contains(t, string(res.Data), `"firstName":"Ann"`)
	require.NotContains(t, string(res.Data), "SUBSCRIBER")
}

// Saleor's customer type is User: a bridge subgraph (federation/
// saleor-bridge.graphql) adds User.refrain, a Customer reference with the
// same global id, and the gateway fetches Refrain's fields through it.
func TestGatewaySaleorBridge(t *testing.T) {
	t.Parallel()
	requireNode(t)
	r := startRefrain(t, map[string]string{"REFRAIN_DATABASE_URL": "sqlite:" + t.TempDir() + "/refrain.db"})
	// The users of federation/testdata/saleor-users.json, known to Refrain by Saleor's global id.
	for _, c := range []struct{ id, email string }{{"VXNlcjoyMg==", "zoe@saleor.example"}, {"VXNlcjoyMw==", "yann@saleor.example"}} {
		r.admin(`mutation($in: UpsertCustomerInput!) { refrain { upsertCustomer(input: $in) { userErrors { message } } } }`,
			map[string]any{"in": map[string]any{"externalId": c.id, "externalSource": "saleor", "email": c.email}}, nil)
	}
	r.admin(`mutation { refrain { trackEvent(input: {customerId: "VXNlcjoyMg==", type: "wishlist.added"}) { created } } }`, nil, nil)
	gw := startGateway(t, r.URL+"/graphql", "--saleor")
	const q = `query($id: ID) { user(id: $id) { email firstName refrain { id lifecycle { stage } events(first: 1) { nodes { type } } } } }`
	var out struct {
		User *struct {
			Email, FirstName string
			Refrain          *struct {
				ID        string
				Lifecycle struct{ Stage string }
				Events    struct{ Nodes []struct{ Type string } }
			}
		}
	}
	zoe := customerToken(t, "VXNlcjoyMg==")
	postGraphQL(t, gw, zoe, q, map[string]any{"id": "VXNlcjoyMg=="}).decode(t, &out)
	require.Equal(t, "zoe@saleor.example", out.User.Email, "from the Saleor subgraph")
	require.NotNil(t, out.User.Refrain, "through the bridge")
	require.Equal(t, "VXNlcjoyMg==", out.User.Refrain.ID)
	require.Equal(t, "SUBSCRIBER", out.User.Refrain.Lifecycle.Stage, "from Refrain")
	require.Equal(t, "wishlist.added", out.User.Refrain.Events.Nodes[0].Type)

	// Zoé's token is refused Yann's Refrain fields.
	res := postGraphQL(t, gw, zoe, q, map[string]any{"id": "VXNlcjoyMw=="})
	require.Contains(t, res.codes(), "FORBIDDEN")
	require.NotContains(t, string(res.Data), "SUBSCRIBER")
}
