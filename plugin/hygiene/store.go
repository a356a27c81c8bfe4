package hygiene

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/uptrace/bun"

	"github.com/refrain-dev/refrain/plugin/customer"
	"github.com/refrain-dev/refrain/plugin/mail/outbox"
	"github.com/refrain-dev/refrain/plugin/ptr"
	"github.com/refrain-dev/refrain/plugin/store"
)

// ErasureSource is the suppression source an erasure records; such an
// address is SUPPRESSED whatever the reason column says.
const ErasureSource = "erasure"

// Evaluate checks addr with c and against the suppression list.
func Evaluate(ctx context.Context, db bun.IDB, c *Checker, addr string) (Result, error) {
	r := c.Check(addr)
	if r.Status == StatusInvalid {
		return r, nil
	}
	sup, err := SuppressedAmong(ctx, db, []string{r.Normalized})
	if err != nil {
		return Result{}, err
	}
	if sup[r.Normalized] {
		r.Status, r.Suggestion, r.Reason = StatusSuppressed, "", "suppressed after a hard bounce, a complaint or an erasure"
	}
	return r, nil
}

// SuppressedAmong returns which of the normalised addresses are suppressed
// for a hard bounce, a complaint or an erasure (unsubscribes do not make an
// address bad, only unwanted).
func SuppressedAmong(ctx context.Context, db bun.IDB, norms []string) (map[string]bool, error) {
	out := map[string]bool{}
	if len(norms) == 0 {
		return out, nil
	}
	byHash := make(map[string]string, len(norms))
	hashes := make([]string, 0, len(norms))
	for _, n := range norms {
		h := outbox.AddressHash(n)
		byHash[h] = n
		hashes = append(hashes, h)
	}
	var found []string
	if err := db.NewSelect().Model((*outbox.Suppression)(nil)).Column("address_hash").
		Where("address_hash IN (?)", bun.List(hashes)).
		Where("reason IN (?) OR source = ?", bun.List([]outbox.Reason{outbox.ReasonHardBounce, outbox.ReasonComplaint}), ErasureSource).
		Scan(ctx, &found); err != nil {
		return nil, fmt.Errorf("check suppressions: %w", err)
	}
	for _, h := range found {
		out[byHash[h]] = true
	}
	return out, nil
}

// Erased returns which of the normalised addresses were erased (their
// hash is on the suppression list with ErasureSource): imports and webhook
// ingest must not bring them back.
func Erased(ctx context.Context, db bun.IDB, norms []string) (map[string]bool, error) {
	out := map[string]bool{}
	if len(norms) == 0 {
		return out, nil
	}
	byHash := make(map[string]string, len(norms))
	hashes := make([]string, 0, len(norms))
	for _, n := range norms {
		h := outbox.AddressHash(n)
		byHash[h] = n
		hashes = append(hashes, h)
	}
	var found []string
	if err := db.NewSelect().Model((*outbox.Suppression)(nil)).Column("address_hash").
		Where("address_hash IN (?)", bun.List(hashes)).Where("source = ?", ErasureSource).
		Scan(ctx, &found); err != nil {
		return nil, fmt.Errorf("check erased addresses: %w", err)
	}
	for _, h := range found {
		out[byHash[h]] = true
	}
	return out, nil
}

// stored is a customer's address and hygiene columns.
type stored struct {
	ID         int64   `bun:"id"`
	Email      *string `bun:"email_normalized"`
	Status     *string `bun:"hygiene_status"`
	Suggestion *string `bun:"hygiene_suggestion"`
	// Confirmed is the hash of the address the customer confirmed as
	// theirs despite a typo suspicion (ConfirmTypo).
	Confirmed *string `bun:"hygiene_confirmed_hash"`
}

// RefreshEmails checks the customers holding the given addresses
// (normalised or not) and stores their status.
func RefreshEmails(ctx context.Context, db bun.IDB, c *Checker, emails []string) error {
	norms := make([]string, 0, len(emails))
	for _, e := range emails {
		if n, err := customer.NormalizeEmail(e); err == nil {
			norms = append(norms, n)
		}
	}
	if len(norms) == 0 {
		return nil
	}
	var rows []stored
	if err := db.NewSelect().Table("customers").Column("id", "email_normalized", "hygiene_status", "hygiene_suggestion", "hygiene_confirmed_hash").
		Where("email_normalized IN (?)", bun.List(norms)).Scan(ctx, &rows); err != nil {
		return fmt.Errorf("load customers to check: %w", err)
	}
	return refresh(ctx, db, c, rows)
}

