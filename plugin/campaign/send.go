package campaign

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/uptrace/bun"

	"github.com/refrain-dev/refrain/plugin/mail"
	"github.com/refrain-dev/refrain/plugin/mail/outbox"
	"github.com/refrain-dev/refrain/plugin/pressure"
	"github.com/refrain-dev/refrain/plugin/store"
)

// MaxZoneOffset is how far ahead of UTC a time zone can be: a campaign
// sent in the recipients' zones starts fixing its audience this early.
const MaxZoneOffset = 14 * time.Hour

// BaseWhere is what every marketing audience requires: a condition on
// customers AS c.
const BaseWhere = "c.email_normalized IS NOT NULL AND c.consent_state = 'subscribed'"

// where returns the full condition on customers c of a campaign's audience.
func (s *Service) where(ctx context.Context, db bun.IDB, spec string) (string, []any, error) {
	return AudienceWhere(ctx, db, s.o.Audience, spec)
}

// AudienceWhere returns the full condition on customers c of the audience
// spec as parse reads it: the audience and what every marketing audience
// requires (an address and a subscription).
func AudienceWhere(ctx context.Context, db bun.IDB, parse AudienceParser, spec string) (string, []any, error) {
	a, err := parse(ctx, db, spec)
	if err != nil {
		return "", nil, fmt.Errorf("audience %q: %w", spec, err)
	}
	w, args := a.Where(db)
	if strings.TrimSpace(w) == "" {
		return BaseWhere, nil, nil
	}
	return BaseWhere + " AND (" + w + ")", args, nil
}

// AudienceCount counts the customers an audience selects now.
func (s *Service) AudienceCount(ctx context.Context, db bun.IDB, spec string) (int, error) {
	w, args, err := s.where(ctx, db, spec)
	if err != nil {
		return 0, err
	}
	n, err := db.NewSelect().TableExpr("customers AS c").Where(w, args...).Count(ctx)
	return int(n), err
}

// Run sends campaigns until ctx ends.
func (s *Service) Run(ctx context.Context) error {
	for {
		n, err := s.Pass(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			s.o.Logger.ErrorContext(ctx, "campaign pass", "err", err)
		}
		if n == 0 || err != nil {
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(s.o.Poll):
			}
		}
	}
}

// Pass does one round of work: starts due campaigns, fixes audiences,
// picks A/B winners, sends up to Concurrency batches, and closes finished
// campaigns. It returns how many recipients it handled.
func (s *Service) Pass(ctx context.Context) (int, error) {
	if err := s.startDue(ctx); err != nil {
		return 0, err
	}
	var cs []*Campaign
	if err := s.o.DB.NewSelect().Model(&cs).Where("status = ?", StatusSending).Order("priority DESC", "id").Scan(ctx); err != nil {
		return 0, fmt.Errorf("list sending campaigns: %w", err)
	}
	handled := 0
	for _, c := range cs {
		if !c.AudienceFixed {
			n, err := s.fixAudience(ctx, c)
			if err != nil {
				return handled, err
			}
			handled += n
			if !c.AudienceFixed {
				continue
			}
		}
		if err := s.pickWinner(ctx, c); err != nil {
			return handled, err
		}
		n, err := s.sendBatches(ctx, c)
		handled += n
		if err != nil {
			return handled, err
		}
	}
	if err := s.closeFinished(ctx); err != nil {
		return handled, err
	}
	return handled, nil
}

// Drain runs passes until one handles nothing (tests, the CLI).
func (s *Service) Drain(ctx context.Context) error {
	for {
		n, err := s.Pass(ctx)
		if err != nil || n == 0 {
			return err
		}
	}
}

func (s *Service) startDue(ctx context.Context) error {
	now := s.o.Clock.Now()
	res, err := s.o.DB.NewUpdate().Model((*Campaign)(nil)).Set("status = ?", StatusSending).Set("started_at = ?", now).
		Set("updated_at = ?", now).Where("status = ?", StatusScheduled).
		WhereGroup(" AND ", func(q *bun.UpdateQuery) *bun.UpdateQuery {
			return q.Where("(recipient_tz = ? AND scheduled_at <= ?)", false, now).
				WhereOr("(recipient_tz = ? AND scheduled_at <= ?)", true, now.Add(MaxZoneOffset))
		}).Exec(ctx)
	if err != nil {
		return fmt.Errorf("start due campaigns: %w", err)
	}
	if n, _ := res.RowsAffected(); n > 0 {
		s.o.Logger.InfoContext(ctx, "campaigns started", "count", n)
	}
	return nil
}

