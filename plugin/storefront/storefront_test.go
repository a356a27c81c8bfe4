package storefront

import (
	"encoding/json"
	"math"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestParseMoney(t *testing.T) {
	for _, tc := range []struct {
		amount, currency string
		want             int64
	}{
		{"414.95", "USD", 41495},
		{"414.95", "usd", 41495},
		{"0.00", "USD", 0},
		{"10", "EUR", 1000},
		{"19.9", "EUR", 1990},
		{".5", "EUR", 50},
		{"5.", "EUR", 500},
		{"-6.00", "USD", -600},
		{"+1.01", "USD", 101},
		{"12980", "JPY", 12980},
		{"12980.00", "JPY", 12980},
		{"12.345", "KWD", 12345},
		{"29.35", "KWD", 29350},
		{"1.5", "CLF", 15000},
		{"0.125", "USD", 13},
		{"0.124", "USD", 12},
		{"-0.125", "USD", -13},
		{"3.3333333", "USD", 333},
		{"1e2", "USD", 10000},
		{"1.5E+2", "USD", 15000},
		{"12345E-2", "USD", 12345},
		{"0.0000001", "USD", 0},
		{"92233720368547758.07", "USD", math.MaxInt64},
		{"", "USD", 0},
	} {
		got, err := ParseMoney(tc.amount, tc.currency)
		if tc.amount == "" {
			require.Error(t, err)
			continue
		}
		require.NoError(t, err, tc.amount)
		require.Equal(t, tc.want, got.Minor, "%s %s", tc.amount, tc.currency)
	}
	for _, bad := range []string{"abc", "1,5", "1.2.3", "-", ".", "1e", "1e999", "1e-999", "0x10", "92233720368547758.08", "99999999999999999999", " 1 2"} {
		_, err := ParseMoney(bad, "USD")
		require.Error(t, err, bad)
	}
}

func TestCurrencyExponent(t *testing.T) {
	require.Equal(t, 2, CurrencyExponent("USD"))
	require.Equal(t, 0, CurrencyExponent("jpy"))
	require.Equal(t, 0, CurrencyExponent("KRW"))
	require.Equal(t, 3, CurrencyExponent("KWD"))
	require.Equal(t, 3, CurrencyExponent("BHD"))
	require.Equal(t, 4, CurrencyExponent("CLF"))
	require.Equal(t, 2, CurrencyExponent(""))
}

func TestMinorArithmetic(t *testing.T) {
	v, err := MulMinor(1999, 3)
	require.NoError(t, err)
	require.Equal(t, int64(5997), v)
	_, err = MulMinor(math.MaxInt64/2+1, 2)
	require.Error(t, err)
	_, err = AddMinor(math.MaxInt64, 1)
	require.Error(t, err)
	_, err = AddMinor(math.MinInt64, -1)
	require.Error(t, err)
}

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

func TestKindsAndSources(t *testing.T) {
	require.Len(t, Kinds(), 16)
	require.True(t, KindCustomerRedacted.Valid())
	require.False(t, Kind("order.updated").Valid())
	require.Len(t, Sources(), 5)
	require.True(t, SourceStandard.Valid())
	require.False(t, Source("mailgun").Valid())
}

func TestEventJSON(t *testing.T) {
	e := Event{Kind: KindOrderPaid, Source: SourceShopify, Topic: "orders/paid", Order: &Order{ID: "gid://shopify/Order/1", Total: Money{Minor: 100, Currency: "USD"}}}
	b, err := json.Marshal(e)
	require.NoError(t, err)
	require.JSONEq(t, `{"kind":"order.paid","source":"shopify","topic":"orders/paid","order":{"id":"gid://shopify/Order/1","total":{"minor":100,"currency":"USD"}}}`, string(b))
}

func FuzzParseMinor(f *testing.F) {
	for _, s := range []string{"414.95", "-0.125", "1.5E+2", "92233720368547758.07", "12980", ".5"} {
		f.Add(s, 2)
	}
	f.Fuzz(func(t *testing.T, s string, decimals int) {
		if decimals < 0 || decimals > 4 {
			return
		}
		_, _ = ParseMinor(s, decimals)
	})
}
