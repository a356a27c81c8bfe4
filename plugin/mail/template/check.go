package template

import (
	"fmt"
	"reflect"
	"text/template/parse"
)

// checker walks a parsed template and resolves every field reference
// against the Data type, so that a reference to an unknown field fails when
// the template is loaded, in every branch, not only in the branches a
// sample render happens to take. It also collects the Values keys the
// template reads.
type checker struct {
	tree   *parse.Tree
	values map[string]bool
	// reads collects the field paths the template reads (".Customer.Preferences");
	// "$" stands for the whole Data passed on to a function.
	reads map[string]bool
	err   error
}

// dotType is what dot is at some point of a template: its Go type (nil when
// it cannot be known statically, as after a function call) and the field
// path it was reached by (".Values").
type dotType struct {
	typ  reflect.Type
	path string
}

// checkTree checks one template tree with dot being Data, adding the Values
// keys it reads to values and the field paths it reads to reads.
func checkTree(tree *parse.Tree, values, reads map[string]bool) error {
	if tree == nil || tree.Root == nil {
		return nil
	}
	c := &checker{tree: tree, values: values, reads: reads}
	c.walk(tree.Root, dotType{typ: reflect.TypeFor[Data]()})
	return c.err
}

func (c *checker) fail(node parse.Node, format string, args ...any) {
	if c.err != nil {
		return
	}
	location, _ := c.tree.ErrorContext(node)
	c.err = fmt.Errorf("%s: %s", location, fmt.Sprintf(format, args...))
}

func (c *checker) walk(node parse.Node, dot dotType) {
	if c.err != nil || node == nil {
		return
	}
	switch n := node.(type) {
	case *parse.ListNode:
		if n == nil {
			return
		}
		for _, child := range n.Nodes {
			c.walk(child, dot)
		}
	case *parse.ActionNode:
		c.pipe(n.Pipe, dot)
	case *parse.IfNode:
		c.pipe(n.Pipe, dot)
		c.walk(n.List, dot)
		c.walk(n.ElseList, dot)
	case *parse.WithNode:
		c.pipe(n.Pipe, dot)
		c.walk(n.List, c.pipeType(n.Pipe, dot))
		c.walk(n.ElseList, dot)
	case *parse.RangeNode:
		c.pipe(n.Pipe, dot)
		c.walk(n.List, elemType(c.pipeType(n.Pipe, dot)))
		c.walk(n.ElseList, dot)
	case *parse.TemplateNode:
		// The called template is checked on its own, with dot being Data;
		// passing dot on reads nothing by itself.
		if n.Pipe != nil && len(n.Pipe.Cmds) == 1 && len(n.Pipe.Cmds[0].Args) == 1 {
			if _, ok := n.Pipe.Cmds[0].Args[0].(*parse.DotNode); ok && dot.path == "" {
				return
			}
		}
		c.pipe(n.Pipe, dot)
	}
}

func (c *checker) pipe(p *parse.PipeNode, dot dotType) {
	if p == nil {
		return
	}
	for _, cmd := range p.Cmds {
		for _, arg := range cmd.Args {
			c.arg(arg, dot)
		}
	}
}

func (c *checker) arg(arg parse.Node, dot dotType) {
	switch a := arg.(type) {
	case *parse.FieldNode:
		c.resolve(dot, a.Ident, a)
	case *parse.DotNode:
		c.read(dot.path)
	case *parse.VariableNode:
		// $ is Data; other variables are not typed here, so reading one
		// may read anything.
		switch {
		case len(a.Ident) > 1 && a.Ident[0] == "$":
			c.resolve(dotType{typ: reflect.TypeFor[Data]()}, a.Ident[1:], a)
		default:
			c.read("")
		}
	case *parse.ChainNode:
		if p, ok := a.Node.(*parse.PipeNode); ok {
			c.pipe(p, dot)
		}
	case *parse.PipeNode:
		c.pipe(a, dot)
	}
}

