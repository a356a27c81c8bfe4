// Package model holds the GraphQL types that have no domain struct of their
// own; gqlgen generates most of them into models_gen.go. It owns shapes
// only: no SQL, no rules, no resolvers. It may import domain packages for
// the types its fields carry, and must not import graph, gqlgen's
// executor, net/http, the plugin assembly or an edge (storefront, mail
// provider).
package model

// Namespace is the empty value behind Query.refrain and Mutation.refrain:
// Refrain's root fields live under one namespace so the subgraph composes
// with any store graph.
type Namespace struct{}
