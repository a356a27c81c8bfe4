package storefront

import (
	"encoding/json"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestText(t *testing.T) {
	var v struct {
		A, B, C, D Text
	}
	require.NoError(t, json.Unmarshal([]byte(`{"A":706405506930370084,"B":"x","C":null,"D":414.95}`), &v))
	require.Equal(t, Text("706405506930370084"), v.A)
	require.Equal(t, Text("x"), v.B)
	require.Equal(t, Text(""), v.C)
	require.Equal(t, Text("414.95"), v.D)
	require.Error(t, json.Unmarshal([]byte(`{"A":{"x":1}}`), &v))

	err := DecodeJSON([]byte(`{"A":[1]}`), &v)
	var pe *ParseError
	require.ErrorAs(t, err, &pe)
}

func TestParseTime(t *testing.T) {
	for s, want := range map[string]time.Time{
		"2021-12-31T19:00:00-05:00":        time.Date(2022, 1, 1, 0, 0, 0, 0, time.UTC),
		"2022-12-12T00:37:17.405467+00:00": time.Date(2022, 12, 12, 0, 37, 17, 405467000, time.UTC),
		"2017-03-22T19:28:08":              time.Date(2017, 3, 22, 19, 28, 8, 0, time.UTC),
		"2022-01-01T00:00:00.000Z":         time.Date(2022, 1, 1, 0, 0, 0, 0, time.UTC),
	} {
		got, err := ParseTime(s)
		require.NoError(t, err, s)
		require.Equal(t, want, got, s)
	}
	_, err := ParseTime("yesterday")
	require.Error(t, err)
	got, err := OptionalTime("f", "null")
	require.NoError(t, err)
	require.True(t, got.IsZero())
}

func TestStandardWebhookRoundTrip(t *testing.T) {
	key := []byte("0123456789abcdef")
	now := time.Unix(1700000000, 0)
	body := []byte(`{"type":"x"}`)
	h := http.Header{}
	h.Set(HeaderWebhookID, "msg_1")
	h.Set(HeaderWebhookTimestamp, strconv.FormatInt(now.Unix(), 10))
	h.Set(HeaderWebhookSignature, SignStandardWebhook(key, "msg_1", now, body))
	require.NoError(t, VerifyStandardWebhook(h, body, key, now, 0))
	require.ErrorIs(t, VerifyStandardWebhook(h, body, key, now.Add(time.Hour), 0), ErrBadSignature)
	require.NoError(t, VerifyStandardWebhook(h, body, key, now.Add(time.Hour), 2*time.Hour), "a wider tolerance")
	h.Set(HeaderWebhookTimestamp, "99999999999999999")
	require.ErrorIs(t, VerifyStandardWebhook(h, body, key, now, 0), ErrBadSignature)
}

func TestBodyKeyAndHeaders(t *testing.T) {
	require.Equal(t, "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", BodyKey(nil))
	h := http.Header{}
	h.Set("x-shopify-topic", "orders/create")
	require.Equal(t, map[string]string{"X-Shopify-Topic": "orders/create"}, PickHeaders(h, "X-Shopify-Topic", "X-Missing"))
	require.Nil(t, PickHeaders(h, "X-Missing"))
}
