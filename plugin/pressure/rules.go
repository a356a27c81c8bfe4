// Package pressure is the marketing pressure policy: at most Cap marketing
// messages per customer in a rolling Window, a minimum gap between two,
// quiet hours in the customer's time zone, and what to do with a message
// that would break them (defer up to a maximum delay, skip, or override),
// per program and per campaign. Scheduled campaigns reserve their slot, so
// a lower-priority scenario step that would fill the cap before them moves.
//
// The policy decides inside the transaction that writes the message row,
// after locking the customer row (SELECT ... FOR UPDATE on PostgreSQL;
// SQLite serialises writers), so two replicas can never both use a
// customer's last slot. Every decision is recorded in pressure_decisions.
// Transactional messages are never held; they are counted apart.
package pressure

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// OnCapped is what happens to a message that would break the policy.
type OnCapped string

// OnCapped rules.
const (
	// OnCappedDefer tries again when the policy allows it, up to MaxDelay after the
	// message was first due; then it is skipped.
	OnCappedDefer OnCapped = "defer"
	// OnCappedSkip drops the message.
	OnCappedSkip OnCapped = "skip"
	// OnCappedOverride sends it anyway (quiet hours still apply).
	OnCappedOverride OnCapped = "override"
)

// Valid reports whether o is a known rule.
func (o OnCapped) Valid() bool {
	return o == OnCappedDefer || o == OnCappedSkip || o == OnCappedOverride
}

// QuietHours are local times of day, in minutes after midnight, when no
// marketing message goes out. Start == End means none. Start > End wraps
// past midnight (21:00-08:00).
type QuietHours struct{ Start, End int }

// None reports whether q holds no quiet time.
func (q QuietHours) None() bool { return q.Start == q.End }

// String formats q as HH:MM-HH:MM, or "none".
func (q QuietHours) String() string {
	if q.None() {
		return "none"
	}
	return fmt.Sprintf("%02d:%02d-%02d:%02d", q.Start/60, q.Start%60, q.End/60, q.End%60)
}

// ParseQuietHours reads HH:MM-HH:MM, or "none" (or empty) for no quiet hours.
func ParseQuietHours(s string) (QuietHours, error) {
	s = strings.TrimSpace(s)
	if s == "" || s == "none" {
		return QuietHours{}, nil
	}
	from, to, ok := strings.Cut(s, "-")
	if !ok {
		return QuietHours{}, fmt.Errorf("quiet hours %q: want HH:MM-HH:MM or none", s)
	}
	a, err := parseClock(from)
	if err != nil {
		return QuietHours{}, fmt.Errorf("quiet hours %q: %w", s, err)
	}
	b, err := parseClock(to)
	if err != nil {
		return QuietHours{}, fmt.Errorf("quiet hours %q: %w", s, err)
	}
	return QuietHours{Start: a, End: b}, nil
}

func parseClock(s string) (int, error) {
	t, err := time.Parse("15:04", strings.TrimSpace(s))
	if err != nil {
		return 0, fmt.Errorf("%q is not a time of day HH:MM", s)
	}
	return t.Hour()*60 + t.Minute(), nil
}

// in reports whether local time t falls in the quiet hours, and when they end.
func (q QuietHours) in(t time.Time) (bool, time.Time) {
	if q.None() {
		return false, time.Time{}
	}
	m := t.Hour()*60 + t.Minute()
	day := time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, t.Location())
	end := func(d time.Time) time.Time {
		return time.Date(d.Year(), d.Month(), d.Day(), q.End/60, q.End%60, 0, 0, t.Location())
	}
	if q.Start < q.End {
		if m >= q.Start && m < q.End {
			return true, end(day)
		}
		return false, time.Time{}
	}
	switch {
	case m >= q.Start:
		return true, end(day.AddDate(0, 0, 1))
	case m < q.End:
		return true, end(day)
	}
	return false, time.Time{}
}

// Rules are the policy's settings for one program or campaign.
type Rules struct {
	// Cap is the most marketing messages in Window; 0 means no cap.
	Cap    int
	Window time.Duration
	// MinGap is the least time between two marketing messages.
	MinGap time.Duration
	Quiet  QuietHours
	// OnCapped is what happens when a message would break the rules.
	OnCapped OnCapped
	// MaxDelay bounds a deferral, from when the message was first due.
	MaxDelay time.Duration
}

