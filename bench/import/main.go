// Command import measures `refrain import customers` on PostgreSQL. It
// writes a CSV file of realistic customers (1,000,000 rows by default) to a
// temporary directory, creates a schema of its own, migrates it, and runs
// three phases, each in a child process of its own so that the peak resident
// memory of each (ru_maxrss) is measured alone:
//
//  1. reference: a raw COPY of the same rows into an empty customers table,
//     the addresses lower-cased in Go, timed from opening the file to commit;
//  2. import: csvimport.Run of the file into the emptied table;
//  3. re-run: csvimport.Run of the same file again (every row unchanged).
//
// It prints rows per second for each phase, the ratio of the import to the
// reference, and each phase's peak memory, then drops the schema.
//
//	go run ./bench/import [-rows 1000000] [-db postgres://...] [-batch 5000] [-workers 1]
package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	mrand "math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/refrain-dev/refrain/plugin/customer"
	"github.com/refrain-dev/refrain/plugin/customer/csvimport"
	"github.com/refrain-dev/refrain/plugin/store"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/driver/pgdriver"
)

const defaultURL = "postgres://postgres@127.0.0.1:5432/refrain_test?sslmode=disable"

// config is what the parent passes to each phase.
type config struct {
	rows    int
	url     string
	batch   int
	workers int
	schema  string
	file    string
}

// result is what a phase reports to the parent on its standard output.
type result struct {
	Phase     string  `json:"phase"`
	Rows      int     `json:"rows"`
	Seconds   float64 `json:"seconds"`
	Imported  int     `json:"imported"`
	Updated   int     `json:"updated"`
	Unchanged int     `json:"unchanged"`
	Skipped   int     `json:"skipped"`
	MaxRSSKiB int64   `json:"-"`
}

func main() {
	def := os.Getenv("REFRAIN_TEST_POSTGRES_URL")
	if def == "" {
		def = defaultURL
	}
	var c config
	flag.IntVar(&c.rows, "rows", 1000000, "rows in the generated CSV file")
	flag.StringVar(&c.url, "db", def, "PostgreSQL URL (default $REFRAIN_TEST_POSTGRES_URL)")
	flag.IntVar(&c.batch, "batch", csvimport.DefaultBatchSize, "csvimport batch size")
	flag.IntVar(&c.workers, "workers", 1, "csvimport batches written at once")
	phase := flag.String("phase", "", "internal: run one phase (copy, import, rerun) in this process")
	flag.StringVar(&c.schema, "schema", "", "internal: schema of the phase")
	flag.StringVar(&c.file, "file", "", "internal: CSV file of the phase")
	flag.Parse()
	if *phase != "" {
		res, err := runPhase(context.Background(), *phase, c)
		if err != nil {
			log.Fatalf("phase %s: %v", *phase, err)
		}
		if err := json.NewEncoder(os.Stdout).Encode(res); err != nil {
			log.Fatal(err)
		}
		return
	}
	if err := run(context.Background(), c); err != nil {
		log.Fatal(err)
	}
}

