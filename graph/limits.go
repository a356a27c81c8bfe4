package graph

import (
	"context"
	"strings"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
)

// DefaultPageSize is the page a connection field is assumed to return when
// the caller gives no first argument (the schema's default).
const DefaultPageSize = 20

// ListSize bounds the list fields that take no page argument: the most
// items field (as Type.field) may return. The complexity of such a field
// multiplies its children by this bound; a test walks the schema and fails
// on a list of objects that is neither a connection, paged by first, nor
// bounded here.
func ListSize(field string) (int, bool) {
	switch field {
	// Reports whose lists are computed in one pass with their parent, of
	// plain values: their items add no work.
	case "KpiReport.intervals", "KpiValues.revenue", "HoldoutUplift.revenuePerCustomer", "AbTest.variants",
		"ABTest.variants", "PressureForecast.days", "ForecastDay.programs", "SimulationReport.days",
		"SimulationReport.steps", "HygieneReport.byStatus", "HygieneReport.byDomain", "HygieneDomainCount.statuses",
		"HygieneStatusCount.customers", "HygieneDomainCount.customers", "Order.items", "Cart.items", "Scenario.steps":
		return 1, true
	case "RefrainQuery.segments", "Customer.segments":
		return 50, true
	case "RefrainQuery.scenarios", "RefrainQuery.programs", "Customer.carts", "Customer.enrollments",
		"Entity.findManyCustomerByIDs", "SegmentPreview.sample":
		return 100, true
	case "RefrainQuery.templates":
		return 200, true
	}
	return 0, false
}

// userErrorsSize bounds every userErrors list of a mutation payload.
const userErrorsSize = 10

// listSize is how many items field f may return, and whether f is bounded
// at all: a connection by its first argument, a connection list (edges,
// nodes) by its parent, _entities by its representations, and every other
// list by ListSize.
func listSize(f *ast.Field, vars map[string]any) (int, bool) {
	if f.Definition == nil || f.ObjectDefinition == nil {
		return 1, true
	}
	named := f.Definition.Type.Name()
	if strings.HasSuffix(named, "Connection") {
		return pageArg(f, vars), true
	}
	if f.Definition.Type.Elem == nil {
		return 1, true
	}
	parent := f.ObjectDefinition.Name
	switch {
	case strings.HasSuffix(parent, "Connection") && (f.Name == "edges" || f.Name == "nodes"):
		return 1, true
	case f.Name == "_entities":
		if reps, ok := f.ArgumentMap(vars)["representations"].([]any); ok {
			return max(len(reps), 1), true
		}
		return 1, true
	case f.Name == "userErrors":
		return userErrorsSize, true
	}
	if f.Definition.Arguments.ForName("first") != nil {
		return pageArg(f, vars), true
	}
	if n, ok := ListSize(parent + "." + f.Name); ok {
		return n, true
	}
	return 100, false
}

func pageArg(f *ast.Field, vars map[string]any) int {
	switch v := f.ArgumentMap(vars)["first"].(type) {
	case int64:
		if v > 0 {
			return int(v)
		}
	case int:
		if v > 0 {
			return v
		}
	}
	return DefaultPageSize
}

// Complexity is the cost of a selection: each field counts 1 plus its
// children, multiplied by the number of items a list field may return, so
// nested lists multiply.
func Complexity(set ast.SelectionSet, vars map[string]any) int {
	return complexityOf(set, vars, map[string]bool{})
}

func complexityOf(set ast.SelectionSet, vars map[string]any, seen map[string]bool) int {
	total := 0
	for _, sel := range set {
		switch s := sel.(type) {
		case *ast.Field:
			if strings.HasPrefix(s.Name, "__") {
				total++
				continue
			}
			n, _ := listSize(s, vars)
			total = saturatingAdd(total, saturatingAdd(1, saturatingMul(n, complexityOf(s.SelectionSet, vars, seen))))
		case *ast.InlineFragment:
			total = saturatingAdd(total, complexityOf(s.SelectionSet, vars, seen))
		case *ast.FragmentSpread:
			if s.Definition == nil || seen[s.Name] {
				continue
			}
			seen[s.Name] = true
			total = saturatingAdd(total, complexityOf(s.Definition.SelectionSet, vars, seen))
			delete(seen, s.Name)
		}
	}
	return total
}

