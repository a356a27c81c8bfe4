package csvimport

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/refrain-dev/refrain/plugin/customer"
	"github.com/refrain-dev/refrain/plugin/store"
	"github.com/uptrace/bun"
)

// errConflict means another writer created or changed one of the batch's
// customers between our read and our write; the batch is rolled back and
// tried again.
var errConflict = errors.New("customers changed by another writer during the batch")

// counts is the outcome of one batch.
type counts struct {
	imported, updated, unchanged int
}

// stored is what the import reads of a customer already in the database.
type stored struct {
	id         int64
	version    string
	norm       string
	firstName  sql.NullString
	lastName   sql.NullString
	locale     sql.NullString
	timeZone   sql.NullString
	consent    string
	attributes string
	tags       string
}

// newCustomer is a customer to create, every value final.
type newCustomer struct {
	publicID      string
	email         string
	norm          string
	firstName     string
	lastName      string
	locale        string
	timeZone      string
	consent       customer.ConsentState
	consentAt     *time.Time
	consentSource string
	consentMethod string
	consentProof  []byte
	attributes    []byte
	tags          []byte
	createdAt     time.Time
}

// change is the update of a stored customer. Nil fields keep the stored value.
type change struct {
	id        int64
	version   string
	firstName *string
	lastName  *string
	locale    *string
	timeZone  *string
	attrs     *string
	tags      *string
	consent   *consentChange
}

type consentChange struct {
	state  customer.ConsentState
	at     time.Time
	source string
	method string
	proof  string
}

// writer writes batches; each worker has its own.
type writer struct {
	db *bun.DB
	// pg selects the PostgreSQL algorithm, a different one rather than a
	// different spelling: new rows streamed with COPY, updates checked
	// against the row version (xmin). SQLite takes multi-row inserts.
	pg   bool
	conn bun.Conn
	opts Options
}

func newWriter(ctx context.Context, db *bun.DB, opts Options) (*writer, error) {
	w := &writer{db: db, pg: store.Copy(db), opts: opts}
	if w.pg && !opts.DryRun {
		// COPY needs the driver connection itself, and the batch transaction
		// must run on that same connection.
		conn, err := db.Conn(ctx)
		if err != nil {
			return nil, fmt.Errorf("take a database connection: %w", err)
		}
		w.conn = conn
	}
	return w, nil
}

func (w *writer) close() {
	if w.conn.Conn != nil {
		_ = w.conn.Close()
	}
}

// apply writes one batch, retrying it when another writer got in the way.
func (w *writer) apply(ctx context.Context, rows []row) (counts, error) {
	for attempt := 1; ; attempt++ {
		c, err := w.applyOnce(ctx, rows)
		if errors.Is(err, errConflict) && attempt < maxAttempts {
			w.opts.Logger.InfoContext(ctx, "customer import batch retried", slog.Int("first_line", rows[0].line),
				slog.String("error", err.Error()))
			continue
		}
		return c, err
	}
}

func (w *writer) applyOnce(ctx context.Context, rows []row) (counts, error) {
	now := w.opts.Clock.Now().UTC()
	if w.opts.DryRun {
		existing, err := w.selectExisting(ctx, w.db, rows)
		if err != nil {
			return counts{}, err
		}
		c, _, _, err := w.plan(rows, existing, now)
		return c, err
	}
	var (
		tx  bun.Tx
		err error
	)
	if w.pg {
		tx, err = w.conn.BeginTx(ctx, nil)
	} else {
		tx, err = w.db.BeginTx(ctx, nil)
	}
	if err != nil {
		return counts{}, fmt.Errorf("begin batch: %w", err)
	}
	defer func() { _ = tx.Rollback() }()

	existing, err := w.selectExisting(ctx, tx, rows)
	if err != nil {
		return counts{}, err
	}
	c, news, changes, err := w.plan(rows, existing, now)
	if err != nil {
		return counts{}, err
	}
	if len(news) > 0 {
		if w.pg {
			err = copyNew(ctx, w.conn, news, now, string(w.opts.Source))
		} else {
			err = insertNew(ctx, tx, news, now, string(w.opts.Source))
		}
		if err != nil {
			if isUniqueViolation(err) {
				return counts{}, fmt.Errorf("%w: %w", errConflict, err)
			}
			return counts{}, err
		}
	}
	if len(changes) > 0 {
		if err := w.update(ctx, tx, changes, now); err != nil {
			return counts{}, err
		}
	}
	if err := tx.Commit(); err != nil {
		return counts{}, fmt.Errorf("commit batch: %w", err)
	}
	return c, nil
}

// selectExisting loads the stored customers with the batch's addresses.
func (w *writer) selectExisting(ctx context.Context, db bun.IDB, rows []row) (map[string]*stored, error) {
	norms := make([]string, len(rows))
	for i := range rows {
		norms[i] = rows[i].norm
	}
	query, arg := existingQuery(w.pg, norms)
	rs, err := db.QueryContext(ctx, query, arg)
	if err != nil {
		return nil, fmt.Errorf("look up stored customers: %w", err)
	}
	defer rs.Close()
	out := make(map[string]*stored, len(rows))
	for rs.Next() {
		s := new(stored)
		if err := rs.Scan(&s.id, &s.version, &s.norm, &s.firstName, &s.lastName, &s.locale, &s.timeZone,
			&s.consent, &s.attributes, &s.tags); err != nil {
			return nil, fmt.Errorf("read stored customer: %w", err)
		}
		out[s.norm] = s
	}
	if err := rs.Err(); err != nil {
		return nil, fmt.Errorf("look up stored customers: %w", err)
	}
	return out, nil
}