// lease takes the campaign's own lease (for fixing its audience).
func (s *Service) lease(ctx context.Context, c *Campaign) (bool, error) {
	now := s.o.Clock.Now()
	res, err := s.o.DB.NewUpdate().Model((*Campaign)(nil)).Set("locked_by = ?", s.o.WorkerID).
		Set("locked_until = ?", now.Add(s.o.Lease)).Where("id = ?", c.ID).
		Where("(locked_until IS NULL OR locked_until < ? OR locked_by = ?)", now, s.o.WorkerID).Exec(ctx)
	if err != nil {
		return false, fmt.Errorf("lease campaign %s: %w", c.ID, err)
	}
	n, _ := res.RowsAffected()
	return n == 1, nil
}

// fixAudience copies the audience into campaign_recipients, a chunk per
// transaction with the cursor, so a crash resumes where it stopped.
func (s *Service) fixAudience(ctx context.Context, c *Campaign) (int, error) {
	ok, err := s.lease(ctx, c)
	if err != nil || !ok {
		return 0, err
	}
	w, args, err := s.where(ctx, s.o.DB, c.Audience)
	if err != nil {
		return 0, err
	}
	due := s.o.Clock.Now()
	if c.ScheduledAt != nil && c.ScheduledAt.After(due) && !c.RecipientTZ {
		due = *c.ScheduledAt
	}
	variantExpr, stateExpr := "NULL", "'"+RecipientPending+"'"
	if ab := c.ABTest; ab != nil {
		// A stable pseudo-random bucket per customer: 0 to 9999.
		bucket := "((c.id * 7919) % 10000)"
		limit := int(ab.TestShare * 10000)
		var cases []string
		for i, v := range ab.Variants {
			cases = append(cases, fmt.Sprintf("WHEN %s %% %d = %d THEN '%s'", bucket, len(ab.Variants), i, strings.ReplaceAll(v.Name, "'", "''")))
		}
		variantExpr = fmt.Sprintf("CASE WHEN %s < %d THEN CASE %s END END", bucket, limit, strings.Join(cases, " "))
		stateExpr = fmt.Sprintf("CASE WHEN %s < %d THEN '%s' ELSE '%s' END", bucket, limit, RecipientPending, RecipientHeld)
	}
	total := 0
	for {
		var upto int64
		var n int
		err := s.o.DB.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
			var ids []int64
			if err := tx.NewSelect().TableExpr("customers AS c").Column("c.id").Where("c.id > ?", c.AudienceCursor).
				Where(w, args...).Order("c.id").Limit(int64(s.o.AudienceChunk)).Scan(ctx, &ids); err != nil {
				return fmt.Errorf("read audience of campaign %s: %w", c.ID, err)
			}
			if len(ids) == 0 {
				return nil
			}
			upto = ids[len(ids)-1]
			q := fmt.Sprintf(`INSERT INTO campaign_recipients (campaign_id, customer_id, variant, state, due_at)
				SELECT ?, c.id, %s, %s, ? FROM customers AS c WHERE c.id > ? AND c.id <= ? AND %s
				ON CONFLICT DO NOTHING`, variantExpr, stateExpr, w)
			res, err := tx.NewRaw(q, append([]any{c.ID, due, c.AudienceCursor, upto}, args...)...).Exec(ctx)
			if err != nil {
				return fmt.Errorf("fix audience of campaign %s: %w", c.ID, err)
			}
			m, _ := res.RowsAffected()
			n = int(m)
			_, err = tx.NewUpdate().Model((*Campaign)(nil)).Set("audience_cursor = ?", upto).
				Set("audience_count = audience_count + ?", n).Set("locked_until = ?", s.o.Clock.Now().Add(s.o.Lease)).
				Where("id = ? AND locked_by = ?", c.ID, s.o.WorkerID).Exec(ctx)
			return err
		})
		if err != nil {
			return total, err
		}
		if upto == 0 {
			break
		}
		c.AudienceCursor, c.AudienceCount = upto, c.AudienceCount+n
		total += n
	}
	if c.RecipientTZ {
		if err := s.zoneDueTimes(ctx, c); err != nil {
			return total, err
		}
	}
	now := s.o.Clock.Now()
	if _, err := s.o.DB.NewUpdate().Model((*Campaign)(nil)).Set("audience_fixed = ?", true).Set("locked_by = NULL").
		Set("locked_until = NULL").Set("updated_at = ?", now).Where("id = ?", c.ID).Exec(ctx); err != nil {
		return total, fmt.Errorf("fix audience of campaign %s: %w", c.ID, err)
	}
	c.AudienceFixed = true
	if total > 0 {
		// The planner learns that the campaign now has its recipients, so
		// each batch finds its own by primary key, not by scanning them all.
		if err := store.Analyze(ctx, s.o.DB, "campaign_recipients"); err != nil {
			return total, fmt.Errorf("recipients of campaign %s: %w", c.ID, err)
		}
	}
	s.o.Logger.InfoContext(ctx, "campaign audience fixed", "campaign", c.ID, "recipients", c.AudienceCount)
	return max(total, 1), nil
}

