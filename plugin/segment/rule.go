// Package segment is the rule language over customers. A rule is parsed by
// github.com/expr-lang/expr (its parser only), checked here against a fixed
// set of customer fields and functions, and compiled to one typed tree that
// runs two ways with the same answer: as an SQL condition over the whole
// customers table (SQLite and PostgreSQL; columns come from a whitelist and
// every value is a bound parameter) and in memory on one customer.
//
// The language:
//
//   - literals: "strings", numbers, true, false, null (or nil);
//   - fields: email, first_name, last_name, locale, time_zone, source,
//     consent, stage, currency (strings); orders_count, total_spent (minor
//     units; numbers); first_order_at, last_order_at, last_open_at,
//     last_click_at, last_visit_at, created_at, observed_since (when Refrain
//     started observing the customer) and now (times); tags (a list
//     of strings); attributes.KEY and preferences.KEY (JSON values, also
//     written attributes["KEY"]);
//   - operators: == != < <= > >= && || ! (and, or, not), + and - on numbers,
//     time + duration and time - duration, VALUE in LIST;
//   - functions: days(n) and hours(n) (durations, n a constant),
//     has(LIST, "value") (tags, or a JSON list holding that string, or a JSON
//     object with that key), events("type") and events("type", days(n))
//     (customer events of that type, all time or within the window before
//     now), bought("text") and bought("text", days(n)) (order.created events
//     with a product whose title contains text, ASCII case-insensitive),
//     opens(days(n)) and clicks(days(n)) (mail opens, not counting machine
//     opens, and clicks in the window; without an argument, all time),
//     hour(t), minute(t), weekday(t) (ISO: 1 Monday to 7 Sunday), day(t),
//     month(t) and year(t) (the part of time t on the customer's clock:
//     their time_zone, UTC without a valid one; a second constant argument
//     names another zone), date("YYYY-MM-DD[ HH:MM[:SS]]"[, "Zone"]) (an
//     instant; UTC without a zone).
//
// A missing value (null) equals only null; ordering comparisons with a
// missing value are false. A JSON field compared with a string, number or
// boolean holds only a value of that JSON type; used alone it means
// `== true`.
package segment

import (
	"errors"
	"fmt"
	"math"
	"regexp"
	"strings"
	"time"

	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/parser"

	"github.com/refrain-dev/refrain/plugin/store"
)

// Error is a rule that does not check, with its 1-based line and column.
type Error struct {
	Line, Column int
	Message      string
}

func (e *Error) Error() string {
	return fmt.Sprintf("line %d, column %d: %s", e.Line, e.Column, e.Message)
}

type typ int

const (
	tBool typ = iota
	tNum
	tStr
	tTime
	tDur
	tList
	tJSON
	tNull
)

func (t typ) String() string {
	return [...]string{"boolean", "number", "string", "time", "duration", "list", "JSON value", "null"}[t]
}

// Rule is a checked rule, ready to run in SQL or in memory.
type Rule struct {
	src  string
	root node
}

// String returns the rule as written.
func (r *Rule) String() string { return r.src }

// UsesTime reports whether the answer can change with time alone (the rule
// reads now or counts events in a window), so sweeps must re-check it.
func (r *Rule) UsesTime() bool {
	found := false
	walk(r.root, func(n node) {
		switch n := n.(type) {
		case *nowNode:
			found = true
		case *countNode:
			if n.window > 0 {
				found = true
			}
		}
	})
	return found
}

// CountsEvents reports whether the rule reads event counts or loyalty
// fields: in memory, it then needs a Counter (the database).
func (r *Rule) CountsEvents() bool {
	found := false
	walk(r.root, func(n node) {
		switch n := n.(type) {
		case *countNode:
			found = true
		case *colNode:
			if loyaltyField(n.name) {
				found = true
			}
		}
	})
	return found
}

// loyaltyField reports a field kept by the loyalty program, read from the
// database in memory (the customer model does not carry it).
func loyaltyField(name string) bool { return name == "loyalty_points" || name == "loyalty_tier" }

// node is the checked tree. Every node has a type and a position.
type node interface {
	typ() typ
}

type litNode struct {
	t typ
	v any // bool, float64, string, time.Duration or nil
}

