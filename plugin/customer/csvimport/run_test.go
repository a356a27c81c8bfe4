package csvimport_test

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/refrain-dev/refrain/plugin/clock"
	"github.com/refrain-dev/refrain/plugin/customer"
	"github.com/refrain-dev/refrain/plugin/customer/csvimport"
	"github.com/refrain-dev/refrain/plugin/store/storetest"
	"github.com/stretchr/testify/require"
	"github.com/uptrace/bun"
)

var start = time.Date(2026, 11, 24, 9, 30, 0, 0, time.UTC)

func opts(clk clock.Clock) csvimport.Options {
	return csvimport.Options{Clock: clk, Name: "customers.csv"}
}

func run(t *testing.T, db *storetest.DB, csv string, o csvimport.Options) csvimport.Report {
	t.Helper()
	rep, err := csvimport.Run(context.Background(), db.DB, strings.NewReader(csv), o)
	require.NoError(t, err)
	return rep
}

func get(t *testing.T, db bun.IDB, email string) *customer.Customer {
	t.Helper()
	c, err := customer.GetByEmail(context.Background(), db, email)
	require.NoError(t, err, email)
	return c
}

func count(t *testing.T, db bun.IDB) int {
	t.Helper()
	n, err := db.NewSelect().Model((*customer.Customer)(nil)).Count(context.Background())
	require.NoError(t, err)
	return int(n)
}

func TestImportStoresGoodRows(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *storetest.DB) {
		clk := clock.NewVirtual(start)
		csv := "\ufeff Email ,First_Name,last_name,LOCALE,timezone,created_at,consent,tags,Loyalty_Tier,city\n" +
			"Alice@Example.COM,Alice,Martin,fr-FR,Europe/Paris,2024-03-05T10:11:12+01:00,yes,vip;newsletter|vip,gold,\n" +
			"bob@example.com,Bob,,en,,2023-02-01,No,,,Lyon\n" +
			"carol@example.com,,,,,,,,,\n"
		rep := run(t, db, csv, opts(clk))
		require.Equal(t, csvimport.Report{Rows: 3, Imported: 3, Duration: rep.Duration}, rep)

		a := get(t, db, "alice@example.com")
		require.Equal(t, "Alice@Example.COM", *a.Email)
		require.Equal(t, "alice@example.com", *a.EmailNormalized)
		require.Equal(t, "Alice", *a.FirstName)
		require.Equal(t, "Martin", *a.LastName)
		require.Equal(t, "fr-FR", *a.Locale)
		require.Equal(t, "Europe/Paris", *a.TimeZone)
		require.Equal(t, customer.SourceImport, a.Source)
		require.Equal(t, "SUBSCRIBER", a.Stage)
		require.True(t, strings.HasPrefix(a.PublicID, "rfn_"), a.PublicID)
		require.True(t, time.Date(2024, 3, 5, 9, 11, 12, 0, time.UTC).Equal(a.CreatedAt), a.CreatedAt)
		require.True(t, a.CreatedAt.Equal(*a.StageSince))
		require.True(t, start.Equal(a.UpdatedAt), a.UpdatedAt)
		require.Equal(t, map[string]any{"loyalty_tier": "gold"}, a.Attributes)
		require.Equal(t, []string{"newsletter", "vip"}, a.Tags)
		require.Equal(t, customer.ConsentSubscribed, a.ConsentState)
		require.True(t, start.Equal(*a.ConsentAt))
		require.Equal(t, "import", *a.ConsentSource)
		require.Equal(t, "import", *a.ConsentMethod)
		require.Equal(t, map[string]any{"source": "import", "method": "import", "file": "customers.csv",
			"line": float64(2), "value": "yes"}, a.ConsentProof)

		b := get(t, db, "bob@example.com")
		require.Equal(t, "Bob", *b.FirstName)
		require.Nil(t, b.LastName)
		require.Nil(t, b.TimeZone)
		require.True(t, time.Date(2023, 2, 1, 0, 0, 0, 0, time.UTC).Equal(b.CreatedAt), b.CreatedAt)
		require.Equal(t, map[string]any{"city": "Lyon"}, b.Attributes)
		require.Equal(t, []string{}, b.Tags)
		require.Equal(t, customer.ConsentUnsubscribed, b.ConsentState)
		require.Equal(t, float64(3), b.ConsentProof["line"])

		c := get(t, db, "carol@example.com")
		require.Nil(t, c.FirstName)
		require.Equal(t, customer.ConsentUnknown, c.ConsentState)
		require.Nil(t, c.ConsentAt)
		require.Empty(t, c.ConsentProof)
		require.Empty(t, c.Attributes)
		require.True(t, start.Equal(c.CreatedAt), "no created_at in the file: the import time")
	})
}

