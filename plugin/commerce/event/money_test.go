package event

import (
	"math"
	"testing"

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