// pipeType is the type of a pipeline that is a single field reference, else unknown.
func (c *checker) pipeType(p *parse.PipeNode, dot dotType) dotType {
	if p == nil || len(p.Cmds) != 1 || len(p.Cmds[0].Args) != 1 {
		return dotType{}
	}
	switch a := p.Cmds[0].Args[0].(type) {
	case *parse.FieldNode:
		return c.resolve(dot, a.Ident, a)
	case *parse.DotNode:
		return dot
	case *parse.VariableNode:
		if len(a.Ident) > 1 && a.Ident[0] == "$" {
			return c.resolve(dotType{typ: reflect.TypeFor[Data]()}, a.Ident[1:], a)
		}
		if len(a.Ident) == 1 && a.Ident[0] == "$" {
			return dotType{typ: reflect.TypeFor[Data]()}
		}
	}
	return dotType{}
}

func elemType(d dotType) dotType {
	if d.typ == nil {
		return dotType{}
	}
	t := d.typ
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Slice, reflect.Array, reflect.Map:
		return dotType{typ: t.Elem(), path: d.path + "[]"}
	}
	return dotType{}
}

// read records that the template reads path; "" (the whole Data, or a
// value of unknown origin) is recorded as "$".
func (c *checker) read(path string) {
	if c.reads == nil {
		return
	}
	if path == "" {
		path = "$"
	}
	c.reads[path] = true
}

// resolve follows idents from dot and returns the type reached.
func (c *checker) resolve(dot dotType, idents []string, node parse.Node) dotType {
	t, path := dot.typ, dot.path
	defer func() { c.read(path) }()
	for _, id := range idents {
		if t == nil {
			return dotType{}
		}
		for t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		where := path
		if where == "" {
			where = "the template data"
		}
		switch t.Kind() {
		case reflect.Struct:
			if f, ok := t.FieldByName(id); ok && f.IsExported() {
				t, path = f.Type, path+"."+id
				continue
			}
			if m, ok := reflect.PointerTo(t).MethodByName(id); ok && m.Type.NumOut() > 0 {
				t, path = m.Type.Out(0), path+"."+id
				continue
			}
			c.fail(node, "unknown field %q in %s (%s has fields %s)", id, where, t.Name(), fieldNames(t))
			return dotType{}
		case reflect.Map:
			if path == ".Values" {
				c.values[id] = true
				t, path = t.Elem(), path+"."+id
				continue
			}
			c.fail(node, "%s.%s would fail when the key is missing: write {{index %s %q}}", path, id, path, id)
			return dotType{}
		case reflect.Interface:
			return dotType{}
		default:
			c.fail(node, "%s is a %s: it has no field %q", where, t.Kind(), id)
			return dotType{}
		}
	}
	return dotType{typ: t, path: path}
}

func fieldNames(t reflect.Type) string {
	names := ""
	for i := range t.NumField() {
		if !t.Field(i).IsExported() {
			continue
		}
		if names != "" {
			names += ", "
		}
		names += t.Field(i).Name
	}
	return names
}

// callsTemplate reports whether any of trees calls the template named name.
func callsTemplate(name string, trees ...*parse.Tree) bool {
	var visit func(parse.Node) bool
	visit = func(node parse.Node) bool {
		switch n := node.(type) {
		case *parse.ListNode:
			if n == nil {
				return false
			}
			for _, child := range n.Nodes {
				if visit(child) {
					return true
				}
			}
		case *parse.TemplateNode:
			return n.Name == name
		case *parse.IfNode:
			return visit(n.List) || visit(n.ElseList)
		case *parse.WithNode:
			return visit(n.List) || visit(n.ElseList)
		case *parse.RangeNode:
			return visit(n.List) || visit(n.ElseList)
		}
		return false
	}
	for _, t := range trees {
		if t != nil && visit(t.Root) {
			return true
		}
	}
	return false
}