func TestImportRejectsBadRowsWithTheirLines(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *storetest.DB) {
		csv := "email,first_name,timezone,created_at,consent,note\n" + // line 1
			"ok1@example.com,One,UTC,2024-01-01,yes,plain\n" + // 2
			"not-an-email,Two,,,,\n" + // 3
			"ok2@example.com,\"Smith, Jr.\nthe second\",,,,\"multi\nline\nnote\"\n" + // 4-7
			",NoEmail,,,,\n" + // 8
			"tz@example.com,Tz,Mars/Olympus,,,\n" + // 9
			"date@example.com,Date,,03/04/2024,,\n" + // 10
			"consent@example.com,Consent,,,maybe,\n" + // 11
			"OK1@example.com,Dup,,,,\n" + // 12
			"fields@example.com,Too,many,fields,here,x,y\n" + // 13
			"ok3@example.com,Three,,,,\n" // 14
		rep := run(t, db, csv, opts(clock.NewVirtual(start)))
		require.Equal(t, 10, rep.Rows)
		require.Equal(t, 3, rep.Imported)
		require.Equal(t, 7, rep.Skipped)
		require.Zero(t, rep.RejectedNotListed)
		require.Equal(t, []csvimport.Rejection{
			{Line: 3, Email: "not-an-email", Reason: `bad email syntax: "not-an-email" has no local part or domain`},
			{Line: 8, Email: "", Reason: "missing email"},
			{Line: 9, Email: "tz@example.com", Reason: `bad time zone "Mars/Olympus": give an IANA name such as Europe/Paris`},
			{Line: 10, Email: "date@example.com", Reason: `bad created_at "03/04/2024": give an RFC 3339 time or a YYYY-MM-DD date`},
			{Line: 11, Email: "consent@example.com", Reason: `bad consent value "maybe": give yes/no, true/false, 1/0 or subscribed/unsubscribed`},
			{Line: 12, Email: "OK1@example.com", Reason: "duplicate of line 2 in the file"},
			{Line: 13, Email: "fields@example.com", Reason: "wrong number of fields: 7, the header has 6"},
		}, rep.Rejected)
		require.Equal(t, 3, count(t, db))

		two := get(t, db, "ok2@example.com")
		require.Equal(t, "Smith, Jr.\nthe second", *two.FirstName)
		require.Equal(t, map[string]any{"note": "multi\nline\nnote"}, two.Attributes)
		one := get(t, db, "ok1@example.com")
		require.Equal(t, "One", *one.FirstName, "the first occurrence is kept")
		require.Equal(t, float64(2), one.ConsentProof["line"])
	})
}

// TestImportListsEveryProblemOfARow: a row wrong in three ways is refused
// once, with the three problems, so one pass shows all that needs fixing.
func TestImportListsEveryProblemOfARow(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *storetest.DB) {
		csv := "email,timezone,created_at,consent\n" +
			"not-an-email,Mars/Olympus,03/04/2024,maybe\n"
		rep := run(t, db, csv, opts(clock.NewVirtual(start)))
		require.Equal(t, 1, rep.Skipped)
		require.Equal(t, []csvimport.Rejection{{Line: 2, Email: "not-an-email", Reason: `bad email syntax: "not-an-email" has no local part or domain; ` +
			`bad time zone "Mars/Olympus": give an IANA name such as Europe/Paris; ` +
			`bad created_at "03/04/2024": give an RFC 3339 time or a YYYY-MM-DD date; ` +
			`bad consent value "maybe": give yes/no, true/false, 1/0 or subscribed/unsubscribed`}}, rep.Rejected)
	})
}