func run(ctx context.Context, c config) error {
	dir, err := os.MkdirTemp("", "refrain-bench-import")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	c.file = filepath.Join(dir, "customers.csv")
	start := time.Now()
	size, err := generate(c.file, c.rows)
	if err != nil {
		return fmt.Errorf("generate csv: %w", err)
	}
	fmt.Printf("generated %d rows (%.1f MiB) in %s\n", c.rows, float64(size)/(1<<20), time.Since(start).Round(time.Millisecond))

	admin, err := store.Open(ctx, c.url, &store.Options{MaxOpenConns: 2})
	if err != nil {
		return err
	}
	defer admin.Close()
	var b [6]byte
	_, _ = rand.Read(b[:])
	c.schema = "bench_import_" + hex.EncodeToString(b[:])
	if _, err := admin.ExecContext(ctx, "CREATE SCHEMA "+c.schema); err != nil {
		return fmt.Errorf("create schema: %w", err)
	}
	defer func() {
		if _, err := admin.ExecContext(context.Background(), "DROP SCHEMA "+c.schema+" CASCADE"); err != nil {
			log.Printf("drop schema %s: %v", c.schema, err)
		}
	}()
	db, err := openSchema(ctx, c)
	if err != nil {
		return err
	}
	defer db.Close()
	m, err := store.NewMigrator(db)
	if err != nil {
		return err
	}
	if _, err := m.Up(ctx); err != nil {
		return err
	}

	var results []result
	for _, phase := range []string{"copy", "import", "rerun"} {
		if phase != "rerun" {
			if _, err := db.ExecContext(ctx, "TRUNCATE customers CASCADE"); err != nil {
				return fmt.Errorf("empty customers: %w", err)
			}
			// Start each load from comparable table statistics.
			if _, err := db.ExecContext(ctx, "VACUUM ANALYZE customers"); err != nil {
				return fmt.Errorf("vacuum customers: %w", err)
			}
		}
		res, err := child(ctx, phase, c)
		if err != nil {
			return err
		}
		var n int
		if err := db.NewRaw("SELECT count(*) FROM customers").Scan(ctx, &n); err != nil {
			return err
		}
		if n != c.rows {
			return fmt.Errorf("after %s: %d customers, want %d", phase, n, c.rows)
		}
		fmt.Printf("%-7s %9d rows in %7.2fs: %8.0f rows/s, peak RSS %6.1f MiB (imported %d, updated %d, unchanged %d, skipped %d)\n",
			phase, res.Rows, res.Seconds, float64(res.Rows)/res.Seconds, float64(res.MaxRSSKiB)/1024,
			res.Imported, res.Updated, res.Unchanged, res.Skipped)
		results = append(results, res)
	}

	ref := float64(results[0].Rows) / results[0].Seconds
	fmt.Printf("\n%d rows, batch %d, workers %d\n", c.rows, c.batch, c.workers)
	fmt.Println("| phase                   |    rows/s | vs COPY | peak RSS |")
	fmt.Println("|-------------------------|-----------|---------|----------|")
	names := map[string]string{"copy": "raw COPY (reference)", "import": "csvimport.Run", "rerun": "csvimport.Run re-run"}
	for _, r := range results {
		rate := float64(r.Rows) / r.Seconds
		fmt.Printf("| %-23s | %9.0f | %6.0f%% | %4.0f MiB |\n", names[r.Phase], rate, 100*rate/ref, float64(r.MaxRSSKiB)/1024)
	}
	return nil
}

// child runs one phase in a new process of this program and returns its
// result with the peak resident memory of that process.
func child(ctx context.Context, phase string, c config) (result, error) {
	self, err := os.Executable()
	if err != nil {
		return result{}, err
	}
	cmd := exec.CommandContext(ctx, self, "-phase="+phase, "-db="+c.url, "-schema="+c.schema, "-file="+c.file,
		"-batch="+strconv.Itoa(c.batch), "-workers="+strconv.Itoa(c.workers), "-rows="+strconv.Itoa(c.rows))
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return result{}, fmt.Errorf("run phase %s: %w", phase, err)
	}
	var res result
	if err := json.Unmarshal(out, &res); err != nil {
		return result{}, fmt.Errorf("read phase %s result %q: %w", phase, out, err)
	}
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		res.MaxRSSKiB = ru.Maxrss // KiB on Linux
	}
	return res, nil
}

func openSchema(ctx context.Context, c config) (*bun.DB, error) {
	sep := "?"
	if strings.Contains(c.url, "?") {
		sep = "&"
	}
	return store.Open(ctx, c.url+sep+"search_path="+c.schema, &store.Options{SearchPath: c.schema, MaxOpenConns: 8})
}

