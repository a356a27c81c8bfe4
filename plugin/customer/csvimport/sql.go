package csvimport

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/pgdialect"
	"github.com/uptrace/bun/driver/pgdriver"
)

// The SQL of the import. Every value is a bound placeholder; the only text
// assembled in code is the fixed column lists and the repeated placeholder
// groups of multi-row statements. No apostrophes in SQL comments: pgdriver
// v1.2.18 takes them for string literals.

// newColumns are the columns set on a new customer, in the order of
// newCustomer.values and of the COPY rows.
const newColumns = "public_id, email, email_normalized, first_name, last_name, locale, time_zone, source, " +
	"consent_state, consent_at, consent_source, consent_method, consent_proof, attributes, tags, " +
	"stage, stage_since, created_at, updated_at, observed_since"

const newColumnCount = 20

// newStage is the lifecycle stage of a customer created by an import.
const newStage = "SUBSCRIBER"

// sqliteInsertRows bounds the rows of one SQLite INSERT statement, to keep
// each statement well under SQLite limits on statement length.
const sqliteInsertRows = 500

// existingQuery returns the query that loads the stored customers with the
// given normalised addresses, and its one argument. On PostgreSQL the row
// version (xmin) lets the UPDATE detect a concurrent change.
func existingQuery(pg bool, norms []string) (string, any) {
	if pg {
		return "SELECT id, xmin::text, email_normalized, first_name, last_name, locale, time_zone, consent_state, " +
			"attributes::text, tags::text FROM customers WHERE email_normalized = ANY(?)", pgdialect.Array(norms)
	}
	return "SELECT id, '', email_normalized, first_name, last_name, locale, time_zone, consent_state, " +
		"attributes, tags FROM customers WHERE email_normalized IN (?)", bun.List(norms)
}

// copyNew streams new customers into customers with COPY on conn, inside the
// transaction open on that connection.
func copyNew(ctx context.Context, conn bun.Conn, news []newCustomer, now time.Time, source string) error {
	var buf bytes.Buffer
	buf.Grow(len(news) * 400)
	for i := range news {
		n := &news[i]
		appendCopyText(&buf, n.publicID)
		appendCopyText(&buf, n.email)
		appendCopyText(&buf, n.norm)
		appendCopyNullable(&buf, n.firstName)
		appendCopyNullable(&buf, n.lastName)
		appendCopyNullable(&buf, n.locale)
		appendCopyNullable(&buf, n.timeZone)
		appendCopyText(&buf, source)
		appendCopyText(&buf, string(n.consent))
		if n.consentAt != nil {
			appendCopyTime(&buf, *n.consentAt)
		} else {
			buf.WriteString("\\N\t")
		}
		appendCopyNullable(&buf, n.consentSource)
		appendCopyNullable(&buf, n.consentMethod)
		appendCopyText(&buf, string(n.consentProof))
		appendCopyText(&buf, string(n.attributes))
		appendCopyText(&buf, string(n.tags))
		appendCopyText(&buf, newStage)
		appendCopyTime(&buf, n.createdAt)
		appendCopyTime(&buf, n.createdAt)
		appendCopyTime(&buf, now)
		// Refrain observes an imported customer from the import on: the
		// file brings no engagement history.
		appendCopyTime(&buf, now)
		// Swap the last field separator for the row end.
		buf.Truncate(buf.Len() - 1)
		buf.WriteByte('\n')
	}
	if _, err := pgdriver.CopyFrom(ctx, conn, &buf, "COPY customers ("+newColumns+") FROM STDIN"); err != nil {
		return fmt.Errorf("copy new customers: %w", err)
	}
	return nil
}

// appendCopyText writes s as a field of COPY text format, then a tab.
func appendCopyText(buf *bytes.Buffer, s string) {
	start := 0
	for i := 0; i < len(s); i++ {
		var esc string
		switch s[i] {
		case '\\':
			esc = `\\`
		case '\t':
			esc = `\t`
		case '\n':
			esc = `\n`
		case '\r':
			esc = `\r`
		default:
			continue
		}
		buf.WriteString(s[start:i])
		buf.WriteString(esc)
		start = i + 1
	}
	buf.WriteString(s[start:])
	buf.WriteByte('\t')
}

// appendCopyNullable writes s, or NULL when s is empty.
func appendCopyNullable(buf *bytes.Buffer, s string) {
	if s == "" {
		buf.WriteString("\\N\t")
		return
	}
	appendCopyText(buf, s)
}

