package scenarios

import (
	"context"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"strconv"
	"strings"
	"time"

	"github.com/uptrace/bun"

	"github.com/refrain-dev/refrain/plugin/customer"
)

// Rules checks and evaluates rules for one customer or one event. The
// engine uses it for audience, exit_when, if and event filters.
type Rules interface {
	RuleChecker
	// MatchCustomer evaluates a customer rule for c at now; db lets rules
	// that count events read them.
	MatchCustomer(ctx context.Context, db bun.IDB, rule string, c *customer.Customer, now time.Time) (bool, error)
	// MatchEvent evaluates a filter over an event's properties.
	MatchEvent(rule string, props map[string]any) (bool, error)
}

// BasicRules is the rule evaluator used when no segment rule engine is
// wired in (the simulator, and the engine's own tests). It reads a small,
// CEL-compatible subset, parsed with Go's expression parser: literals
// (strings in double quotes, numbers, true, false, null), identifiers,
// field access (preferences.diet), comparisons, &&, ||, !, + and -, and
// the functions has(list, value), days(n) and hours(n).
//
// Customer rules see: email, first_name, last_name, locale, time_zone,
// source, consent, stage, tags, attributes, preferences, orders_count,
// total_spent (minor units), currency, first_order_at, last_order_at,
// last_open_at, last_click_at, last_visit_at, created_at, observed_since
// and now. Event
// filters see the event's properties by name.
type BasicRules struct{}

var _ Rules = BasicRules{}

// CheckCustomer parses rule and checks its identifiers against the customer fields.
func (BasicRules) CheckCustomer(rule string) error {
	return checkRule(rule, customerEnv(&customer.Customer{}, time.Time{}))
}

// CheckEvent parses rule; any property name is allowed.
func (BasicRules) CheckEvent(rule string) error { return checkRule(rule, nil) }

// MatchCustomer evaluates rule for c at now.
func (BasicRules) MatchCustomer(_ context.Context, _ bun.IDB, rule string, c *customer.Customer, now time.Time) (bool, error) {
	return evalRule(rule, customerEnv(c, now))
}

// MatchEvent evaluates rule over props.
func (BasicRules) MatchEvent(rule string, props map[string]any) (bool, error) {
	env := map[string]any{"properties": props}
	for k, v := range props {
		env[k] = v
	}
	return evalRule(rule, env)
}

func customerEnv(c *customer.Customer, now time.Time) map[string]any {
	ts := func(t *time.Time) any {
		if t == nil {
			return nil
		}
		return *t
	}
	s := func(p *string) any {
		if p == nil {
			return nil
		}
		return *p
	}
	tags := make([]any, len(c.Tags))
	for i, t := range c.Tags {
		tags[i] = t
	}
	return map[string]any{"email": s(c.Email), "first_name": s(c.FirstName), "last_name": s(c.LastName),
		"locale": s(c.Locale), "time_zone": s(c.TimeZone), "source": string(c.Source), "consent": string(c.ConsentState),
		"stage": c.Stage, "tags": tags, "attributes": mapOrEmpty(c.Attributes), "preferences": mapOrEmpty(c.Preferences),
		"orders_count": float64(c.OrdersCount), "total_spent": float64(c.TotalSpentMinor), "currency": s(c.Currency),
		"first_order_at": ts(c.FirstOrderAt), "last_order_at": ts(c.LastOrderAt), "last_open_at": ts(c.LastOpenAt),
		"last_click_at": ts(c.LastClickAt), "last_visit_at": ts(c.LastVisitAt), "created_at": c.CreatedAt,
		"observed_since": ts(c.ObservedSince), "now": now}
}

func mapOrEmpty(m map[string]any) map[string]any {
	if m == nil {
		return map[string]any{}
	}
	return m
}

// checkRule parses rule and, when env is given, requires its top-level
// identifiers to exist.
func checkRule(rule string, env map[string]any) error {
	expr, err := parser.ParseExpr(rule)
	if err != nil {
		return fmt.Errorf("parse rule: %w", err)
	}
	var bad error
	ast.Inspect(expr, func(n ast.Node) bool {
		if bad != nil {
			return false
		}
		switch n := n.(type) {
		case *ast.SelectorExpr:
			ast.Inspect(n.X, func(m ast.Node) bool { return checkIdent(m, env, &bad) })
			return false
		case *ast.CallExpr:
			id, ok := n.Fun.(*ast.Ident)
			if !ok || (id.Name != "has" && id.Name != "days" && id.Name != "hours") {
				bad = fmt.Errorf("column %d: unknown function (use has, days or hours)", n.Pos())
				return false
			}
			for _, a := range n.Args {
				ast.Inspect(a, func(m ast.Node) bool { return checkIdent(m, env, &bad) })
			}
			return false
		case *ast.BinaryExpr, *ast.UnaryExpr, *ast.ParenExpr, *ast.BasicLit, *ast.Ident:
			return checkIdent(n, env, &bad)
		case nil:
			return false
		default:
			bad = fmt.Errorf("column %d: unsupported expression", n.Pos())
			return false
		}
	})
	return bad
}

func checkIdent(n ast.Node, env map[string]any, bad *error) bool {
	id, ok := n.(*ast.Ident)
	if !ok || env == nil || *bad != nil {
		return *bad == nil
	}
	switch id.Name {
	case "true", "false", "null":
		return true
	}
	if _, ok := env[id.Name]; !ok {
		*bad = fmt.Errorf("column %d: unknown field %q", id.Pos(), id.Name)
	}
	return true
}

