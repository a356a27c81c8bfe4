// Package e2e holds Refrain's end-to-end tests. They build the refrain
// binary, start it as a user would (environment variables, a SQLite file or
// a PostgreSQL database), and talk to it through HTTP only: storefront and
// Mailgun webhooks signed as the platforms sign them, GraphQL, and a real
// Apollo federation gateway (e2e/federation, Node) in front of it.
//
// The Node-based tests skip when e2e/federation/node_modules is missing,
// unless REFRAIN_REQUIRE_NODE is set (CI sets it after npm ci). The
// PostgreSQL runs need REFRAIN_TEST_POSTGRES_URL. The composition with the
// stores' real schemas (e2e/federation/testdata) runs only with
// REFRAIN_REAL_SCHEMAS set, until Refrain's types carry the Refrain prefix.
package e2e