const maxCost = 1 << 40

func saturatingAdd(a, b int) int { return min(a+b, maxCost) }
func saturatingMul(a, b int) int {
	if a != 0 && b > maxCost/a {
		return maxCost
	}
	return min(a*b, maxCost)
}

// requestLimits refuses operations that are too costly (Complexity), too
// deep, or that use too many aliases. Introspection fields are not counted
// for depth: GraphiQL's schema query nests deeply through ofType.
type requestLimits struct {
	maxComplexity, maxDepth, maxAliases int
}

var _ interface {
	graphql.HandlerExtension
	graphql.OperationContextMutator
} = requestLimits{}

func (requestLimits) ExtensionName() string                   { return "RequestLimits" }
func (requestLimits) Validate(graphql.ExecutableSchema) error { return nil }
func (l requestLimits) MutateOperationContext(_ context.Context, oc *graphql.OperationContext) *gqlerror.Error {
	if oc.Operation == nil {
		return nil
	}
	if l.maxComplexity > 0 {
		if c := Complexity(oc.Operation.SelectionSet, oc.Variables); c > l.maxComplexity {
			return limitError("COMPLEXITY_LIMIT_EXCEEDED", "operation has complexity %d, which exceeds the limit of %d", c, l.maxComplexity)
		}
	}
	if l.maxDepth > 0 {
		if depth := selectionDepth(oc.Operation.SelectionSet, 0, map[string]bool{}); depth > l.maxDepth {
			return limitError("QUERY_TOO_DEEP", "operation is %d levels deep, more than the limit of %d", depth, l.maxDepth)
		}
	}
	if l.maxAliases > 0 {
		if n := countAliases(oc.Operation.SelectionSet, map[string]bool{}); n > l.maxAliases {
			return limitError("TOO_MANY_ALIASES", "operation uses %d aliases, more than the limit of %d", n, l.maxAliases)
		}
	}
	return nil
}

func limitError(code, format string, args ...any) *gqlerror.Error {
	err := gqlerror.Errorf(format, args...)
	err.Extensions = map[string]any{"code": code}
	return err
}

func countAliases(set ast.SelectionSet, seen map[string]bool) int {
	n := 0
	for _, sel := range set {
		switch s := sel.(type) {
		case *ast.Field:
			if s.Alias != "" && s.Alias != s.Name {
				n++
			}
			n += countAliases(s.SelectionSet, seen)
		case *ast.InlineFragment:
			n += countAliases(s.SelectionSet, seen)
		case *ast.FragmentSpread:
			if s.Definition == nil || seen[s.Name] {
				continue
			}
			seen[s.Name] = true
			n += countAliases(s.Definition.SelectionSet, seen)
			delete(seen, s.Name)
		}
	}
	return n
}

// serviceSDL lets an operation that asks only for _service (the SDL a
// federation gateway composes with) through when introspection is off: the
// SDL is public by design, while __schema and __type stay refused.
type serviceSDL struct{}

var _ interface {
	graphql.HandlerExtension
	graphql.OperationContextMutator
} = serviceSDL{}

func (serviceSDL) ExtensionName() string                   { return "ServiceSDL" }
func (serviceSDL) Validate(graphql.ExecutableSchema) error { return nil }
func (serviceSDL) MutateOperationContext(_ context.Context, oc *graphql.OperationContext) *gqlerror.Error {
	if oc.Operation == nil || len(oc.Operation.SelectionSet) == 0 {
		return nil
	}
	for _, sel := range oc.Operation.SelectionSet {
		f, ok := sel.(*ast.Field)
		if !ok || (f.Name != "_service" && f.Name != "__typename") {
			return nil
		}
	}
	oc.DisableIntrospection = false
	return nil
}
