package csvimport

import (
	"bufio"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/refrain-dev/refrain/plugin/customer"
)

// Known column names, compared after trimming and lower-casing the header.
const (
	colEmail     = "email"
	colFirstName = "first_name"
	colLastName  = "last_name"
	colLocale    = "locale"
	colTimeZone  = "timezone"
	colCreatedAt = "created_at"
	colConsent   = "consent"
	colTags      = "tags"
)

// maxZoneCache bounds the memo of time zone names already checked, so a
// file full of distinct bad names cannot grow it without limit.
const maxZoneCache = 4096

// row is one valid data row, trimmed and normalised. Empty strings, a zero
// time and an empty consent state mean "not given".
type row struct {
	line       int
	email      string
	norm       string
	firstName  string
	lastName   string
	locale     string
	timeZone   string
	createdAt  time.Time
	consent    customer.ConsentState
	consentRaw string
	tags       []string
	attrs      []attr
}

// attr is one attribute column value of a row.
type attr struct {
	key, value string
}

// attrCol is a column that is not a known one: its values become attributes.
type attrCol struct {
	index int
	key   string
}

// parser reads the CSV file, validates each row and hands out batches of
// valid rows. It is used by one goroutine.
type parser struct {
	cr      *csv.Reader
	opts    Options
	bomLen  int64
	nfields int

	email, firstName, lastName, locale, timeZone, createdAt, consent, tags int
	attrCols                                                               []attrCol

	// seen maps a 64-bit hash of each normalised email already accepted to
	// its line, to find duplicates in the file without holding a million
	// addresses. Two different addresses share a hash with probability about
	// n*n/2^65 over the whole file (3e-8 for a million rows); the only harm
	// would be one row wrongly reported as a duplicate, which a re-run with
	// that row alone would import. Within a batch the addresses are still in
	// memory and a hash match is confirmed exactly.
	seed  maphash.Seed
	seen  map[uint64]int32
	zones map[string]bool

	rows     int
	skipped  int
	rejected []Rejection
	lastCall time.Time
}

func newParser(r io.Reader, opts Options) (*parser, error) {
	br := bufio.NewReaderSize(r, 256<<10)
	p := &parser{opts: opts, seed: maphash.MakeSeed(), seen: make(map[uint64]int32), zones: make(map[string]bool)}
	// Drop a UTF-8 byte order mark before the csv reader sees it, so a
	// quoted first header name still parses.
	if b, err := br.Peek(3); err == nil && string(b) == "\ufeff" {
		_, _ = br.Discard(3)
		p.bomLen = 3
	}
	p.cr = csv.NewReader(br)
	p.cr.ReuseRecord = true
	header, err := p.cr.Read()
	if errors.Is(err, io.EOF) {
		return nil, errors.New("read header: the file is empty")
	}
	if err != nil {
		return nil, fmt.Errorf("read header: %w", err)
	}
	p.nfields = len(header)
	known := map[string]*int{colEmail: &p.email, colFirstName: &p.firstName, colLastName: &p.lastName,
		colLocale: &p.locale, colTimeZone: &p.timeZone, colCreatedAt: &p.createdAt, colConsent: &p.consent, colTags: &p.tags}
	for _, idx := range known {
		*idx = -1
	}
	names := make(map[string]int, len(header))
	for i, h := range header {
		name := strings.ToLower(strings.TrimSpace(h))
		if name == "" {
			return nil, fmt.Errorf("read header: column %d has no name", i+1)
		}
		if j, dup := names[name]; dup {
			return nil, fmt.Errorf("read header: column %q appears twice (columns %d and %d)", name, j+1, i+1)
		}
		names[name] = i
		if idx, ok := known[name]; ok {
			*idx = i
			continue
		}
		p.attrCols = append(p.attrCols, attrCol{index: i, key: name})
	}
	if p.email < 0 {
		found := make([]string, 0, len(header))
		for _, h := range header {
			found = append(found, strings.ToLower(strings.TrimSpace(h)))
		}
		return nil, fmt.Errorf("read header: %w %q (columns found: %s)", ErrMissingColumn, colEmail, strings.Join(found, ", "))
	}
	return p, nil
}

