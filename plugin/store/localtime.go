package store

import (
	"database/sql/driver"
	"fmt"
	"strings"
	"sync"
	"time"

	"modernc.org/sqlite"
)

// Local time of day and calendar parts, the same in Go, in PostgreSQL and
// in SQLite (which has no time-zone database: refrain_local, registered
// below, brings Go's to every SQLite connection Refrain opens).
//
// A time zone that is empty, missing, "Local" or not an IANA name known to
// this machine is read as UTC, on every side: PostgreSQL queries guard the
// name against pg_timezone_names for the same reason (a bad name would
// otherwise fail the whole query).

// LocalParts are the parts LocalPart knows, with the EXTRACT field of
// each in PostgreSQL: hour (0-23), minute (0-59), weekday (ISO: 1 Monday
// to 7 Sunday), day (1-31), month (1-12), year.
var LocalParts = map[string]string{
	"hour": "HOUR", "minute": "MINUTE", "weekday": "ISODOW", "day": "DAY", "month": "MONTH", "year": "YEAR",
}

var zones sync.Map // name -> *time.Location (nil: unknown)

// Zone returns the location of an IANA name, UTC when the name is empty,
// "Local" or unknown. ok is false for a non-empty name that is not known.
func Zone(name string) (loc *time.Location, ok bool) {
	if name == "" {
		return time.UTC, true
	}
	if v, found := zones.Load(name); found {
		if v == nil {
			return time.UTC, false
		}
		return v.(*time.Location), true
	}
	l, err := time.LoadLocation(name)
	if err != nil || name == "Local" || strings.HasPrefix(name, "/") {
		zones.Store(name, nil)
		return time.UTC, false
	}
	zones.Store(name, l)
	return l, true
}

// LocalPart returns part of t in loc (see LocalParts).
func LocalPart(t time.Time, loc *time.Location, part string) int {
	t = t.In(loc)
	switch part {
	case "hour":
		return t.Hour()
	case "minute":
		return t.Minute()
	case "weekday":
		if wd := int(t.Weekday()); wd != 0 {
			return wd
		}
		return 7
	case "day":
		return t.Day()
	case "month":
		return int(t.Month())
	case "year":
		return t.Year()
	}
	panic("store: unknown local part " + part)
}

// sqliteTimeLayouts are the forms a time takes in SQLite: bun writes
// "2006-01-02 15:04:05.999999-07:00".
var sqliteTimeLayouts = []string{
	"2006-01-02 15:04:05.999999999-07:00",
	"2006-01-02 15:04:05.999999999Z07:00",
	time.RFC3339Nano,
	"2006-01-02 15:04:05.999999999",
	"2006-01-02T15:04:05.999999999",
}

func parseSQLiteTime(v driver.Value) (time.Time, bool) {
	var s string
	switch x := v.(type) {
	case time.Time:
		return x, true
	case string:
		s = x
	case []byte:
		s = string(x)
	default:
		return time.Time{}, false
	}
	for _, l := range sqliteTimeLayouts {
		if t, err := time.Parse(l, s); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

// refrainLocal is refrain_local(time, zone, part[, offset seconds]): part
// of time plus offset in zone, NULL for a NULL time.
func refrainLocal(_ *sqlite.FunctionContext, args []driver.Value) (driver.Value, error) {
	if len(args) < 3 || len(args) > 4 {
		return nil, fmt.Errorf("refrain_local takes 3 or 4 arguments")
	}
	if args[0] == nil {
		return nil, nil
	}
	t, ok := parseSQLiteTime(args[0])
	if !ok {
		return nil, fmt.Errorf("refrain_local: %v is not a time", args[0])
	}
	if len(args) == 4 && args[3] != nil {
		switch off := args[3].(type) {
		case int64:
			t = t.Add(time.Duration(off) * time.Second)
		case float64:
			t = t.Add(time.Duration(off * float64(time.Second)))
		default:
			return nil, fmt.Errorf("refrain_local: offset %v is not a number", args[3])
		}
	}
	name, _ := args[1].(string)
	if b, isBytes := args[1].([]byte); isBytes {
		name = string(b)
	}
	part, _ := args[2].(string)
	if _, known := LocalParts[part]; !known {
		return nil, fmt.Errorf("refrain_local: unknown part %q", part)
	}
	loc, _ := Zone(name)
	return int64(LocalPart(t, loc, part)), nil
}

func init() {
	sqlite.MustRegisterDeterministicScalarFunction("refrain_local", -1, refrainLocal)
}