type nowNode struct{}

type colNode struct {
	name string // the rule field, also the key of the whitelist
	t    typ
}

// jsonNode is attributes.KEY or preferences.KEY; as is the JSON type it is
// read as (tJSON while untyped).
type jsonNode struct {
	column, key string
	as          typ
}

type cmpNode struct {
	op   string
	l, r node
	on   typ // the operand type
}

type logicNode struct {
	op   string // && or ||
	l, r node
}

type notNode struct{ x node }

type arithNode struct {
	op   string // + or -
	l, r node
	t    typ
}

type negNode struct{ x node }

// localNode is a part of a time (hour, weekday, ...) read in a time zone:
// zone, or the customer's own (UTC when it has none) when zone is empty.
type localNode struct {
	part string
	t    node
	zone string
}

type hasNode struct {
	list node // colNode tags or jsonNode; a jsonNode without key is the whole object (has(attributes, "k"))
	val  string
}

// countNode counts events: kind is "events", "opens" or "clicks".
type countNode struct {
	kind    string
	event   string
	product string        // bought: lower-case ASCII text a product title contains
	window  time.Duration // 0: all time
}

func (n *litNode) typ() typ   { return n.t }
func (*nowNode) typ() typ     { return tTime }
func (n *colNode) typ() typ   { return n.t }
func (n *jsonNode) typ() typ  { return n.as }
func (*cmpNode) typ() typ     { return tBool }
func (*logicNode) typ() typ   { return tBool }
func (*notNode) typ() typ     { return tBool }
func (n *arithNode) typ() typ { return n.t }
func (*negNode) typ() typ     { return tNum }
func (*hasNode) typ() typ     { return tBool }
func (*countNode) typ() typ   { return tNum }
func (*localNode) typ() typ   { return tNum }

func walk(n node, fn func(node)) {
	fn(n)
	switch n := n.(type) {
	case *cmpNode:
		walk(n.l, fn)
		walk(n.r, fn)
	case *logicNode:
		walk(n.l, fn)
		walk(n.r, fn)
	case *arithNode:
		walk(n.l, fn)
		walk(n.r, fn)
	case *notNode:
		walk(n.x, fn)
	case *negNode:
		walk(n.x, fn)
	case *hasNode:
		walk(n.list, fn)
	case *localNode:
		walk(n.t, fn)
	}
}

// fields is the whitelist: rule field -> type. The SQL column of each is in
// sqlColumns.
var fields = map[string]typ{
	"email": tStr, "first_name": tStr, "last_name": tStr, "locale": tStr, "time_zone": tStr,
	"source": tStr, "consent": tStr, "stage": tStr, "currency": tStr,
	"orders_count": tNum, "total_spent": tNum,
	"first_order_at": tTime, "last_order_at": tTime, "last_open_at": tTime, "last_click_at": tTime,
	"last_visit_at": tTime, "created_at": tTime, "observed_since": tTime,
	"tags":           tList,
	"loyalty_points": tNum, "loyalty_tier": tStr,
}

var sqlColumns = map[string]string{
	"email": "c.email", "first_name": "c.first_name", "last_name": "c.last_name", "locale": "c.locale",
	"time_zone": "c.time_zone", "source": "c.source", "consent": "c.consent_state", "stage": "c.stage",
	"currency": "c.currency", "orders_count": "c.orders_count", "total_spent": "c.total_spent_minor",
	"first_order_at": "c.first_order_at", "last_order_at": "c.last_order_at", "last_open_at": "c.last_open_at",
	"last_click_at": "c.last_click_at", "last_visit_at": "c.last_visit_at", "created_at": "c.created_at",
	"observed_since": "c.observed_since",
	"tags":           "c.tags", "attributes": "c.attributes", "preferences": "c.preferences",
	"loyalty_points": "c.loyalty_points", "loyalty_tier": "c.loyalty_tier",
}

