package ptr

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestPointers(t *testing.T) {
	p := To("a")
	require.Equal(t, "a", *p)
	require.Equal(t, "a", Deref(p))
	require.Equal(t, "", Deref[string](nil))
	require.Equal(t, 7, Or(nil, 7))
	require.Equal(t, 3, Or(To(3), 7))
}