func runPhase(ctx context.Context, phase string, c config) (result, error) {
	db, err := openSchema(ctx, c)
	if err != nil {
		return result{}, err
	}
	defer db.Close()
	res := result{Phase: phase}
	start := time.Now()
	switch phase {
	case "copy":
		n, err := rawCopy(ctx, db, c.file)
		if err != nil {
			return result{}, err
		}
		res.Rows, res.Imported = n, n
	case "import", "rerun":
		f, err := os.Open(c.file)
		if err != nil {
			return result{}, err
		}
		defer f.Close()
		var progress func(csvimport.Progress)
		if os.Getenv("BENCH_PROGRESS") != "" {
			progress = csvimport.NewProgress(os.Stderr)
		}
		rep, err := csvimport.Run(ctx, db, f, csvimport.Options{BatchSize: c.batch, Workers: c.workers,
			Name: filepath.Base(c.file), Progress: progress})
		if err != nil {
			return result{}, err
		}
		res.Rows, res.Imported, res.Updated, res.Unchanged, res.Skipped = rep.Rows, rep.Imported, rep.Updated, rep.Unchanged, rep.Skipped
	default:
		return result{}, fmt.Errorf("unknown phase %q", phase)
	}
	res.Seconds = time.Since(start).Seconds()
	return res, nil
}

// rawCopy is the reference: the file read row by row, each row turned into
// the customers row the import would create (addresses lower-cased instead
// of the full normalisation, no validation, no lookups), streamed through
// one COPY in one transaction.
func rawCopy(ctx context.Context, db *bun.DB, path string) (int, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	conn, err := db.Conn(ctx)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return 0, err
	}
	defer func() { _ = tx.Rollback() }()

	pr, pw := io.Pipe()
	rows := make(chan int, 1)
	go func() {
		n, err := copyRows(bufio.NewReaderSize(f, 256<<10), pw, filepath.Base(path))
		rows <- n
		pw.CloseWithError(err)
	}()
	_, err = pgdriver.CopyFrom(ctx, conn, pr, "COPY customers (public_id, email, email_normalized, first_name, "+
		"last_name, locale, time_zone, source, consent_state, consent_at, consent_source, consent_method, "+
		"consent_proof, attributes, tags, stage, stage_since, created_at, updated_at) FROM STDIN")
	n := <-rows
	if err != nil {
		return 0, fmt.Errorf("copy: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return 0, err
	}
	return n, nil
}

// copyRows converts the CSV rows to COPY text rows.
func copyRows(r io.Reader, w io.Writer, name string) (int, error) {
	cr := csv.NewReader(r)
	cr.ReuseRecord = true
	if _, err := cr.Read(); err != nil {
		return 0, err
	}
	bw := bufio.NewWriterSize(w, 256<<10)
	now := time.Now().UTC().Format("2006-01-02 15:04:05.999999Z07:00")
	var buf bytes.Buffer
	n := 0
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return n, err
		}
		n++
		line, _ := cr.FieldPos(0)
		// email,first_name,last_name,locale,timezone,created_at,consent,tags,loyalty_tier,city
		buf.Reset()
		created := rec[5]
		if len(created) == 10 {
			created += " 00:00:00Z"
		}
		state, consentAt, src, method, proof := "unknown", `\N`, `\N`, `\N`, "{}"
		if rec[6] != "" {
			state = "subscribed"
			if rec[6] == "no" || rec[6] == "false" || rec[6] == "0" {
				state = "unsubscribed"
			}
			consentAt, src, method = now, "import", "import"
			proof = `{"source":"import","method":"import","file":"` + name + `","line":` + strconv.Itoa(line) +
				`,"value":"` + rec[6] + `"}`
		}
		attrs := "{}"
		if rec[8] != "" || rec[9] != "" {
			var parts []string
			if rec[8] != "" {
				parts = append(parts, `"loyalty_tier":"`+rec[8]+`"`)
			}
			if rec[9] != "" {
				parts = append(parts, `"city":"`+rec[9]+`"`)
			}
			attrs = "{" + strings.Join(parts, ",") + "}"
		}
		tags := "[]"
		if rec[7] != "" {
			tags = `["` + strings.Join(customer.MergeTags(nil, strings.Split(rec[7], ";")), `","`) + `"]`
		}
		for i, v := range []string{customer.NewPublicID(), rec[0], strings.ToLower(rec[0]), rec[1], rec[2], rec[3], rec[4],
			"import", state, consentAt, src, method, proof, attrs, tags, "SUBSCRIBER", created, created, now} {
			if i > 0 {
				buf.WriteByte('\t')
			}
			buf.WriteString(v)
		}
		buf.WriteByte('\n')
		if _, err := bw.Write(buf.Bytes()); err != nil {
			return n, err
		}
	}
	return n, bw.Flush()
}