var jsonKey = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// Parse parses and checks a rule. Errors are *Error with the position.
func Parse(src string) (*Rule, error) {
	if strings.TrimSpace(src) == "" {
		return nil, &Error{Line: 1, Column: 1, Message: "the rule is empty"}
	}
	tree, err := parser.Parse(src)
	if err != nil {
		var fe *file.Error
		if errors.As(err, &fe) {
			c := &checker{src: []rune(src)}
			e := c.at(fe.From)
			e.Message = fe.Message
			return nil, e
		}
		return nil, &Error{Line: 1, Column: 1, Message: err.Error()}
	}
	c := &checker{src: []rune(src)}
	root, err := c.check(tree.Node)
	if err != nil {
		return nil, err
	}
	root, err = c.asBool(root, tree.Node)
	if err != nil {
		return nil, err
	}
	return &Rule{src: src, root: root}, nil
}

// Check reports whether src is a valid rule.
func Check(src string) error {
	_, err := Parse(src)
	return err
}

type checker struct{ src []rune }

func (c *checker) errf(n ast.Node, format string, args ...any) error {
	e := c.at(n.Location().From)
	e.Message = fmt.Sprintf(format, args...)
	return e
}

// at converts a rune offset into a line and column.
func (c *checker) at(from int) *Error {
	line, col := 1, 1
	for i := 0; i < from && i < len(c.src); i++ {
		if c.src[i] == '\n' {
			line++
			col = 1
		} else {
			col++
		}
	}
	return &Error{Line: line, Column: col}
}

// start returns the leftmost node of an expression, for positions.
func start(n ast.Node) ast.Node {
	switch n := n.(type) {
	case *ast.BinaryNode:
		return start(n.Left)
	case *ast.MemberNode:
		return start(n.Node)
	case *ast.CallNode:
		return start(n.Callee)
	case *ast.ChainNode:
		return start(n.Node)
	}
	return n
}

// asBool makes n usable as a condition: a JSON field alone means == true.
func (c *checker) asBool(n node, at ast.Node) (node, error) {
	switch n.typ() {
	case tBool:
		return n, nil
	case tJSON:
		j := *n.(*jsonNode)
		j.as = tBool
		return &cmpNode{op: "==", l: &j, r: &litNode{t: tBool, v: true}, on: tBool}, nil
	}
	return nil, c.errf(start(at), "expected a condition, found a %s", n.typ())
}

func (c *checker) check(n ast.Node) (node, error) {
	switch n := n.(type) {
	case *ast.NilNode:
		return &litNode{t: tNull}, nil
	case *ast.BoolNode:
		return &litNode{t: tBool, v: n.Value}, nil
	case *ast.IntegerNode:
		return &litNode{t: tNum, v: float64(n.Value)}, nil
	case *ast.FloatNode:
		return &litNode{t: tNum, v: n.Value}, nil
	case *ast.StringNode:
		return &litNode{t: tStr, v: n.Value}, nil
	case *ast.IdentifierNode:
		switch n.Value {
		case "null":
			return &litNode{t: tNull}, nil
		case "now":
			return &nowNode{}, nil
		case "attributes", "preferences":
			return nil, c.errf(n, "%s needs a key, as in %s.KEY", n.Value, n.Value)
		}
		t, ok := fields[n.Value]
		if !ok {
			return nil, c.errf(n, "unknown field %q", n.Value)
		}
		return &colNode{name: n.Value, t: t}, nil
	case *ast.MemberNode:
		id, ok := n.Node.(*ast.IdentifierNode)
		if !ok || (id.Value != "attributes" && id.Value != "preferences") || n.Optional {
			return nil, c.errf(start(n), "field access works only as attributes.KEY or preferences.KEY")
		}
		key, ok := n.Property.(*ast.StringNode)
		if !ok {
			return nil, c.errf(n.Property, "the key of %s must be a name or a string", id.Value)
		}
		if !jsonKey.MatchString(key.Value) {
			return nil, c.errf(n.Property, "key %q: use letters, digits, _ and - only (at most 64)", key.Value)
		}
		return &jsonNode{column: id.Value, key: key.Value, as: tJSON}, nil
	case *ast.SequenceNode:
		return nil, c.errf(start(n.Nodes[len(n.Nodes)-1]), "a rule is one expression (remove the ;)")
	case *ast.ChainNode:
		return nil, c.errf(start(n), "optional chaining (?.) is not supported")
	case *ast.UnaryNode:
		x, err := c.check(n.Node)
		if err != nil {
			return nil, err
		}
		switch n.Operator {
		case "!", "not":
			x, err := c.asBool(x, n.Node)
			if err != nil {
				return nil, err
			}
			return &notNode{x: x}, nil
		case "-":
			if x.typ() != tNum {
				return nil, c.errf(n, "- needs a number, found a %s", x.typ())
			}
			return &negNode{x: x}, nil
		case "+":
			if x.typ() != tNum {
				return nil, c.errf(n, "+ needs a number, found a %s", x.typ())
			}
			return x, nil
		}
		return nil, c.errf(n, "unsupported operator %s", n.Operator)
	case *ast.BinaryNode:
		return c.binary(n)
	case *ast.CallNode:
		return c.call(n)
	case *ast.BuiltinNode:
		if n.Name == "date" {
			return c.callNamed(n, n.Name, n.Arguments)
		}
		return nil, c.errf(n, "unknown function %s (use %s)", n.Name, functionList)
	}
	return nil, c.errf(start(n), "unsupported expression")
}

