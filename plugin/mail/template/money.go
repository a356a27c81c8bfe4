package template

import (
	"strconv"
	"strings"
)

// Money formats an amount in minor units of an ISO 4217 currency for a
// message: the currency's symbol before the amount, a dot as the decimal
// separator, no grouping ("€12.50", "$12.50", "£3.00", "¥1200", "-€5.00").
// Currencies without minor units (JPY, KRW and the like) show none.
// Currencies without a known symbol show their code after the amount
// ("12.50 CHF"). It is deliberately simple: one format for every locale,
// which is readable everywhere, rather than a half-right localisation.
func Money(minor int64, currency string) string {
	code := strings.ToUpper(strings.TrimSpace(currency))
	digits := 2
	switch code {
	case "JPY", "KRW", "VND", "CLP", "ISK", "XAF", "XOF", "PYG", "UGX":
		digits = 0
	case "BHD", "KWD", "OMR", "JOD", "TND":
		digits = 3
	}
	sign := ""
	// Negate in uint64 so the smallest int64 does not overflow.
	u := uint64(minor)
	if minor < 0 {
		sign = "-"
		u = -u
	}
	amount := strconv.FormatUint(u, 10)
	if digits > 0 {
		if len(amount) <= digits {
			amount = strings.Repeat("0", digits-len(amount)+1) + amount
		}
		amount = amount[:len(amount)-digits] + "." + amount[len(amount)-digits:]
	}
	symbols := map[string]string{
		"EUR": "€", "USD": "$", "GBP": "£", "JPY": "¥", "CNY": "¥", "INR": "₹", "KRW": "₩",
		"CAD": "CA$", "AUD": "A$", "NZD": "NZ$", "MXN": "MX$", "BRL": "R$",
	}
	if sym, ok := symbols[code]; ok {
		return sign + sym + amount
	}
	if code == "" {
		return sign + amount
	}
	return sign + amount + " " + code
}