// Validate names the first setting that is wrong.
func (r Rules) Validate() error {
	switch {
	case r.Cap < 0:
		return fmt.Errorf("cap %d: want 0 (none) or more", r.Cap)
	case r.Window <= 0:
		return fmt.Errorf("window %s: want a positive duration", r.Window)
	case r.MinGap < 0:
		return fmt.Errorf("min gap %s: want 0 or more", r.MinGap)
	case !r.OnCapped.Valid():
		return fmt.Errorf("on capped %q: want defer, skip or override", r.OnCapped)
	case r.MaxDelay < 0:
		return fmt.Errorf("max delay %s: want 0 or more", r.MaxDelay)
	}
	return nil
}

// Override changes some of the Rules for one program or campaign; nil
// fields keep the global setting.
type Override struct {
	Cap      *int           `json:"cap,omitempty"`
	Window   *time.Duration `json:"window,omitempty"`
	MinGap   *time.Duration `json:"minGap,omitempty"`
	Quiet    *QuietHours    `json:"quiet,omitempty"`
	OnCapped *OnCapped      `json:"onCapped,omitempty"`
	MaxDelay *time.Duration `json:"maxDelay,omitempty"`
}

// Apply returns r with o's fields set.
func (r Rules) Apply(o *Override) Rules {
	if o == nil {
		return r
	}
	if o.Cap != nil {
		r.Cap = *o.Cap
	}
	if o.Window != nil {
		r.Window = *o.Window
	}
	if o.MinGap != nil {
		r.MinGap = *o.MinGap
	}
	if o.Quiet != nil {
		r.Quiet = *o.Quiet
	}
	if o.OnCapped != nil {
		r.OnCapped = *o.OnCapped
	}
	if o.MaxDelay != nil {
		r.MaxDelay = *o.MaxDelay
	}
	return r
}

// Set parses one key=value of an override: cap, window, min_gap,
// quiet_hours, on_capped, max_delay.
func (o *Override) Set(key, value string) error {
	value = strings.TrimSpace(value)
	dur := func() (*time.Duration, error) {
		d, err := ParseDuration(value)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", key, err)
		}
		return &d, nil
	}
	var err error
	switch strings.TrimSpace(key) {
	case "cap":
		n, e := strconv.Atoi(value)
		if e != nil || n < 0 {
			return fmt.Errorf("cap %q: want a whole number, 0 or more", value)
		}
		o.Cap = &n
	case "window":
		o.Window, err = dur()
	case "min_gap":
		o.MinGap, err = dur()
	case "max_delay":
		o.MaxDelay, err = dur()
	case "quiet_hours":
		q, e := ParseQuietHours(value)
		o.Quiet, err = &q, e
	case "on_capped":
		oc := OnCapped(value)
		if !oc.Valid() {
			return fmt.Errorf("on_capped %q: want defer, skip or override", value)
		}
		o.OnCapped = &oc
	default:
		return fmt.Errorf("unknown key %q (want cap, window, min_gap, quiet_hours, on_capped or max_delay)", key)
	}
	return err
}

// ParseOverrides reads per-program overrides:
// "program:key=value,key=value;program2:key=value".
func ParseOverrides(s string) (map[string]*Override, error) {
	out := map[string]*Override{}
	for _, part := range strings.Split(s, ";") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		program, kvs, ok := strings.Cut(part, ":")
		program = strings.TrimSpace(program)
		if !ok || program == "" {
			return nil, fmt.Errorf("%q: want program:key=value,...", part)
		}
		o := out[program]
		if o == nil {
			o = &Override{}
			out[program] = o
		}
		for _, kv := range strings.Split(kvs, ",") {
			k, v, ok := strings.Cut(kv, "=")
			if !ok {
				return nil, fmt.Errorf("program %s: %q: want key=value", program, kv)
			}
			if err := o.Set(k, v); err != nil {
				return nil, fmt.Errorf("program %s: %w", program, err)
			}
		}
	}
	return out, nil
}

// ParseDuration reads a Go duration, also accepting days ("7d").
func ParseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if n, ok := strings.CutSuffix(s, "d"); ok {
		d, err := strconv.Atoi(n)
		if err != nil || d < 0 {
			return 0, fmt.Errorf("%q is not a duration (72h, 30m, 7d)", s)
		}
		return time.Duration(d) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("%q is not a duration (72h, 30m, 7d)", s)
	}
	return d, nil
}

// fmtDur prints a duration as days or hours when it is whole.
func fmtDur(d time.Duration) string {
	switch {
	case d >= 7*24*time.Hour && d%(24*time.Hour) == 0:
		return strconv.Itoa(int(d/(24*time.Hour))) + "d"
	case d > 0 && d%time.Hour == 0:
		return strconv.Itoa(int(d/time.Hour)) + "h"
	}
	return d.String()
}