// RefreshCustomers checks the given customers and stores their status.
func RefreshCustomers(ctx context.Context, db bun.IDB, c *Checker, customerPKs ...int64) error {
	if len(customerPKs) == 0 {
		return nil
	}
	var rows []stored
	if err := db.NewSelect().Table("customers").Column("id", "email_normalized", "hygiene_status", "hygiene_suggestion", "hygiene_confirmed_hash").
		Where("id IN (?)", bun.List(customerPKs)).Scan(ctx, &rows); err != nil {
		return fmt.Errorf("load customers to check: %w", err)
	}
	return refresh(ctx, db, c, rows)
}

// refresh computes and stores the status of rows, writing only changes,
// one UPDATE per status for those without a suggestion.
func refresh(ctx context.Context, db bun.IDB, c *Checker, rows []stored) error {
	norms := make([]string, 0, len(rows))
	for _, r := range rows {
		if r.Email != nil {
			norms = append(norms, *r.Email)
		}
	}
	sup, err := SuppressedAmong(ctx, db, norms)
	if err != nil {
		return err
	}
	groups := map[Status][]int64{}
	for _, r := range rows {
		if r.Email == nil {
			continue // erased or never given: nothing to check
		}
		res := c.Check(*r.Email)
		if res.Status != StatusInvalid && sup[*r.Email] {
			res.Status, res.Suggestion = StatusSuppressed, ""
		}
		if res.Status == StatusTypoSuspected && r.Confirmed != nil && *r.Confirmed == outbox.AddressHash(*r.Email) {
			// The customer said this address is theirs.
			res.Status, res.Suggestion = StatusOK, ""
		}
		if r.Status != nil && Status(*r.Status) == res.Status && ptr.Deref(r.Suggestion) == res.Suggestion {
			continue
		}
		if res.Suggestion != "" {
			if _, err := db.NewUpdate().Table("customers").Set("hygiene_status = ?", string(res.Status)).
				Set("hygiene_suggestion = ?", res.Suggestion).Where("id = ?", r.ID).Exec(ctx); err != nil {
				return fmt.Errorf("store hygiene status: %w", err)
			}
			continue
		}
		groups[res.Status] = append(groups[res.Status], r.ID)
	}
	for st, ids := range groups {
		if _, err := db.NewUpdate().Table("customers").Set("hygiene_status = ?", string(st)).
			Set("hygiene_suggestion = NULL").Where("id IN (?)", bun.List(ids)).Exec(ctx); err != nil {
			return fmt.Errorf("store hygiene status: %w", err)
		}
	}
	return nil
}