// LocalDue is when a campaign sent in recipients' zones reaches a
// customer in loc: ScheduledAt's wall-clock time in the default zone, in loc.
func (s *Service) LocalDue(c *Campaign, loc *time.Location) time.Time {
	return LocalDue(c, loc, s.o.Clock.Now(), s.o.Policy.Location(nil))
}

// LocalDue is when c reaches a recipient in loc: its scheduled time, read
// in the policy's zone home and moved to loc when it is sent in
// recipients' zones; now when it is not scheduled.
func LocalDue(c *Campaign, loc *time.Location, now time.Time, home *time.Location) time.Time {
	if c.ScheduledAt == nil {
		return now
	}
	if !c.RecipientTZ {
		return *c.ScheduledAt
	}
	w := c.ScheduledAt.In(home)
	return time.Date(w.Year(), w.Month(), w.Day(), w.Hour(), w.Minute(), w.Second(), 0, loc).UTC()
}

// zoneDueTimes sets each recipient's due time to the scheduled local time
// in their zone: one UPDATE per distinct zone.
func (s *Service) zoneDueTimes(ctx context.Context, c *Campaign) error {
	var zones []struct {
		Zone *string `bun:"time_zone"`
	}
	if err := s.o.DB.NewSelect().TableExpr("customers AS c").ColumnExpr("DISTINCT c.time_zone").
		Where("c.id IN (SELECT customer_id FROM campaign_recipients WHERE campaign_id = ?)", c.ID).Scan(ctx, &zones); err != nil {
		return fmt.Errorf("read zones of campaign %s: %w", c.ID, err)
	}
	for _, z := range zones {
		name := z.Zone
		due := s.LocalDue(c, s.o.Policy.Location(name))
		q := s.o.DB.NewUpdate().Model((*Recipient)(nil)).Set("due_at = ?", due).Where("campaign_id = ?", c.ID)
		if name == nil {
			q = q.Where("customer_id IN (SELECT id FROM customers WHERE time_zone IS NULL)")
		} else {
			q = q.Where("customer_id IN (SELECT id FROM customers WHERE time_zone = ?)", *name)
		}
		if _, err := q.Exec(ctx); err != nil {
			return fmt.Errorf("set local due times of campaign %s: %w", c.ID, err)
		}
	}
	return nil
}

// pickWinner sends the rest of an A/B campaign the winner once decideAfter has passed.
func (s *Service) pickWinner(ctx context.Context, c *Campaign) error {
	if c.ABTest == nil || c.Winner != nil || c.StartedAt == nil || s.o.Clock.Now().Before(c.StartedAt.Add(c.ABTest.DecideAfter)) {
		return nil
	}
	winner, err := s.o.Winner.Pick(ctx, s.o.DB, c)
	if err != nil {
		return fmt.Errorf("pick the winner of campaign %s: %w", c.ID, err)
	}
	now := s.o.Clock.Now()
	return s.o.DB.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		res, err := tx.NewUpdate().Model((*Campaign)(nil)).Set("winner = ?", winner).Set("updated_at = ?", now).
			Where("id = ? AND winner IS NULL", c.ID).Exec(ctx)
		if err != nil {
			return fmt.Errorf("record the winner of campaign %s: %w", c.ID, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return nil
		}
		c.Winner = &winner
		if _, err := tx.NewUpdate().Model((*Recipient)(nil)).Set("variant = ?", winner).Set("state = ?", RecipientPending).
			Set("due_at = ?", now).Where("campaign_id = ? AND state = ?", c.ID, RecipientHeld).Exec(ctx); err != nil {
			return fmt.Errorf("release the rest of campaign %s: %w", c.ID, err)
		}
		s.o.Logger.InfoContext(ctx, "A/B winner picked", "campaign", c.ID, "winner", winner)
		return nil
	})
}

