package graph

import (
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/vektah/gqlparser/v2/ast"
)

// Every list field of the schema has a cost: a connection paged by first,
// a list of a connection, a userErrors list, or a bound in ListSizes. A new
// list field without one fails here, so the complexity limit never misses it.
func TestEveryListFieldHasACost(t *testing.T) {
	schema := NewExecutableSchema(Config{}).Schema()
	var missing []string
	for _, def := range schema.Types {
		if def.Kind != ast.Object || strings.HasPrefix(def.Name, "__") {
			continue
		}
		for _, fd := range def.Fields {
			if strings.HasPrefix(fd.Name, "__") {
				continue
			}
			key := def.Name + "." + fd.Name
			elem := schema.Types[fd.Type.Name()]
			if fd.Type.Elem == nil || elem == nil || elem.Kind == ast.Scalar || elem.Kind == ast.Enum {
				continue
			}
			f := &ast.Field{Name: fd.Name, Definition: fd, ObjectDefinition: def}
			if _, ok := listSize(f, nil); !ok {
				missing = append(missing, key)
			}
		}
	}
	sort.Strings(missing)
	require.Empty(t, missing, "list fields without a cost: bound them in ListSize")
}