func (c *checker) binary(n *ast.BinaryNode) (node, error) {
	l, err := c.check(n.Left)
	if err != nil {
		return nil, err
	}
	r, err := c.check(n.Right)
	if err != nil {
		return nil, err
	}
	switch n.Operator {
	case "&&", "and", "||", "or":
		if l, err = c.asBool(l, n.Left); err != nil {
			return nil, err
		}
		if r, err = c.asBool(r, n.Right); err != nil {
			return nil, err
		}
		op := "&&"
		if n.Operator == "||" || n.Operator == "or" {
			op = "||"
		}
		return &logicNode{op: op, l: l, r: r}, nil
	case "in":
		v, ok := l.(*litNode)
		if !ok || v.t != tStr {
			return nil, c.errf(start(n.Left), "the left side of in must be a string literal")
		}
		if r.typ() != tList && r.typ() != tJSON {
			return nil, c.errf(start(n.Right), "the right side of in must be tags or a JSON field, found a %s", r.typ())
		}
		return &hasNode{list: r, val: v.v.(string)}, nil
	case "+", "-":
		return c.arith(n, l, r)
	case "==", "!=", "<", "<=", ">", ">=":
		return c.compare(n, l, r)
	}
	return nil, c.errf(n, "unsupported operator %s", n.Operator)
}

func (c *checker) arith(n *ast.BinaryNode, l, r node) (node, error) {
	lt, rt := l.typ(), r.typ()
	switch {
	case lt == tNum && rt == tNum:
		return &arithNode{op: n.Operator, l: l, r: r, t: tNum}, nil
	case lt == tTime && rt == tDur:
		return &arithNode{op: n.Operator, l: l, r: r, t: tTime}, nil
	case lt == tDur && rt == tDur:
		return &arithNode{op: n.Operator, l: l, r: r, t: tDur}, nil
	case lt == tDur && rt == tTime && n.Operator == "+":
		return &arithNode{op: "+", l: r, r: l, t: tTime}, nil
	case lt == tJSON && rt == tNum:
		return &arithNode{op: n.Operator, l: typed(l, tNum), r: r, t: tNum}, nil
	case lt == tNum && rt == tJSON:
		return &arithNode{op: n.Operator, l: l, r: typed(r, tNum), t: tNum}, nil
	}
	return nil, c.errf(n, "cannot apply %s to a %s and a %s", n.Operator, lt, rt)
}

func typed(n node, t typ) node {
	j := *n.(*jsonNode)
	j.as = t
	return &j
}

