// Package model holds the GraphQL types that have no domain struct of their
// own; gqlgen generates most of them into models_gen.go.
package model

// Namespace is the empty value behind Query.refrain and Mutation.refrain:
// Refrain's root fields live under one namespace so the subgraph composes
// with any store graph.
type Namespace struct{}