func TestImportRefusesAFileWithoutEmailColumn(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *storetest.DB) {
		_, err := csvimport.Run(context.Background(), db.DB, strings.NewReader("mail,first_name\na@example.com,A\n"),
			opts(clock.NewVirtual(start)))
		require.ErrorIs(t, err, csvimport.ErrMissingColumn)
		require.ErrorContains(t, err, `missing column "email" (columns found: mail, first_name)`)

		_, err = csvimport.Run(context.Background(), db.DB, strings.NewReader(""), opts(clock.NewVirtual(start)))
		require.ErrorContains(t, err, "the file is empty")

		_, err = csvimport.Run(context.Background(), db.DB, strings.NewReader("email,EMAIL\n"), opts(clock.NewVirtual(start)))
		require.ErrorContains(t, err, `column "email" appears twice (columns 1 and 2)`)
		require.Zero(t, count(t, db))
	})
}

func TestImportTwiceChangesNothing(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *storetest.DB) {
		clk := clock.NewVirtual(start)
		csv := "email,first_name,last_name,timezone,consent,tags,tier\n" +
			"a@example.com,Ann,Lee,Europe/Paris,yes,vip,gold\n" +
			"b@example.com,Ben,,America/New_York,no,,\n" +
			"c@example.com,,,,,x|y,silver\n"
		rep := run(t, db, csv, opts(clk))
		require.Equal(t, 3, rep.Imported)
		before := get(t, db, "a@example.com")

		clk.Advance(time.Hour)
		rep = run(t, db, csv, opts(clk))
		require.Equal(t, csvimport.Report{Rows: 3, Unchanged: 3, Duration: rep.Duration}, rep)
		after := get(t, db, "a@example.com")
		require.True(t, before.UpdatedAt.Equal(after.UpdatedAt), "an unchanged row is not written")
		require.Equal(t, before.ConsentProof, after.ConsentProof)

		// A second file renames one customer and repeats the others.
		clk.Advance(time.Hour)
		rep = run(t, db, strings.Replace(csv, "Ben,", "Benjamin,", 1), opts(clk))
		require.Equal(t, csvimport.Report{Rows: 3, Updated: 1, Unchanged: 2, Duration: rep.Duration}, rep)
		b := get(t, db, "b@example.com")
		require.Equal(t, "Benjamin", *b.FirstName)
		require.True(t, start.Add(2*time.Hour).Equal(b.UpdatedAt))
		require.True(t, start.Equal(*b.ConsentAt), "the consent did not change: its proof stays")
		require.Equal(t, "America/New_York", *b.TimeZone)
	})
}

func TestImportMergesIntoExistingCustomers(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *storetest.DB) {
		ctx := context.Background()
		email, first := "Dana@Example.com", "Dana"
		_, _, err := customer.Upsert(ctx, db, start.Add(-24*time.Hour), customer.Profile{Email: &email, FirstName: &first,
			Source: customer.SourceOnline, Attributes: map[string]any{"plan": "pro", "tier": "bronze"}, Tags: []string{"a"},
			Consent: &customer.Consent{State: customer.ConsentSubscribed, At: start.Add(-24 * time.Hour), Source: "form", Method: "double_opt_in"}})
		require.NoError(t, err)

		clk := clock.NewVirtual(start)
		csv := "email,last_name,consent,tags,tier,city\n" +
			"dana@example.com,Doe,yes,b;a,gold,\n"
		rep := run(t, db, csv, opts(clk))
		require.Equal(t, csvimport.Report{Rows: 1, Updated: 1, Duration: rep.Duration}, rep)
		d := get(t, db, "dana@example.com")
		require.Equal(t, "Dana@Example.com", *d.Email, "the stored address is kept")
		require.Equal(t, "Dana", *d.FirstName, "a column absent from the file keeps its value")
		require.Equal(t, "Doe", *d.LastName)
		require.Equal(t, customer.SourceOnline, d.Source)
		require.Equal(t, map[string]any{"plan": "pro", "tier": "gold"}, d.Attributes)
		require.Equal(t, []string{"a", "b"}, d.Tags)
		require.Equal(t, customer.ConsentSubscribed, d.ConsentState)
		require.Equal(t, "form", *d.ConsentSource, "consent already subscribed: no new proof")
		require.True(t, start.Equal(d.UpdatedAt))

		// Unsubscribing through a file records the change and its proof.
		clk.Advance(time.Minute)
		rep = run(t, db, "email,consent\n\n dana@example.com ,unsubscribed\n", opts(clk))
		require.Equal(t, 1, rep.Updated)
		d = get(t, db, "dana@example.com")
		require.Equal(t, customer.ConsentUnsubscribed, d.ConsentState)
		require.True(t, start.Add(time.Minute).Equal(*d.ConsentAt))
		require.Equal(t, "import", *d.ConsentSource)
		require.Equal(t, "import", *d.ConsentMethod)
		require.Equal(t, map[string]any{"source": "import", "method": "import", "file": "customers.csv",
			"line": float64(3), "value": "unsubscribed"}, d.ConsentProof)
		require.Equal(t, map[string]any{"plan": "pro", "tier": "gold"}, d.Attributes)
	})
}