// erased is why a claimed recipient whose customer is gone is dropped.
const erased = "customer erased"

type claimed struct {
	PK      int64     `bun:"customer_id"`
	Variant *string   `bun:"variant"`
	DueAt   time.Time `bun:"due_at"`
}

// claim takes up to Batch due recipients of c out of campaign_recipients
// in tx, the transaction that then writes their messages: they are
// deleted, and the caller puts back those it defers or skips. On
// PostgreSQL other workers skip the rows while tx runs (FOR UPDATE SKIP
// LOCKED); a worker that dies before it commits leaves them pending, with
// nothing written. Rows still leased by a sender of an earlier version
// (locked_until) are left to their lease.
func (s *Service) claim(ctx context.Context, tx bun.Tx, c *Campaign, now time.Time) ([]claimed, error) {
	var rows []claimed
	const due = `SELECT %s FROM campaign_recipients
		WHERE campaign_id = ? AND state = ? AND due_at <= ? AND (locked_until IS NULL OR locked_until < ?)
		ORDER BY due_at LIMIT ?`
	args := []any{c.ID, RecipientPending, now, now, s.o.Batch}
	if store.Arrays(tx) {
		// A claim by ctid array deletes the rows it takes in one
		// statement, skipping those another sender holds.
		err := tx.NewRaw(`DELETE FROM campaign_recipients WHERE ctid = ANY(ARRAY(`+fmt.Sprintf(due, "ctid")+
			` FOR UPDATE SKIP LOCKED)) RETURNING customer_id, variant, due_at`, args...).Scan(ctx, &rows)
		if err != nil {
			return nil, fmt.Errorf("claim recipients of campaign %s: %w", c.ID, err)
		}
		return rows, nil
	}
	if err := tx.NewRaw(fmt.Sprintf(due, "customer_id, variant, due_at"), args...).Scan(ctx, &rows); err != nil {
		return nil, fmt.Errorf("claim recipients of campaign %s: %w", c.ID, err)
	}
	if len(rows) == 0 {
		return nil, nil
	}
	pks := make([]int64, len(rows))
	for i, r := range rows {
		pks[i] = r.PK
	}
	if _, err := tx.NewDelete().Model((*Recipient)(nil)).Where("campaign_id = ?", c.ID).Where(store.In(tx, "customer_id", pks)).
		Exec(ctx); err != nil {
		return nil, fmt.Errorf("claim recipients of campaign %s: %w", c.ID, err)
	}
	return rows, nil
}

// sendBatches sends batches of c with Concurrency workers, each claiming
// and sending one batch after another until none is due.
func (s *Service) sendBatches(ctx context.Context, c *Campaign) (int, error) {
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		handled int
		errs    []error
	)
	for range s.o.Concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				n, err := s.sendBatch(ctx, c)
				mu.Lock()
				handled += n
				if err != nil {
					errs = append(errs, err)
				}
				failed := len(errs) > 0
				mu.Unlock()
				if n == 0 || failed {
					return
				}
			}
		}()
	}
	wg.Wait()
	return handled, errors.Join(errs...)
}

// Key is the idempotency key of a campaign's message to a customer.
func Key(campaignID string, customerPK int64) string {
	return fmt.Sprintf("campaign:%s:%d", campaignID, customerPK)
}

