package link_test

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/refrain-dev/refrain/plugin/mail/link"
)

func TestSignVerify(t *testing.T) {
	s, err := link.New([]byte(strings.Repeat("k", 32)))
	require.NoError(t, err)
	now := time.Date(2026, 6, 1, 9, 0, 0, 0, time.UTC)

	tok := s.Sign(link.Unsubscribe, "rfn_abc", "ann@example.com", time.Time{})
	c, err := s.Verify(tok, link.Unsubscribe, "ann@example.com", now.Add(10*365*24*time.Hour))
	require.NoError(t, err)
	require.Equal(t, link.Claims{Purpose: link.Unsubscribe, CustomerID: "rfn_abc"}, c)

	// Another address, another purpose, another customer, a bad mac.
	_, err = s.Verify(tok, link.Unsubscribe, "bob@example.com", now)
	require.ErrorIs(t, err, link.ErrInvalid)
	_, err = s.Verify(tok, link.Confirm, "ann@example.com", now)
	require.ErrorIs(t, err, link.ErrInvalid)
	forged := strings.Replace(tok, "rfn_abc", "rfn_abd", 1)
	_, err = s.Verify(forged, link.Unsubscribe, "ann@example.com", now)
	require.ErrorIs(t, err, link.ErrInvalid)
	last := "A"
	if strings.HasSuffix(tok, "A") {
		last = "B"
	}
	_, err = s.Verify(tok[:len(tok)-1]+last, link.Unsubscribe, "ann@example.com", now)
	require.ErrorIs(t, err, link.ErrInvalid)
	for _, bad := range []string{"", "u.x.0", "z.rfn_abc.0.abc", "u.rfn_abc.!!.abc"} {
		_, err = s.Verify(bad, link.Unsubscribe, "ann@example.com", now)
		require.ErrorIs(t, err, link.ErrInvalid, bad)
	}

	// Another secret refuses the token.
	other, err := link.New([]byte(strings.Repeat("o", 32)))
	require.NoError(t, err)
	_, err = other.Verify(tok, link.Unsubscribe, "ann@example.com", now)
	require.ErrorIs(t, err, link.ErrInvalid)

	// Expiry.
	ct := s.Sign(link.Confirm, "rfn_abc", "ann@example.com", now.Add(time.Hour))
	c, err = s.Verify(ct, link.Confirm, "ANN@example.com ", now.Add(59*time.Minute))
	require.NoError(t, err)
	require.Equal(t, now.Add(time.Hour), c.Expires)
	_, err = s.Verify(ct, link.Confirm, "ann@example.com", now.Add(time.Hour))
	require.ErrorIs(t, err, link.ErrInvalid)

	_, err = link.New([]byte("short"))
	require.Error(t, err)
}
