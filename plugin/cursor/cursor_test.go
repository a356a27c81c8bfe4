package cursor

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestRoundTrip(t *testing.T) {
	c := EncodeID("c:", 42)
	require.Equal(t, "Yzo0Mg", c)
	id, err := DecodeID("c:", c)
	require.NoError(t, err)
	require.Equal(t, int64(42), id)
	_, err = DecodeID("e:", c)
	require.ErrorIs(t, err, ErrInvalid)
	_, err = DecodeID("c:", "!!")
	require.ErrorIs(t, err, ErrInvalid)

	parts, err := Decode(Encode("|", "2026-01-01T00:00:00Z", "abc"), "|", 2)
	require.NoError(t, err)
	require.Equal(t, []string{"2026-01-01T00:00:00Z", "abc"}, parts)
	_, err = Decode(Encode("|", "x"), "|", 2)
	require.ErrorIs(t, err, ErrInvalid)
}