// run reads every row and sends batches of valid rows until the end of the
// file; it returns on the first read error or when ctx is done.
func (p *parser) run(ctx context.Context, start time.Time, out chan<- []row) error {
	batch := make([]row, 0, p.opts.BatchSize)
	batchSeen := make(map[uint64]int, p.opts.BatchSize)
	lastOffset := int64(-1)
	for {
		rec, err := p.cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		p.rows++
		var perr *csv.ParseError
		switch {
		case err == nil:
			line, _ := p.cr.FieldPos(0)
			if r, reason := p.parse(rec, line); reason != "" {
				p.reject(line, p.field(rec, p.email), reason)
			} else if ok := p.dedupe(&r, batch, batchSeen); ok {
				batchSeen[maphash.String(p.seed, r.norm)] = len(batch)
				batch = append(batch, r)
			}
		case errors.As(err, &perr) && errors.Is(perr.Err, csv.ErrFieldCount):
			p.reject(perr.StartLine, p.field(rec, p.email),
				fmt.Sprintf("wrong number of fields: %d, the header has %d", len(rec), p.nfields))
		case errors.As(err, &perr):
			// A broken quote: the reader resumes after the bad record. An
			// error that does not move the reader forward ends the import.
			if off := p.cr.InputOffset(); off == lastOffset {
				return fmt.Errorf("read line %d: %w", perr.StartLine, err)
			}
			p.reject(perr.StartLine, "", "malformed CSV: "+perr.Err.Error())
		default:
			return fmt.Errorf("read rows: %w", err)
		}
		lastOffset = p.cr.InputOffset()
		if len(batch) == p.opts.BatchSize {
			select {
			case out <- batch:
			case <-ctx.Done():
				return ctx.Err()
			}
			batch = make([]row, 0, p.opts.BatchSize)
			clear(batchSeen)
		}
		if p.opts.Progress != nil && p.rows%256 == 0 && time.Since(p.lastCall) >= DefaultProgressInterval {
			p.lastCall = time.Now()
			p.opts.Progress(p.progress(start, false))
		}
	}
	if len(batch) > 0 {
		select {
		case out <- batch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

func (p *parser) progress(start time.Time, finished bool) Progress {
	el := time.Since(start)
	pr := Progress{Rows: int64(p.rows), Bytes: p.cr.InputOffset() + p.bomLen, TotalBytes: p.opts.TotalBytes,
		Elapsed: el, Finished: finished}
	if el > 0 {
		pr.Rate = float64(p.rows) / el.Seconds()
	}
	return pr
}

// dedupe reports whether r is the first row of the file with its address,
// and rejects it otherwise.
func (p *parser) dedupe(r *row, batch []row, batchSeen map[uint64]int) bool {
	h := maphash.String(p.seed, r.norm)
	first, dup := p.seen[h]
	if !dup {
		p.seen[h] = int32(r.line)
		return true
	}
	if i, inBatch := batchSeen[h]; inBatch && batch[i].norm != r.norm {
		// A true hash collision, caught while both addresses are in memory.
		return true
	}
	p.reject(r.line, r.email, "duplicate of line "+strconv.Itoa(int(first))+" in the file")
	return false
}

func (p *parser) reject(line int, email, reason string) {
	p.skipped++
	if len(p.rejected) < p.opts.MaxRejections {
		p.rejected = append(p.rejected, Rejection{Line: line, Email: email, Reason: reason})
	}
}

func (p *parser) field(rec []string, i int) string {
	if i < 0 || i >= len(rec) {
		return ""
	}
	return strings.TrimSpace(rec[i])
}

// parse validates one record; it returns a reason when the row is refused.
// parse reads one record. A refused row gets every problem found in it,
// joined by "; ", so one pass over the file shows all that needs fixing.
func (p *parser) parse(rec []string, line int) (row, string) {
	r := row{line: line, email: p.field(rec, p.email)}
	var problems []string
	if r.email == "" {
		problems = append(problems, "missing email")
	} else if norm, err := customer.NormalizeEmail(r.email); err != nil {
		problems = append(problems, "bad email syntax: "+strings.TrimPrefix(err.Error(), customer.ErrInvalidEmail.Error()+": "))
	} else {
		r.norm = norm
	}
	r.firstName = p.field(rec, p.firstName)
	r.lastName = p.field(rec, p.lastName)
	r.locale = p.field(rec, p.locale)
	if tz := p.field(rec, p.timeZone); tz != "" {
		if p.validZone(tz) {
			r.timeZone = tz
		} else {
			problems = append(problems, fmt.Sprintf("bad time zone %q: give an IANA name such as Europe/Paris", tz))
		}
	}
	if s := p.field(rec, p.createdAt); s != "" {
		if t, err := parseTime(s); err == nil {
			r.createdAt = t
		} else {
			problems = append(problems, fmt.Sprintf("bad created_at %q: give an RFC 3339 time or a YYYY-MM-DD date", s))
		}
	}
	if s := p.field(rec, p.consent); s != "" {
		if state, ok := parseConsent(s); ok {
			r.consent, r.consentRaw = state, s
		} else {
			problems = append(problems, fmt.Sprintf("bad consent value %q: give yes/no, true/false, 1/0 or subscribed/unsubscribed", s))
		}
	}
	if len(problems) > 0 {
		return r, strings.Join(problems, "; ")
	}
	if s := p.field(rec, p.tags); s != "" {
		r.tags = customer.MergeTags(nil, strings.FieldsFunc(s, func(c rune) bool { return c == ';' || c == '|' }))
	}
	for _, c := range p.attrCols {
		if v := p.field(rec, c.index); v != "" {
			r.attrs = append(r.attrs, attr{key: c.key, value: v})
		}
	}
	return r, ""
}

func (p *parser) validZone(name string) bool {
	if ok, known := p.zones[name]; known {
		return ok
	}
	ok := customer.ValidateTimeZone(name) == nil
	if len(p.zones) < maxZoneCache {
		p.zones[name] = ok
	}
	return ok
}

func parseTime(s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t.UTC(), nil
	}
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		return time.Time{}, err
	}
	return t, nil
}

func parseConsent(s string) (customer.ConsentState, bool) {
	switch strings.ToLower(s) {
	case "yes", "true", "1", "subscribed":
		return customer.ConsentSubscribed, true
	case "no", "false", "0", "unsubscribed":
		return customer.ConsentUnsubscribed, true
	}
	return "", false
}