// sendBatch claims a batch of c (taking its recipients out of
// campaign_recipients), decides the policy for it, writes its message rows
// (one shared body per variant and locale), counts the written recipients
// and puts back the deferred and skipped ones, all in one transaction,
// then makes the provider calls.
// It returns how many recipients it claimed.
func (s *Service) sendBatch(ctx context.Context, c *Campaign) (int, error) {
	prefix := "campaign:" + c.ID
	var pbs []*outbox.PreparedBatch
	claimedN := 0
	err := s.o.DB.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		pbs, claimedN = nil, 0
		now := s.o.Clock.Now()
		// A campaign paused or cancelled since it was listed sends nothing more.
		var status Status
		if err := tx.NewSelect().Model((*Campaign)(nil)).Column("status").Where("id = ?", c.ID).Scan(ctx, &status); err != nil {
			return fmt.Errorf("campaign %s: %w", c.ID, err)
		}
		if status != StatusSending {
			return nil
		}
		// The batch statements are index lookups that the planner can
		// overprice on tables growing during the send (not analyzed yet);
		// compiling them (JIT) took a second a batch, running them a few
		// milliseconds.
		if err := store.SetLocal(ctx, tx, "jit = off"); err != nil {
			return err
		}
		rows, err := s.claim(ctx, tx, c, now)
		if err != nil || len(rows) == 0 {
			return err
		}
		claimedN = len(rows)
		pks := make([]int64, len(rows))
		variantOf := make(map[int64]string, len(rows))
		claimedOf := make(map[int64]claimed, len(rows))
		for i, r := range rows {
			pks[i] = r.PK
			claimedOf[r.PK] = r
			if r.Variant != nil {
				variantOf[r.PK] = *r.Variant
			}
		}
		sort.Slice(pks, func(i, j int) bool { return pks[i] < pks[j] })
		decided, err := s.o.Policy.DecideBatch(ctx, tx, now, pressure.Request{Program: c.Program, Campaign: c.ID,
			Priority: c.Priority, Override: &c.Pressure}, pks, func(pk int64) string { return Key(c.ID, pk) })
		if err != nil {
			return err
		}
		allow := map[string][]int64{}
		var variants []string
		deferred := map[time.Time][]int64{}
		skipped := map[string][]int64{}
		for _, pk := range pks {
			d, ok := decided[pk]
			switch {
			case !ok:
				skipped[erased] = append(skipped[erased], pk)
			case d.Decision.Goes():
				v := variantOf[pk]
				if allow[v] == nil {
					variants = append(variants, v)
				}
				allow[v] = append(allow[v], pk)
			case d.Decision == pressure.Deferred:
				deferred[d.Until] = append(deferred[d.Until], pk)
			default:
				skipped["pressure: "+d.Reason] = append(skipped["pressure: "+d.Reason], pk)
			}
		}
		var written []int64
		for _, v := range variants {
			tmpl, values := s.contentOf(c, v)
			pb, err := s.o.Outbox.PrepareBatch(ctx, tx, outbox.BatchInput{CustomerPKs: allow[v], Template: tmpl,
				Kind: mail.KindMarketing, Values: values, Program: c.Program, Campaign: c.ID, Variant: v,
				IdempotencyPrefix: prefix})
			if err != nil {
				return err
			}
			pbs = append(pbs, pb)
			written = append(append(written, pb.Written...), pb.Existing...)
			if len(pb.NoAddress) > 0 {
				skipped["no email address"] = append(skipped["no email address"], pb.NoAddress...)
			}
		}
		// The written recipients stay out of the table, counted on the
		// campaign; the others go back, deferred or skipped.
		if len(written) > 0 {
			if _, err := tx.NewUpdate().Model((*Campaign)(nil)).Set("written_count = written_count + ?", len(written)).
				Where("id = ?", c.ID).Exec(ctx); err != nil {
				return fmt.Errorf("count written recipients: %w", err)
			}
		}
		var back []*Recipient
		putBack := func(pks []int64, state string, reason string, due *time.Time) {
			for _, pk := range pks {
				r := claimedOf[pk]
				at := r.DueAt
				if due != nil {
					at = *due
				}
				back = append(back, &Recipient{CampaignID: c.ID, CustomerPK: pk, Variant: r.Variant, State: state,
					DueAt: at, Reason: &reason})
			}
		}
		for until, pks := range deferred {
			putBack(pks, RecipientPending, "deferred by the pressure policy", &until)
		}
		for reason, pks := range skipped {
			if reason != erased {
				putBack(pks, RecipientSkipped, reason, nil)
			}
		}
		if len(back) > 0 {
			if _, err := tx.NewInsert().Model(&back).Exec(ctx); err != nil {
				return fmt.Errorf("record deferred and skipped recipients: %w", err)
			}
		}
		return nil
	})
	if err != nil {
		return claimedN, fmt.Errorf("campaign %s batch: %w", c.ID, err)
	}
	var errs []error
	for _, pb := range pbs {
		if _, err := s.o.Outbox.DeliverBatch(ctx, pb); err != nil {
			errs = append(errs, fmt.Errorf("campaign %s batch: %w", c.ID, err))
		}
	}
	return claimedN, errors.Join(errs...)
}