func TestImportDryRunWritesNothing(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *storetest.DB) {
		clk := clock.NewVirtual(start)
		csv := "email,first_name\na@example.com,Ann\nb@example.com,Ben\nbad,X\n"
		o := opts(clk)
		o.DryRun = true
		rep := run(t, db, csv, o)
		require.Equal(t, 2, rep.Imported)
		require.Equal(t, 1, rep.Skipped)
		require.True(t, rep.DryRun)
		require.Zero(t, count(t, db))

		run(t, db, csv, opts(clk))
		changed := "email,first_name\na@example.com,Ann\nb@example.com,Benjamin\nc@example.com,Cy\n"
		rep = run(t, db, changed, o)
		require.Equal(t, csvimport.Report{Rows: 3, Imported: 1, Updated: 1, Unchanged: 1, DryRun: true, Duration: rep.Duration}, rep)
		require.Equal(t, 2, count(t, db))
		require.Equal(t, "Ben", *get(t, db, "b@example.com").FirstName)
	})
}

func TestImportBatchesManyRows(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *storetest.DB) {
		const n = 20000
		var b strings.Builder
		b.WriteString("email,first_name,consent,tags,segment\n")
		for i := range n {
			fmt.Fprintf(&b, "user%05d@example.com,User %d,%s,t%d,s%d\n", i, i, []string{"yes", "no", ""}[i%3], i%7, i%5)
		}
		// Line 20002 repeats the row on line 12, many batches earlier.
		b.WriteString("USER00010@example.com,Again,yes,,\n")
		csv := b.String()
		clk := clock.NewVirtual(start)
		o := opts(clk)
		o.BatchSize = 1000
		o.Workers = 3
		o.MaxRejections = 1
		var calls []csvimport.Progress
		o.Progress = func(p csvimport.Progress) { calls = append(calls, p) }

		rep := run(t, db, csv, o)
		require.Equal(t, n+1, rep.Rows)
		require.Equal(t, n, rep.Imported)
		require.Equal(t, []csvimport.Rejection{{Line: 20002, Email: "USER00010@example.com", Reason: "duplicate of line 12 in the file"}}, rep.Rejected)
		require.Equal(t, n, count(t, db))
		require.NotEmpty(t, calls)
		last := calls[len(calls)-1]
		require.True(t, last.Finished)
		require.Equal(t, int64(n+1), last.Rows)
		require.Equal(t, int64(len(csv)), last.Bytes)
		require.Equal(t, int64(len(csv)), last.TotalBytes)

		u := get(t, db, "user19999@example.com")
		require.Equal(t, "User 19999", *u.FirstName)
		require.Equal(t, map[string]any{"segment": "s4"}, u.Attributes)
		require.Equal(t, customer.ConsentUnsubscribed, u.ConsentState, "row 19999 says no")
		require.Equal(t, float64(20001), u.ConsentProof["line"])

		clk.Advance(time.Hour)
		o.Progress = nil
		rep = run(t, db, csv, o)
		require.Equal(t, 0, rep.Imported)
		require.Equal(t, 0, rep.Updated)
		require.Equal(t, n, rep.Unchanged)
		require.Equal(t, 1, rep.Skipped)
	})
}