func (c *checker) compare(n *ast.BinaryNode, l, r node) (node, error) {
	lt, rt := l.typ(), r.typ()
	eq := n.Operator == "==" || n.Operator == "!="
	if lt == tJSON && rt == tJSON {
		return nil, c.errf(n, "compare a JSON field with a value, not with another JSON field")
	}
	for _, t := range []typ{lt, rt} {
		if (lt == tJSON || rt == tJSON) && t != tJSON && t != tNull && t != tStr && t != tNum && t != tBool {
			return nil, c.errf(n, "a JSON field compares only with a string, a number, a boolean or null, not a %s", t)
		}
	}
	if lt == tJSON && rt != tNull {
		l, lt = typed(l, rt), rt
	}
	if rt == tJSON && lt != tNull {
		r, rt = typed(r, lt), lt
	}
	if lt == tNull || rt == tNull {
		if !eq {
			return nil, c.errf(n, "only == and != compare with null")
		}
		other := l
		if lt == tNull {
			other = r
		}
		switch other.typ() {
		case tNull, tJSON, tStr, tNum, tTime:
		default:
			return nil, c.errf(n, "a %s is never null", other.typ())
		}
		return &cmpNode{op: n.Operator, l: l, r: r, on: tNull}, nil
	}
	if lt != rt {
		return nil, c.errf(n, "cannot compare a %s with a %s", lt, rt)
	}
	switch lt {
	case tNum, tStr, tTime:
	case tBool:
		if !eq {
			return nil, c.errf(n, "booleans compare only with == and !=")
		}
	default:
		return nil, c.errf(n, "cannot compare %ss", lt)
	}
	return &cmpNode{op: n.Operator, l: l, r: r, on: lt}, nil
}

func (c *checker) call(n *ast.CallNode) (node, error) {
	id, ok := n.Callee.(*ast.IdentifierNode)
	if !ok {
		return nil, c.errf(start(n), "unsupported call")
	}
	return c.callNamed(id, id.Value, n.Arguments)
}

// callNamed checks a call of function name (at its position) with
// arguments; expr parses some names (date) as its own builtins.
func (c *checker) callNamed(at ast.Node, name string, arguments []ast.Node) (node, error) {
	if name == "has" && len(arguments) == 2 {
		if obj, ok := arguments[0].(*ast.IdentifierNode); ok && (obj.Value == "attributes" || obj.Value == "preferences") {
			key, ok := arguments[1].(*ast.StringNode)
			if !ok || !jsonKey.MatchString(key.Value) {
				return nil, c.errf(start(arguments[1]), "has(%s, KEY) needs a key of letters, digits, _ and - (at most 64)", obj.Value)
			}
			return &hasNode{list: &jsonNode{column: obj.Value, as: tJSON}, val: key.Value}, nil
		}
	}
	args := make([]node, len(arguments))
	for i, a := range arguments {
		v, err := c.check(a)
		if err != nil {
			return nil, err
		}
		args[i] = v
	}
	argc := func(lo, hi int) error {
		if len(args) < lo || len(args) > hi {
			want := fmt.Sprint(lo)
			if hi != lo {
				want = fmt.Sprintf("%d or %d", lo, hi)
			}
			return c.errf(at, "%s takes %s arguments, found %d", name, want, len(args))
		}
		return nil
	}
	window := func(i int) (time.Duration, error) {
		if i >= len(args) {
			return 0, nil
		}
		v, ok := constant(args[i])
		d, isDur := v.(time.Duration)
		if !ok || !isDur || d <= 0 {
			return 0, c.errf(start(arguments[i]), "the window must be a positive constant duration such as days(90)")
		}
		return d, nil
	}
	switch name {
	case "days", "hours":
		if err := argc(1, 1); err != nil {
			return nil, err
		}
		v, ok := constant(args[0])
		f, isNum := v.(float64)
		if !ok || !isNum {
			return nil, c.errf(start(arguments[0]), "%s needs a constant number", name)
		}
		unit := time.Hour
		if name == "days" {
			unit = 24 * time.Hour
		}
		if math.Abs(f) > 100*365*24 {
			return nil, c.errf(start(arguments[0]), "%s(%v) is out of range", name, f)
		}
		return &litNode{t: tDur, v: time.Duration(f * float64(unit))}, nil
	case "has":
		if err := argc(2, 2); err != nil {
			return nil, err
		}
		if t := args[0].typ(); t != tList && t != tJSON {
			return nil, c.errf(start(arguments[0]), "has needs tags or a JSON field first, found a %s", t)
		}
		v, ok := constant(args[1])
		s, isStr := v.(string)
		if !ok || !isStr {
			return nil, c.errf(start(arguments[1]), "has needs a constant string second")
		}
		return &hasNode{list: args[0], val: s}, nil
	case "events":
		if err := argc(1, 2); err != nil {
			return nil, err
		}
		v, ok := constant(args[0])
		s, isStr := v.(string)
		if !ok || !isStr || s == "" {
			return nil, c.errf(start(arguments[0]), "events needs an event type such as \"order.created\" first")
		}
		w, err := window(1)
		if err != nil {
			return nil, err
		}
		return &countNode{kind: "events", event: s, window: w}, nil
	case "bought":
		if err := argc(1, 2); err != nil {
			return nil, err
		}
		v, ok := constant(args[0])
		s, isStr := v.(string)
		if !ok || !isStr || s == "" || !printableASCII(s) {
			return nil, c.errf(start(arguments[0]), "bought needs the text of a product title first (printable ASCII)")
		}
		w, err := window(1)
		if err != nil {
			return nil, err
		}
		return &countNode{kind: "events", event: "order.created", product: asciiLower(s), window: w}, nil
	case "opens", "clicks":
		if err := argc(0, 1); err != nil {
			return nil, err
		}
		w, err := window(0)
		if err != nil {
			return nil, err
		}
		return &countNode{kind: name, window: w}, nil
	case "hour", "minute", "weekday", "day", "month", "year": // store.LocalParts
		if err := argc(1, 2); err != nil {
			return nil, err
		}
		if t := args[0].typ(); t != tTime {
			return nil, c.errf(start(arguments[0]), "%s needs a time first, such as last_order_at or now, found a %s", name, t)
		}
		zone := ""
		if len(args) == 2 {
			z, err := c.zone(args[1], arguments[1], name)
			if err != nil {
				return nil, err
			}
			zone = z
		}
		return &localNode{part: name, t: args[0], zone: zone}, nil
	case "date":
		if err := argc(1, 2); err != nil {
			return nil, err
		}
		v, ok := constant(args[0])
		s, isStr := v.(string)
		if !ok || !isStr {
			return nil, c.errf(start(arguments[0]), `date needs a constant such as "2026-12-24" or "2026-12-24 09:30"`)
		}
		loc := time.UTC
		if len(args) == 2 {
			z, err := c.zone(args[1], arguments[1], "date")
			if err != nil {
				return nil, err
			}
			loc, _ = store.Zone(z)
		}
		for _, layout := range dateLayouts {
			if t, err := time.ParseInLocation(layout, s, loc); err == nil {
				return &litNode{t: tTime, v: t.UTC()}, nil
			}
		}
		return nil, c.errf(start(arguments[0]), `date %q: write YYYY-MM-DD, optionally with a time HH:MM or HH:MM:SS`, s)
	}
	return nil, c.errf(at, "unknown function %s (use %s)", name, functionList)
}