func evalRule(rule string, env map[string]any) (bool, error) {
	expr, err := parser.ParseExpr(rule)
	if err != nil {
		return false, fmt.Errorf("parse rule: %w", err)
	}
	v, err := eval(expr, env)
	if err != nil {
		return false, fmt.Errorf("evaluate %q: %w", rule, err)
	}
	b, ok := v.(bool)
	if !ok {
		return false, fmt.Errorf("evaluate %q: the rule gives %T, not a boolean", rule, v)
	}
	return b, nil
}

var errType = errors.New("mismatched types")

func eval(e ast.Expr, env map[string]any) (any, error) {
	switch e := e.(type) {
	case *ast.ParenExpr:
		return eval(e.X, env)
	case *ast.BasicLit:
		switch e.Kind {
		case token.STRING:
			return strconv.Unquote(e.Value)
		case token.INT, token.FLOAT:
			return strconv.ParseFloat(e.Value, 64)
		}
		return nil, fmt.Errorf("unsupported literal %s", e.Value)
	case *ast.Ident:
		switch e.Name {
		case "true":
			return true, nil
		case "false":
			return false, nil
		case "null":
			return nil, nil
		}
		return env[e.Name], nil
	case *ast.SelectorExpr:
		x, err := eval(e.X, env)
		if err != nil {
			return nil, err
		}
		m, _ := x.(map[string]any)
		return m[e.Sel.Name], nil
	case *ast.UnaryExpr:
		x, err := eval(e.X, env)
		if err != nil {
			return nil, err
		}
		switch e.Op {
		case token.NOT:
			b, _ := x.(bool)
			return !b, nil
		case token.SUB:
			if f, ok := x.(float64); ok {
				return -f, nil
			}
		}
		return nil, fmt.Errorf("unsupported %s%T", e.Op, x)
	case *ast.CallExpr:
		args := make([]any, len(e.Args))
		for i, a := range e.Args {
			v, err := eval(a, env)
			if err != nil {
				return nil, err
			}
			args[i] = v
		}
		name := e.Fun.(*ast.Ident).Name
		switch {
		case name == "has" && len(args) == 2:
			list, _ := args[0].([]any)
			for _, x := range list {
				if equal(x, args[1]) {
					return true, nil
				}
			}
			if m, ok := args[0].(map[string]any); ok {
				s, _ := args[1].(string)
				_, found := m[s]
				return found, nil
			}
			return false, nil
		case (name == "days" || name == "hours") && len(args) == 1:
			f, ok := args[0].(float64)
			if !ok {
				return nil, errType
			}
			unit := time.Hour
			if name == "days" {
				unit = 24 * time.Hour
			}
			return time.Duration(f * float64(unit)), nil
		}
		return nil, fmt.Errorf("unknown function %s/%d", name, len(args))
	case *ast.BinaryExpr:
		x, err := eval(e.X, env)
		if err != nil {
			return nil, err
		}
		if e.Op == token.LAND || e.Op == token.LOR {
			b, _ := x.(bool)
			if (e.Op == token.LAND && !b) || (e.Op == token.LOR && b) {
				return b, nil
			}
			y, err := eval(e.Y, env)
			if err != nil {
				return nil, err
			}
			yb, _ := y.(bool)
			return yb, nil
		}
		y, err := eval(e.Y, env)
		if err != nil {
			return nil, err
		}
		return binary(e.Op, x, y)
	}
	return nil, fmt.Errorf("unsupported expression %T", e)
}

func equal(x, y any) bool {
	switch a := x.(type) {
	case time.Time:
		b, ok := y.(time.Time)
		return ok && a.Equal(b)
	case int:
		x = float64(a)
	case int64:
		x = float64(a)
	}
	switch b := y.(type) {
	case int:
		y = float64(b)
	case int64:
		y = float64(b)
	}
	defer func() { _ = recover() }() // maps and lists are not comparable
	return x == y
}

func binary(op token.Token, x, y any) (any, error) {
	switch op {
	case token.EQL:
		return equal(x, y), nil
	case token.NEQ:
		return !equal(x, y), nil
	}
	if x == nil || y == nil {
		// Comparing a missing value orders nothing, as in SQL.
		return false, nil
	}
	switch a := x.(type) {
	case float64:
		b, ok := y.(float64)
		if !ok {
			return nil, errType
		}
		switch op {
		case token.ADD:
			return a + b, nil
		case token.SUB:
			return a - b, nil
		}
		return compare(op, cmpFloat(a, b))
	case string:
		b, ok := y.(string)
		if !ok {
			return nil, errType
		}
		if op == token.ADD {
			return a + b, nil
		}
		return compare(op, strings.Compare(a, b))
	case time.Time:
		switch b := y.(type) {
		case time.Duration:
			switch op {
			case token.ADD:
				return a.Add(b), nil
			case token.SUB:
				return a.Add(-b), nil
			}
		case time.Time:
			return compare(op, a.Compare(b))
		}
	}
	return nil, fmt.Errorf("unsupported %T %s %T", x, op, y)
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func compare(op token.Token, c int) (any, error) {
	switch op {
	case token.LSS:
		return c < 0, nil
	case token.LEQ:
		return c <= 0, nil
	case token.GTR:
		return c > 0, nil
	case token.GEQ:
		return c >= 0, nil
	}
	return nil, fmt.Errorf("unsupported operator %s", op)
}