// MarketingHolds returns, by customer row id, why marketing mail may not
// go to each of the given customers: a stored status other than OK or
// ROLE. A customer never checked is checked now (without the suppression
// list, which the outbox checks itself) and the result stored.
//
// allowed lists the statuses marketing may go to; nil means OK and ROLE.
func MarketingHolds(ctx context.Context, db bun.IDB, c *Checker, allowed map[Status]bool, customerPKs []int64) (map[int64]string, error) {
	out := map[int64]string{}
	if len(customerPKs) == 0 {
		return out, nil
	}
	var rows []stored
	if err := db.NewSelect().Table("customers").Column("id", "email_normalized", "hygiene_status", "hygiene_suggestion").
		Where(store.In(db, "id", customerPKs)).Scan(ctx, &rows); err != nil {
		return nil, fmt.Errorf("load hygiene status: %w", err)
	}
	var unchecked []stored
	for _, r := range rows {
		st := Status(ptr.Deref(r.Status))
		if r.Status == nil && r.Email != nil {
			st = c.Check(*r.Email).Status
			unchecked = append(unchecked, r)
		}
		if st != "" && (allowed == nil && !st.Sendable() || allowed != nil && !allowed[st]) {
			out[r.ID] = "hygiene: " + string(st)
		}
	}
	if len(unchecked) > 0 {
		if err := refresh(ctx, db, c, unchecked); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// ReportOpts tune Report.
type ReportOpts struct {
	// Customers is how many customers are listed per status and per domain. Default 20.
	Customers int
	// Domains is how many domains are listed, the largest first. Default 50.
	Domains int
}

// CustomerRef names one customer in a report.
type CustomerRef struct {
	PK    int64
	ID    string
	Email string
}

// Group is one line of a report: a status or a domain, its count and the
// first customers behind it.
type Group struct {
	Key       string
	Count     int
	Customers []CustomerRef
	// ByStatus counts a domain's customers per status (domains only).
	ByStatus map[Status]int
}

// Report is the hygiene of the whole base.
type Report struct {
	// Total is the number of customers with an address.
	Total int
	// Unchecked is the number of customers with an address and no status yet.
	Unchecked int
	ByStatus  []Group
	ByDomain  []Group
	CheckedAt time.Time
}

type reportRow struct {
	ID         int64   `bun:"id"`
	PublicID   string  `bun:"public_id"`
	ExternalID *string `bun:"external_id"`
	Email      string  `bun:"email_normalized"`
	Status     *string `bun:"hygiene_status"`
}

// BuildReport counts the base by status and by domain, with the customers
// behind each, reading customers in pages of 5,000. Customers never
// checked are checked (and stored) first, so the report covers everyone.
func BuildReport(ctx context.Context, db bun.IDB, c *Checker, now time.Time, o ReportOpts) (*Report, error) {
	if o.Customers <= 0 {
		o.Customers = 20
	}
	if o.Domains <= 0 {
		o.Domains = 50
	}
	rep := &Report{CheckedAt: now}
	statusGroups := map[Status]*Group{}
	domainGroups := map[string]*Group{}
	var last int64
	for {
		var rows []reportRow
		if err := db.NewSelect().Table("customers").Column("id", "public_id", "external_id", "email_normalized", "hygiene_status").
			Where("email_normalized IS NOT NULL").Where("id > ?", last).Order("id ASC").Limit(5000).
			Scan(ctx, &rows); err != nil {
			return nil, fmt.Errorf("read customers for the hygiene report: %w", err)
		}
		if len(rows) == 0 {
			break
		}
		last = rows[len(rows)-1].ID
		var unchecked []stored
		for _, r := range rows {
			if r.Status == nil {
				e := r.Email
				unchecked = append(unchecked, stored{ID: r.ID, Email: &e})
			}
		}
		if len(unchecked) > 0 {
			rep.Unchecked += len(unchecked)
			if err := refresh(ctx, db, c, unchecked); err != nil {
				return nil, err
			}
			if err := db.NewSelect().Table("customers").Column("id", "public_id", "external_id", "email_normalized", "hygiene_status").
				Where("id IN (?)", bun.List(idsOf(rows))).Order("id ASC").Scan(ctx, &rows); err != nil {
				return nil, fmt.Errorf("read customers for the hygiene report: %w", err)
			}
		}
		for _, r := range rows {
			rep.Total++
			st := Status(ptr.Deref(r.Status))
			ref := CustomerRef{PK: r.ID, ID: r.PublicID, Email: r.Email}
			if r.ExternalID != nil && *r.ExternalID != "" {
				ref.ID = *r.ExternalID
			}
			g := statusGroups[st]
			if g == nil {
				g = &Group{Key: string(st)}
				statusGroups[st] = g
			}
			g.Count++
			if len(g.Customers) < o.Customers {
				g.Customers = append(g.Customers, ref)
			}
			domain := r.Email[strings.LastIndexByte(r.Email, '@')+1:]
			d := domainGroups[domain]
			if d == nil {
				d = &Group{Key: domain, ByStatus: map[Status]int{}}
				domainGroups[domain] = d
			}
			d.Count++
			d.ByStatus[st]++
			if st != StatusOK && len(d.Customers) < o.Customers {
				// The customers behind a domain worth cleaning are those not OK.
				d.Customers = append(d.Customers, ref)
			}
		}
	}
	for _, st := range Statuses {
		if g := statusGroups[st]; g != nil {
			rep.ByStatus = append(rep.ByStatus, *g)
		} else {
			rep.ByStatus = append(rep.ByStatus, Group{Key: string(st)})
		}
	}
	for _, d := range domainGroups {
		rep.ByDomain = append(rep.ByDomain, *d)
	}
	sort.Slice(rep.ByDomain, func(i, j int) bool {
		a, b := rep.ByDomain[i], rep.ByDomain[j]
		if a.Count != b.Count {
			return a.Count > b.Count
		}
		return a.Key < b.Key
	})
	if len(rep.ByDomain) > o.Domains {
		rep.ByDomain = rep.ByDomain[:o.Domains]
	}
	return rep, nil
}

func idsOf(rows []reportRow) []int64 {
	out := make([]int64, len(rows))
	for i, r := range rows {
		out[i] = r.ID
	}
	return out
}

// StatusOf returns a customer's stored status and suggestion (nil when
// never checked).
func StatusOf(ctx context.Context, db bun.IDB, customerPK int64) (*Status, *string, error) {
	var r stored
	if err := db.NewSelect().Table("customers").Column("id", "email_normalized", "hygiene_status", "hygiene_suggestion").
		Where("id = ?", customerPK).Scan(ctx, &r); err != nil {
		return nil, nil, fmt.Errorf("load hygiene status: %w", err)
	}
	if r.Status == nil {
		return nil, r.Suggestion, nil
	}
	st := Status(*r.Status)
	return &st, r.Suggestion, nil
}

// ConfirmTypo records that the customer confirmed an address that looked
// like a typo: a TYPO_SUSPECTED status becomes OK.
//
// The confirmation is kept as the hash of the address confirmed: later
// checks of the same address leave it OK, a new address is checked afresh.
func ConfirmTypo(ctx context.Context, db bun.IDB, customerPK int64) error {
	var r stored
	if err := db.NewSelect().Table("customers").Column("id", "email_normalized").Where("id = ?", customerPK).
		Scan(ctx, &r); err != nil {
		return fmt.Errorf("confirm address: %w", err)
	}
	if r.Email == nil {
		return nil
	}
	if _, err := db.NewUpdate().Table("customers").Set("hygiene_confirmed_hash = ?", outbox.AddressHash(*r.Email)).
		Set("hygiene_status = CASE WHEN hygiene_status = ? THEN ? ELSE hygiene_status END", string(StatusTypoSuspected), string(StatusOK)).
		Set("hygiene_suggestion = CASE WHEN hygiene_status = ? THEN NULL ELSE hygiene_suggestion END", string(StatusTypoSuspected)).
		Where("id = ?", customerPK).Exec(ctx); err != nil {
		return fmt.Errorf("confirm address: %w", err)
	}
	return nil
}

// AfterImport checks every customer whose address was never checked (the
// rows an import just created) and reports the ones whose address had been
// erased, which the caller erases again: an import must not bring back a
// customer who asked to be forgotten.
func AfterImport(ctx context.Context, db bun.IDB, c *Checker) (erasedPKs []int64, checked int, err error) {
	var last int64
	for {
		var rows []stored
		if err := db.NewSelect().Table("customers").Column("id", "email_normalized", "hygiene_status", "hygiene_suggestion").
			Where("hygiene_status IS NULL AND email_normalized IS NOT NULL").Where("id > ?", last).
			Order("id ASC").Limit(5000).Scan(ctx, &rows); err != nil {
			return nil, 0, fmt.Errorf("load unchecked customers: %w", err)
		}
		if len(rows) == 0 {
			return erasedPKs, checked, nil
		}
		last = rows[len(rows)-1].ID
		norms := make([]string, 0, len(rows))
		for _, r := range rows {
			norms = append(norms, *r.Email)
		}
		erased, err := Erased(ctx, db, norms)
		if err != nil {
			return nil, 0, err
		}
		for _, r := range rows {
			if erased[*r.Email] {
				erasedPKs = append(erasedPKs, r.ID)
			}
		}
		if err := refresh(ctx, db, c, rows); err != nil {
			return nil, 0, err
		}
		checked += len(rows)
	}
}

// StatusOfMany is StatusOf for several customers in one statement, keyed
// by customer; a customer with no row is absent.
func StatusOfMany(ctx context.Context, db bun.IDB, customerPKs []int64) (map[int64]CustomerStatus, error) {
	var rs []stored
	cond, arg := store.In(db, "id", customerPKs)
	if err := db.NewSelect().Table("customers").Column("id", "email_normalized", "hygiene_status", "hygiene_suggestion").
		Where(cond, arg).Scan(ctx, &rs); err != nil {
		return nil, fmt.Errorf("load hygiene statuses: %w", err)
	}
	out := make(map[int64]CustomerStatus, len(rs))
	for _, r := range rs {
		cs := CustomerStatus{Suggestion: r.Suggestion}
		if r.Status != nil {
			st := Status(*r.Status)
			cs.Status = &st
		}
		out[r.ID] = cs
	}
	return out, nil
}

// CustomerStatus is a customer's hygiene status (nil when unchecked) and
// the address suggested for a typo.
type CustomerStatus struct {
	Status     *Status
	Suggestion *string
}