// generate writes a CSV file of n distinct customers with realistic values
// (no value holds a tab, a backslash or a quote, so the reference can copy
// them as they are) and returns its size.
func generate(path string, n int) (int64, error) {
	f, err := os.Create(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	w := bufio.NewWriterSize(f, 1<<20)
	rng := mrand.New(mrand.NewPCG(1, 2))
	firsts := []string{"Alice", "Bob", "Chloé", "David", "Emma", "Farid", "Giulia", "Hugo", "Inès", "Jonas", "Kenji",
		"Léa", "Mateo", "Nora", "Oskar", "Priya", "Quentin", "Rosa", "Sven", "Tariq", "Ursula", "Victor", "Wen", "Yara", "Zoé"}
	lasts := []string{"Martin", "Bernard", "Dubois", "Smith", "Müller", "García", "Rossi", "Nowak", "Jensen", "Silva",
		"Kowalski", "Tanaka", "Okafor", "Novak", "Andersson", "Moreau", "Fischer", "López", "Brown", "Wilson"}
	domains := []string{"gmail.com", "yahoo.fr", "outlook.com", "proton.me", "example.org", "orange.fr", "web.de", "icloud.com"}
	locales := []string{"en-US", "fr-FR", "de-DE", "es-ES", "en-GB", "it-IT", "pt-BR", "nl-NL"}
	zones := []string{"Europe/Paris", "Europe/Berlin", "America/New_York", "America/Los_Angeles", "Europe/London",
		"Asia/Tokyo", "America/Sao_Paulo", "Europe/Madrid", "Australia/Sydney", "UTC"}
	consents := []string{"yes", "no", "", "", "true", "subscribed"}
	tagSet := []string{"vip", "newsletter", "wholesale", "returning", "black-friday", "app"}
	tiers := []string{"", "", "bronze", "silver", "gold"}
	cities := []string{"Paris", "Berlin", "New York", "Lyon", "Tokyo", "", "Madrid", "São Paulo"}
	base := time.Date(2019, 1, 1, 0, 0, 0, 0, time.UTC)
	fmt.Fprintln(w, "email,first_name,last_name,locale,timezone,created_at,consent,tags,loyalty_tier,city")
	for i := range n {
		first, last := firsts[rng.IntN(len(firsts))], lasts[rng.IntN(len(lasts))]
		local := strings.ToLower(asciiName(first)) + "." + strings.ToLower(asciiName(last)) + strconv.Itoa(i)
		if i%10 == 0 {
			local = asciiName(first) + "." + asciiName(last) + strconv.Itoa(i)
		}
		created := base.Add(time.Duration(rng.Int64N(int64(7 * 365 * 24 * time.Hour)))).Truncate(time.Second)
		createdS := created.Format(time.RFC3339)
		if i%4 == 0 {
			createdS = created.Format(time.DateOnly)
		}
		var tags []string
		for range rng.IntN(3) {
			tags = append(tags, tagSet[rng.IntN(len(tagSet))])
		}
		fmt.Fprintf(w, "%s@%s,%s,%s,%s,%s,%s,%s,%s,%s,%s\n", local, domains[rng.IntN(len(domains))], first, last,
			locales[rng.IntN(len(locales))], zones[rng.IntN(len(zones))], createdS, consents[rng.IntN(len(consents))],
			strings.Join(tags, ";"), tiers[rng.IntN(len(tiers))], cities[rng.IntN(len(cities))])
	}
	if err := w.Flush(); err != nil {
		return 0, err
	}
	fi, err := f.Stat()
	if err != nil {
		return 0, err
	}
	return fi.Size(), nil
}

// asciiName drops accents from the few names that carry one, for addresses.
func asciiName(s string) string {
	return strings.NewReplacer("é", "e", "è", "e", "ü", "u", "í", "i", "ç", "c", "É", "E").Replace(s)
}
