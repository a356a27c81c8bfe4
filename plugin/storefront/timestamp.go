package storefront

import (
	"errors"
	"strings"
	"time"
)

// ParseTime parses a platform timestamp: RFC 3339 with or without fractional
// seconds ("2021-12-31T19:00:00-05:00", "2022-12-12T00:37:17.405467+00:00"),
// or a zone-less "2006-01-02T15:04:05" (WooCommerce's *_gmt fields, Saleor's
// naive times), which is read as UTC. The result is in UTC. An empty string is
// an error; callers treat absent times before calling.
func ParseTime(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, errors.New("empty time")
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999", "2006-01-02 15:04:05", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, errors.New("not an RFC 3339 time")
}

// OptionalTime parses s with ParseTime, returning the zero time for an empty
// string or JSON null text. A present but malformed time is a *ParseError
// naming field.
func OptionalTime(field, s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "" || s == "null" {
		return time.Time{}, nil
	}
	t, err := ParseTime(s)
	if err != nil {
		return time.Time{}, &ParseError{Field: field, Err: err}
	}
	return t, nil
}

// Latest returns the latest non-zero time of ts, or the zero time.
func Latest(ts ...time.Time) time.Time {
	var out time.Time
	for _, t := range ts {
		if t.After(out) {
			out = t
		}
	}
	return out
}