// contentOf is the template and values of variant v of c ("" is c's own).
func (s *Service) contentOf(c *Campaign, v string) (string, map[string]string) {
	tmpl, values := c.Template, c.Values
	if c.ABTest != nil && v != "" {
		for _, av := range c.ABTest.Variants {
			if av.Name == v {
				tmpl = av.Template
				if av.Values != nil {
					values = av.Values
				}
			}
		}
	}
	return tmpl, values
}

// closeFinished marks SENT the sending campaigns with nothing left to send.
func (s *Service) closeFinished(ctx context.Context) error {
	now := s.o.Clock.Now()
	_, err := s.o.DB.NewRaw(`UPDATE campaigns SET status = ?, finished_at = ?, updated_at = ?
		WHERE status = ? AND audience_fixed = ? AND (ab_test IS NULL OR winner IS NOT NULL)
		AND NOT EXISTS (SELECT 1 FROM campaign_recipients AS r WHERE r.campaign_id = campaigns.id AND r.state IN (?, ?))`,
		StatusSent, now, now, StatusSending, true, RecipientPending, RecipientHeld).Exec(ctx)
	if err != nil {
		return fmt.Errorf("close finished campaigns: %w", err)
	}
	return nil
}

// Reserved implements pressure.Reservations: the campaigns of higher
// priority due for the customer in (from, to]: scheduled ones whose
// audience includes them, and started ones that have not written their
// message yet (at the recipient's due time, deferrals included).
func (s *Service) Reserved(ctx context.Context, db bun.IDB, customerPK int64, priority int, from, to time.Time) ([]pressure.Reservation, error) {
	var out []pressure.Reservation
	var started []struct {
		ID       string    `bun:"id"`
		Priority int       `bun:"priority"`
		Due      time.Time `bun:"due_at"`
	}
	if err := db.NewSelect().TableExpr("campaign_recipients AS r").Join("JOIN campaigns AS c ON c.id = r.campaign_id").
		ColumnExpr("c.id, c.priority, r.due_at").Where("r.customer_id = ? AND r.state IN (?, ?)", customerPK, RecipientPending, RecipientHeld).
		Where("c.status = ? AND c.priority > ?", StatusSending, priority).Where("r.due_at > ? AND r.due_at <= ?", from, to).
		Scan(ctx, &started); err != nil {
		return nil, fmt.Errorf("started campaigns: %w", err)
	}
	for _, r := range started {
		out = append(out, pressure.Reservation{At: r.Due, Campaign: r.ID, Priority: r.Priority})
	}
	var cs []*Campaign
	if err := db.NewSelect().Model(&cs).WhereGroup(" AND ", func(q *bun.SelectQuery) *bun.SelectQuery {
		return q.Where("status = ?", StatusScheduled).WhereOr("status = ? AND audience_fixed = ?", StatusSending, false)
	}).Where("priority > ?", priority).Where("scheduled_at > ? AND scheduled_at <= ?", from.Add(-MaxZoneOffset), to.Add(MaxZoneOffset)).
		Scan(ctx); err != nil {
		return nil, fmt.Errorf("scheduled campaigns: %w", err)
	}
	for _, c := range cs {
		var tz struct {
			Zone *string `bun:"time_zone"`
		}
		w, args, err := s.where(ctx, db, c.Audience)
		if err != nil {
			return nil, err
		}
		err = db.NewSelect().TableExpr("customers AS c").Column("c.time_zone").Where("c.id = ?", customerPK).
			Where(w, args...).Scan(ctx, &tz)
		if err != nil {
			if errors.Is(err, sql.ErrNoRows) {
				continue
			}
			return nil, fmt.Errorf("audience of campaign %s: %w", c.ID, err)
		}
		due := s.LocalDue(c, s.o.Policy.Location(tz.Zone))
		if due.After(from) && !due.After(to) {
			out = append(out, pressure.Reservation{At: due, Campaign: c.ID, Priority: c.Priority})
		}
	}
	return out, nil
}
