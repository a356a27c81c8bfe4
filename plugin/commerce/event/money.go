package event

import (
	"errors"
	"fmt"
	"math"
	"strings"
)

// CurrencyExponent returns the number of decimals of the currency's minor
// unit per ISO 4217: 0 for JPY, KRW, CLP and the like, 3 for KWD, BHD, JOD,
// OMR, TND, IQD, LYD, 4 for CLF and UYW, and 2 for everything else, including
// an empty or unknown code.
func CurrencyExponent(currency string) int {
	switch strings.ToUpper(strings.TrimSpace(currency)) {
	case "BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF",
		"UGX", "UYI", "VND", "VUV", "XAF", "XOF", "XPF":
		return 0
	case "BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND":
		return 3
	case "CLF", "UYW":
		return 4
	}
	return 2
}

// ParseMoney parses a decimal amount in major units ("414.95", "-3", "1e2",
// "1500") into Money in the currency's minor units, exactly: the text is read
// digit by digit, never through a float. Digits beyond the minor unit are
// rounded half away from zero ("0.125" USD is 13 cents), because some
// platforms send tax amounts with extra precision. The currency is upper-cased.
func ParseMoney(amount, currency string) (Money, error) {
	currency = strings.ToUpper(strings.TrimSpace(currency))
	minor, err := ParseMinor(amount, CurrencyExponent(currency))
	if err != nil {
		return Money{}, err
	}
	return Money{Minor: minor, Currency: currency}, nil
}

// maxExponent bounds the exponent of scientific notation, so a hostile
// "1e999999999" is rejected instead of looping or allocating.
const maxExponent = 40

// ParseMinor parses a decimal number written in major units into an integer
// count of minor units with the given number of decimals. It accepts an
// optional sign, digits with an optional fraction, and an optional exponent
// ("1.5E+2"), which is what JSON numbers and platform decimal strings look
// like. It rejects empty strings, other characters, and values that do not
// fit an int64.
func ParseMinor(s string, decimals int) (int64, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, errors.New("empty amount")
	}
	orig := s
	neg := false
	switch s[0] {
	case '-':
		neg = true
		s = s[1:]
	case '+':
		s = s[1:]
	}
	mant, exp := s, 0
	if i := strings.IndexAny(s, "eE"); i >= 0 {
		mant = s[:i]
		e, err := parseExponent(s[i+1:])
		if err != nil {
			return 0, fmt.Errorf("amount %q: %w", orig, err)
		}
		exp = e
	}
	intPart, fracPart, _ := strings.Cut(mant, ".")
	if intPart == "" && fracPart == "" {
		return 0, fmt.Errorf("amount %q: no digits", orig)
	}
	digits := intPart + fracPart
	for i := 0; i < len(digits); i++ {
		if digits[i] < '0' || digits[i] > '9' {
			return 0, fmt.Errorf("amount %q: not a decimal number", orig)
		}
	}
	digits = strings.TrimLeft(digits, "0")
	// value = digits * 10^(exp - len(fracPart)); minor = value * 10^decimals.
	shift := decimals + exp - len(fracPart)
	roundUp := false
	if shift < 0 {
		drop := -shift
		if drop > len(digits) {
			digits = ""
		} else {
			roundUp = digits[len(digits)-drop] >= '5'
			digits = digits[:len(digits)-drop]
		}
		shift = 0
	}
	var v uint64
	for i := 0; i < len(digits); i++ {
		d := uint64(digits[i] - '0')
		if v > (math.MaxInt64-d)/10 {
			return 0, fmt.Errorf("amount %q: too large", orig)
		}
		v = v*10 + d
	}
	if roundUp {
		if v >= math.MaxInt64 {
			return 0, fmt.Errorf("amount %q: too large", orig)
		}
		v++
	}
	for ; shift > 0 && v != 0; shift-- {
		if v > math.MaxInt64/10 {
			return 0, fmt.Errorf("amount %q: too large", orig)
		}
		v *= 10
	}
	if neg {
		return -int64(v), nil
	}
	return int64(v), nil
}

func parseExponent(s string) (int, error) {
	neg := false
	if s != "" && (s[0] == '+' || s[0] == '-') {
		neg = s[0] == '-'
		s = s[1:]
	}
	if s == "" {
		return 0, errors.New("empty exponent")
	}
	e := 0
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, errors.New("bad exponent")
		}
		e = e*10 + int(s[i]-'0')
		if e > maxExponent {
			return 0, errors.New("exponent out of range")
		}
	}
	if neg {
		e = -e
	}
	return e, nil
}

// MulMinor returns unit * quantity, or an error when the product overflows
// an int64. Adapters use it to total line items.
func MulMinor(unit, quantity int64) (int64, error) {
	if unit == 0 || quantity == 0 {
		return 0, nil
	}
	p := unit * quantity
	if p/quantity != unit || (unit == -1 && quantity == math.MinInt64) || (quantity == -1 && unit == math.MinInt64) {
		return 0, errors.New("amount overflows")
	}
	return p, nil
}

// AddMinor returns a + b, or an error when the sum overflows an int64.
func AddMinor(a, b int64) (int64, error) {
	s := a + b
	if (b > 0 && s < a) || (b < 0 && s > a) {
		return 0, errors.New("amount overflows")
	}
	return s, nil
}