func TestImportCountsRejectionsBeyondTheList(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *storetest.DB) {
		o := opts(clock.NewVirtual(start))
		o.MaxRejections = 2
		rep := run(t, db, "email\nx\ny\nz\nok@example.com\nw\n", o)
		require.Equal(t, 4, rep.Skipped)
		require.Len(t, rep.Rejected, 2)
		require.Equal(t, 2, rep.RejectedNotListed)
		require.Equal(t, []int{2, 3}, []int{rep.Rejected[0].Line, rep.Rejected[1].Line})
		require.Equal(t, 1, rep.Imported)
	})
}

func TestFormatProgress(t *testing.T) {
	p := csvimport.Progress{Rows: 420000, Bytes: 42, TotalBytes: 100, Elapsed: 7 * time.Second, Rate: 61000}
	require.Equal(t, "[============>                 ] 42% 420,000 rows 61,000 rows/s ETA 10s", csvimport.FormatProgress(p))
	p = csvimport.Progress{Rows: 1234567, Rate: 999, Elapsed: time.Second}
	require.Equal(t, "1,234,567 rows 999 rows/s", csvimport.FormatProgress(p))

	var b strings.Builder
	draw := csvimport.NewTerminalProgress(&b)
	draw(csvimport.Progress{Rows: 1000, Bytes: 50, TotalBytes: 100, Elapsed: time.Second, Rate: 1000})
	draw(csvimport.Progress{Rows: 2000, Bytes: 100, TotalBytes: 100, Elapsed: 2 * time.Second, Rate: 1000, Finished: true})
	require.Equal(t, "\r[===============>              ] 50% 1,000 rows 1,000 rows/s ETA 1s"+
		"\r[==============================] 100% 2,000 rows 1,000 rows/s      \n", b.String(),
		"the shorter last line is padded over the longer one")

	b.Reset()
	logp := csvimport.NewLogProgress(&b, time.Minute)
	logp(csvimport.Progress{Rows: 10, Elapsed: time.Second, Rate: 10})
	logp(csvimport.Progress{Rows: 20, Elapsed: 2 * time.Second, Rate: 10})
	logp(csvimport.Progress{Rows: 30, Elapsed: 3 * time.Second, Rate: 10, Finished: true})
	require.Equal(t, "importing: 10 rows, 10 rows/s\ndone: 30 rows, 10 rows/s\n", b.String())
}

// Two imports of the same file at once, from two connection pools: every
// customer is created once, and the batch that loses a race is retried and
// finds the rows the other import created.
func TestConcurrentImportsOfOneFile(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *storetest.DB) {
		const n = 3000
		var b strings.Builder
		b.WriteString("email,first_name,tags\n")
		for i := range n {
			fmt.Fprintf(&b, "p%d@example.com,P%d,t\n", i, i)
		}
		csv := b.String()
		o := opts(clock.NewVirtual(start))
		o.BatchSize = 250
		var logs syncBuffer
		o.Logger = slog.New(slog.NewTextHandler(&logs, nil))
		dbs := []*bun.DB{db.DB, db.Reopen(t)}
		reps := make([]csvimport.Report, len(dbs))
		errs := make([]error, len(dbs))
		done := make(chan struct{})
		for i := range dbs {
			go func() {
				defer func() { done <- struct{}{} }()
				reps[i], errs[i] = csvimport.Run(context.Background(), dbs[i], strings.NewReader(csv), o)
			}()
		}
		for range dbs {
			<-done
		}
		for _, err := range errs {
			require.NoError(t, err)
		}
		require.Equal(t, n, reps[0].Imported+reps[1].Imported)
		require.Equal(t, n, reps[0].Unchanged+reps[1].Unchanged)
		require.Zero(t, reps[0].Updated+reps[1].Updated)
		require.Equal(t, n, count(t, db))
		t.Logf("batches retried after a race: %d", strings.Count(logs.String(), "batch retried"))
	})
}

// syncBuffer is a strings.Builder safe for concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