// plan sorts the batch into customers to create, customers to change and
// rows that change nothing.
func (w *writer) plan(rows []row, existing map[string]*stored, now time.Time) (counts, []newCustomer, []change, error) {
	var (
		c       counts
		news    []newCustomer
		changes []change
	)
	for i := range rows {
		r := &rows[i]
		s, ok := existing[r.norm]
		if !ok {
			c.imported++
			if !w.opts.DryRun {
				news = append(news, w.newCustomer(r, now))
			}
			continue
		}
		ch, changed, err := w.diff(r, s, now)
		if err != nil {
			return counts{}, nil, nil, fmt.Errorf("compare line %d with customer %d: %w", r.line, s.id, err)
		}
		if !changed {
			c.unchanged++
			continue
		}
		c.updated++
		changes = append(changes, ch)
	}
	return c, news, changes, nil
}

func (w *writer) newCustomer(r *row, now time.Time) newCustomer {
	n := newCustomer{publicID: customer.NewPublicID(), email: r.email, norm: r.norm, firstName: r.firstName,
		lastName: r.lastName, locale: r.locale, timeZone: r.timeZone, consent: customer.ConsentUnknown,
		consentProof: []byte("{}"), attributes: attrsJSON(r.attrs), tags: tagsJSON(r.tags), createdAt: now}
	if !r.createdAt.IsZero() {
		n.createdAt = r.createdAt
	}
	if r.consent != "" {
		at := now
		n.consent, n.consentAt = r.consent, &at
		n.consentSource, n.consentMethod = string(w.opts.Source), ConsentMethod
		n.consentProof = w.proof(r)
	}
	return n
}

// proof is the consent proof of a row: where the consent came from.
func (w *writer) proof(r *row) []byte {
	b, _ := json.Marshal(struct {
		Source string `json:"source"`
		Method string `json:"method"`
		File   string `json:"file,omitempty"`
		Line   int    `json:"line"`
		Value  string `json:"value"`
	}{string(w.opts.Source), ConsentMethod, w.opts.Name, r.line, r.consentRaw})
	return b
}

// diff compares a row with the stored customer and returns what to change.
func (w *writer) diff(r *row, s *stored, now time.Time) (change, bool, error) {
	ch := change{id: s.id, version: s.version}
	changed := false
	for _, f := range []struct {
		given string
		cur   sql.NullString
		dst   **string
	}{
		{r.firstName, s.firstName, &ch.firstName}, {r.lastName, s.lastName, &ch.lastName},
		{r.locale, s.locale, &ch.locale}, {r.timeZone, s.timeZone, &ch.timeZone},
	} {
		if f.given != "" && (!f.cur.Valid || f.cur.String != f.given) {
			v := f.given
			*f.dst, changed = &v, true
		}
	}
	if len(r.attrs) > 0 {
		var attrs map[string]any
		if err := json.Unmarshal([]byte(s.attributes), &attrs); err != nil {
			return change{}, false, fmt.Errorf("decode stored attributes: %w", err)
		}
		if attrs == nil {
			attrs = make(map[string]any, len(r.attrs))
		}
		merged := false
		for _, a := range r.attrs {
			if cur, ok := attrs[a.key].(string); !ok || cur != a.value {
				attrs[a.key], merged = a.value, true
			}
		}
		if merged {
			b, err := json.Marshal(attrs)
			if err != nil {
				return change{}, false, fmt.Errorf("encode attributes: %w", err)
			}
			v := string(b)
			ch.attrs, changed = &v, true
		}
	}
	if len(r.tags) > 0 {
		var tags []string
		if err := json.Unmarshal([]byte(s.tags), &tags); err != nil {
			return change{}, false, fmt.Errorf("decode stored tags: %w", err)
		}
		have := make(map[string]struct{}, len(tags))
		for _, t := range tags {
			have[t] = struct{}{}
		}
		for _, t := range r.tags {
			if _, ok := have[t]; !ok {
				v := string(tagsJSON(customer.MergeTags(tags, r.tags)))
				ch.tags, changed = &v, true
				break
			}
		}
	}
	if r.consent != "" && string(r.consent) != s.consent {
		ch.consent = &consentChange{state: r.consent, at: now, source: string(w.opts.Source), method: ConsentMethod,
			proof: string(w.proof(r))}
		changed = true
	}
	return ch, changed, nil
}

func isUniqueViolation(err error) bool {
	msg := err.Error()
	return strings.Contains(msg, "SQLSTATE=23505") || strings.Contains(msg, "UNIQUE constraint failed") ||
		strings.Contains(msg, "duplicate key value")
}

// attrsJSON encodes attributes as a JSON object of strings.
func attrsJSON(attrs []attr) []byte {
	if len(attrs) == 0 {
		return []byte("{}")
	}
	b := make([]byte, 0, 64)
	b = append(b, '{')
	for i, a := range attrs {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, a.key)
		b = append(b, ':')
		b = appendJSONString(b, a.value)
	}
	return append(b, '}')
}

// tagsJSON encodes tags as a JSON array of strings.
func tagsJSON(tags []string) []byte {
	if len(tags) == 0 {
		return []byte("[]")
	}
	b := make([]byte, 0, 32)
	b = append(b, '[')
	for i, t := range tags {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, t)
	}
	return append(b, ']')
}

// appendJSONString appends s as a JSON string. It is json.Marshal for a
// string without the allocations, which matter at a million rows.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x80 {
			r, size := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && size == 1 {
				b = append(b, `\ufffd`...)
			} else {
				b = append(b, s[i:i+size]...)
			}
			i += size
			continue
		}
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c < 0x20:
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		default:
			b = append(b, c)
		}
		i++
	}
	return append(b, '"')
}