func appendCopyTime(buf *bytes.Buffer, t time.Time) {
	var b [40]byte
	buf.Write(t.UTC().AppendFormat(b[:0], "2006-01-02 15:04:05.999999Z07:00"))
	buf.WriteByte('\t')
}

// insertNew inserts new customers with multi-row INSERTs (SQLite).
func insertNew(ctx context.Context, db bun.IDB, news []newCustomer, now time.Time, source string) error {
	group := "(" + strings.TrimSuffix(strings.Repeat("?, ", newColumnCount), ", ") + ")"
	for start := 0; start < len(news); start += sqliteInsertRows {
		chunk := news[start:min(start+sqliteInsertRows, len(news))]
		args := make([]any, 0, len(chunk)*newColumnCount)
		for i := range chunk {
			n := &chunk[i]
			args = append(args, n.publicID, n.email, n.norm, nullable(n.firstName), nullable(n.lastName),
				nullable(n.locale), nullable(n.timeZone), source, string(n.consent), n.consentAt,
				nullable(n.consentSource), nullable(n.consentMethod), string(n.consentProof), string(n.attributes),
				string(n.tags), newStage, n.createdAt, n.createdAt, now, now)
		}
		query := "INSERT INTO customers (" + newColumns + ") VALUES " +
			strings.TrimSuffix(strings.Repeat(group+", ", len(chunk)), ", ")
		if _, err := db.ExecContext(ctx, query, args...); err != nil {
			return fmt.Errorf("insert new customers: %w", err)
		}
	}
	return nil
}

// update applies changes with one set-based UPDATE. Nil values keep the
// stored ones. On PostgreSQL a row whose version moved since it was read is
// left alone, and the batch is retried.
func (w *writer) update(ctx context.Context, db bun.IDB, changes []change, now time.Time) error {
	jsonb, ts, guard := "", "", ""
	if w.pg {
		jsonb, ts, guard = "::jsonb", "::timestamptz", " AND customers.xmin::text = v.version"
	}
	const cols = 14
	group := "(" + strings.TrimSuffix(strings.Repeat("?, ", cols), ", ") + ")"
	args := make([]any, 0, len(changes)*cols)
	for i := range changes {
		c := &changes[i]
		var state, source, method, proof *string
		var at *time.Time
		if c.consent != nil {
			s := string(c.consent.state)
			state, at, source, method, proof = &s, &c.consent.at, &c.consent.source, &c.consent.method, &c.consent.proof
		}
		args = append(args, c.id, c.version, c.firstName, c.lastName, c.locale, c.timeZone, c.attrs, c.tags,
			state, at, source, method, proof, now)
	}
	query := "WITH v (id, version, first_name, last_name, locale, time_zone, attributes, tags, consent_state, " +
		"consent_at, consent_source, consent_method, consent_proof, updated_at) AS (VALUES " +
		strings.TrimSuffix(strings.Repeat(group+", ", len(changes)), ", ") + ") " +
		"UPDATE customers SET " +
		"first_name = COALESCE(v.first_name, customers.first_name), " +
		"last_name = COALESCE(v.last_name, customers.last_name), " +
		"locale = COALESCE(v.locale, customers.locale), " +
		"time_zone = COALESCE(v.time_zone, customers.time_zone), " +
		"attributes = COALESCE(v.attributes" + jsonb + ", customers.attributes), " +
		"tags = COALESCE(v.tags" + jsonb + ", customers.tags), " +
		"consent_state = COALESCE(v.consent_state, customers.consent_state), " +
		"consent_at = CASE WHEN v.consent_state IS NULL THEN customers.consent_at ELSE v.consent_at" + ts + " END, " +
		"consent_source = CASE WHEN v.consent_state IS NULL THEN customers.consent_source ELSE v.consent_source END, " +
		"consent_method = CASE WHEN v.consent_state IS NULL THEN customers.consent_method ELSE v.consent_method END, " +
		"consent_proof = CASE WHEN v.consent_state IS NULL THEN customers.consent_proof ELSE v.consent_proof" + jsonb + " END, " +
		"updated_at = v.updated_at" + ts + " " +
		"FROM v WHERE customers.id = v.id" + guard
	res, err := db.ExecContext(ctx, query, args...)
	if err != nil {
		return fmt.Errorf("update customers: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("count updated customers: %w", err)
	}
	if int(n) != len(changes) {
		return fmt.Errorf("%w: updated %d of %d customers", errConflict, n, len(changes))
	}
	return nil
}

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}