const functionList = "has, days, hours, events, bought, opens, clicks, date, hour, minute, weekday, day, month or year"

var dateLayouts = []string{"2006-01-02", "2006-01-02 15:04", "2006-01-02T15:04", "2006-01-02 15:04:05", "2006-01-02T15:04:05"}

// zone checks a constant IANA time-zone name argument of fn.
func (c *checker) zone(v node, at ast.Node, fn string) (string, error) {
	x, ok := constant(v)
	s, isStr := x.(string)
	if !ok || !isStr {
		return "", c.errf(start(at), `%s needs a constant time zone such as "Europe/Paris" second`, fn)
	}
	if _, known := store.Zone(s); !known || s == "" {
		return "", c.errf(start(at), "unknown time zone %q: give an IANA name such as Europe/Paris", s)
	}
	return s, nil
}

// constant evaluates n when it reads no customer and no clock.
func constant(n node) (any, bool) {
	switch n := n.(type) {
	case *litNode:
		return n.v, true
	case *negNode:
		v, ok := constant(n.x)
		if !ok {
			return nil, false
		}
		return -v.(float64), true
	case *arithNode:
		if n.t == tTime {
			return nil, false
		}
		l, ok1 := constant(n.l)
		r, ok2 := constant(n.r)
		if !ok1 || !ok2 {
			return nil, false
		}
		v, err := arith(n.op, l, r)
		return v, err == nil
	}
	return nil, false
}

func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// asciiLower lowers A-Z only, as SQLite's lower() does.
func asciiLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}
