package outbox

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/uptrace/bun"

	"github.com/refrain-dev/refrain/plugin/customer"
	"github.com/refrain-dev/refrain/plugin/mail"
	"github.com/refrain-dev/refrain/plugin/mail/template"
	"github.com/refrain-dev/refrain/plugin/ptr"
	"github.com/refrain-dev/refrain/plugin/store"
)

// BatchInput is one campaign send: one template to up to
// mail.MaxBatchRecipients customers.
type BatchInput struct {
	// CustomerPKs are the recipients' row ids, 1 to mail.MaxBatchRecipients.
	CustomerPKs []int64
	// Template, Kind, Values, Program, Scenario, Step, Variant and Campaign
	// mean what they mean in EnqueueInput; Values are shared by everyone.
	Template                                   string
	Kind                                       mail.Kind
	Values                                     map[string]string
	Program, Scenario, Step, Variant, Campaign string
	// IdempotencyPrefix makes each recipient's key IdempotencyPrefix + ":" +
	// customer row id: a recipient already written (an earlier, interrupted
	// run of the same send) is skipped. Required.
	IdempotencyPrefix string
}

// BatchResult counts what SendBatch did with each recipient.
type BatchResult struct {
	// Sent were accepted by the provider; Suppressed were not sent (see
	// Suppressed); Skipped have no address or were written before; Queued
	// met a temporary provider failure and are left to the delivery worker;
	// Failed were refused for good.
	Sent, Suppressed, Skipped, Queued, Failed int
	// ProviderIDs are the provider's ids of the calls made, one per locale.
	ProviderIDs []string
}

// Placeholders the batch body is rendered with: plain letters, so that
// neither HTML escaping nor URL normalisation alters them, then replaced
// by the provider's per-recipient substitutions.
const (
	phID        = "RFNxxIDxxRFN"
	phEmail     = "RFNxxEMAILxxRFN"
	phFirstName = "RFNxxFIRSTxxRFN"
	phLastName  = "RFNxxLASTxxRFN"
	phUnsub     = "RFNxxUNSUBxxRFN"
)

// Recipient variables of a batch. The _html variants hold the HTML-escaped
// value: the provider substitutes verbatim, and a name may hold markup.
var batchVars = []struct{ placeholder, text, html string }{
	{phID, "customer_id", "customer_id"},
	{phEmail, "email", "email_html"},
	{phFirstName, "first_name", "first_name_html"},
	{phLastName, "last_name", "last_name_html"},
	{phUnsub, mail.RecipientVarUnsubscribeURL, mail.RecipientVarUnsubscribeURL},
}

// SendBatch sends one template to up to mail.MaxBatchRecipients customers
// with one provider call per locale, personalised by the provider's
// recipient variables (the customer's id, address, names and unsubscribe
// link; other fields are those of the batch). A row per recipient is still
// written first, holding what that recipient receives, so events, the
// outbox and retries work per recipient: a temporary failure leaves the
// rows to the delivery worker, which sends them one by one (after asking
// the provider, when it may have accepted the batch).
//
// Templates for batches should not branch on the personalised fields:
// {{with .Customer.FirstName}} sees a value for everyone.
func (s *Service) SendBatch(ctx context.Context, in BatchInput) (BatchResult, error) {
	var pb *PreparedBatch
	err := s.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		var err error
		pb, err = s.PrepareBatch(ctx, tx, in)
		return err
	})
	if err != nil {
		return pb.result(), err
	}
	return s.DeliverBatch(ctx, pb)
}

// PreparedBatch is a batch whose message rows are written (stored as sent,
// read as sending while their call's body, leased by this worker, says
// sending) and whose provider calls are still to make.
type PreparedBatch struct {
	res   BatchResult
	calls []preparedCall
	// Written are the customers given a row by this batch, Existing those
	// that had one from an earlier run, NoAddress those without an address.
	Written, Existing, NoAddress []int64
}

type preparedCall struct {
	batch  mail.Batch
	toSend []*Message
	// body records the call's outcome for all of toSend.
	body *MessageBody
}

func (pb *PreparedBatch) result() BatchResult {
	if pb == nil {
		return BatchResult{}
	}
	return pb.res
}

// PrepareBatch renders the batch and writes its rows in db, which must be
// a transaction (the bodies, their rows and the bodies' lists of rows are
// written together; the campaign sender decides the pressure policy in
// the same one); DeliverBatch then makes the provider calls once it has
// committed. A call left sending by a crash in between hands
// its rows to the delivery worker when its lease runs out (takeBack),
// which asks the provider before sending any again.
func (s *Service) PrepareBatch(ctx context.Context, db bun.IDB, in BatchInput) (*PreparedBatch, error) {
	pb := &PreparedBatch{}
	if len(in.CustomerPKs) == 0 || len(in.CustomerPKs) > mail.MaxBatchRecipients {
		return pb, fmt.Errorf("send batch: %d recipients, want 1 to %d", len(in.CustomerPKs), mail.MaxBatchRecipients)
	}
	if in.IdempotencyPrefix == "" || in.Template == "" || !in.Kind.Valid() {
		return pb, errors.New("send batch: IdempotencyPrefix, Template and a valid Kind are required")
	}
	var cs []*customer.Customer
	if err := db.NewSelect().Model(&cs).Where(store.In(db, "id", in.CustomerPKs)).Order("id ASC").Scan(ctx); err != nil {
		return pb, fmt.Errorf("send batch: load customers: %w", err)
	}
	keys := make([]string, 0, len(cs))
	for _, c := range cs {
		keys = append(keys, batchKey(in.IdempotencyPrefix, c.PK))
	}
	var existing []string
	if err := db.NewSelect().Model((*Message)(nil)).Column("idempotency_key").
		Where(store.In(db, "idempotency_key", keys)).Scan(ctx, &existing); err != nil {
		return pb, fmt.Errorf("send batch: check written recipients: %w", err)
	}
	written := map[string]bool{}
	for _, k := range existing {
		written[k] = true
	}
	pb.res.Skipped = len(in.CustomerPKs) - len(cs)
	groups := map[string][]*customer.Customer{}
	var order []string
	for _, c := range cs {
		switch {
		case c.EmailNormalized == nil || c.Email == nil:
			pb.res.Skipped++
			pb.NoAddress = append(pb.NoAddress, c.PK)
			continue
		case written[batchKey(in.IdempotencyPrefix, c.PK)]:
			pb.res.Skipped++
			pb.Existing = append(pb.Existing, c.PK)
			continue
		}
		loc := ptr.Deref(c.Locale)
		if groups[loc] == nil {
			order = append(order, loc)
		}
		groups[loc] = append(groups[loc], c)
	}
	// Customers whose messages render to the same body share a call: one
	// body per locale for a template that reads nothing of the recipient
	// but who they are, else one per distinct rendering.
	rendered := map[string]template.Rendered{}
	calls := map[string][]*customer.Customer{}
	unsubs := map[int64]string{}
	var callOrder []string
	perRecipient := s.engine.RecipientDependent(in.Template)
	shared := map[string]batchRendering{}
	for _, loc := range order {
		for _, c := range groups[loc] {
			if in.Kind == mail.KindMarketing {
				unsubs[c.PK] = s.UnsubscribeURL(c)
			}
			br, ok := shared[loc]
			if !ok || perRecipient {
				r, err := s.engine.Render(in.Template, loc, s.batchData(in, c))
				if err != nil {
					return pb, fmt.Errorf("send batch: %w", err)
				}
				br = newBatchRendering(r)
				if !perRecipient {
					// Locales that resolve to the same rendering (en-GB
					// and en without an en-GB template) share a call.
					br.key = contentKey(r)
					shared[loc] = br
				}
			}
			r, own, err := s.faithful(in, c, br, unsubs[c.PK])
			if err != nil {
				return pb, fmt.Errorf("send batch: %w", err)
			}
			// A shared body carries its key, made once; other bodies are
			// known by their content.
			key := br.key
			if perRecipient || own {
				key = contentKey(r)
			}
			if _, ok := rendered[key]; !ok {
				callOrder = append(callOrder, key)
				rendered[key] = r
			}
			calls[key] = append(calls[key], c)
		}
	}
	var rows []*Message
	// One time for the whole batch: its rows share every column but their
	// own facts and are written in one statement.
	now := s.clock.Now()
	for _, loc := range callOrder {
		call, callRows, err := s.prepareCall(ctx, db, now, in, rendered[loc], calls[loc], unsubs, &pb.res)
		if err != nil {
			return pb, err
		}
		rows = append(rows, callRows...)
		if len(call.toSend) > 0 {
			pb.calls = append(pb.calls, call)
		}
	}
	// One multi-row insert for the whole batch.
	if len(rows) > 0 {
		if err := insertRows(ctx, db, rows); err != nil {
			return pb, fmt.Errorf("send batch: write messages: %w", err)
		}
		for _, m := range rows {
			pb.Written = append(pb.Written, *m.CustomerPK)
		}
		for _, call := range pb.calls {
			// The call lists its rows, for the delivery worker to take
			// back should its sender die before recording the outcome.
			ids := make([]int64, len(call.toSend))
			for i, m := range call.toSend {
				ids[i] = m.PK
			}
			call.body.MessageIDs = ids
			if _, err := db.NewUpdate().Model(call.body).Column("message_ids").WherePK().Exec(ctx); err != nil {
				return pb, fmt.Errorf("send batch: list the rows of the call: %w", err)
			}
		}
	}
	return pb, nil
}

// DeliverBatch makes the provider calls of a prepared batch, whose rows
// are committed, and records their outcome.
func (s *Service) DeliverBatch(ctx context.Context, pb *PreparedBatch) (BatchResult, error) {
	for _, call := range pb.calls {
		if err := s.deliverCall(ctx, call, &pb.res); err != nil {
			return pb.res, err
		}
	}
	return pb.res, nil
}

func batchKey(prefix string, pk int64) string { return prefix + ":" + strconv.FormatInt(pk, 10) }

// batchData is what the templates see for c in a batch: c's data, with
// placeholders for what the provider substitutes per recipient.
func (s *Service) batchData(in BatchInput, c *customer.Customer) template.Data {
	d := s.data(c, EnqueueInput{Values: in.Values}, phUnsub)
	d.Customer.ID, d.Customer.Email, d.Customer.FirstName, d.Customer.LastName = phID, phEmail, phFirstName, phLastName
	if in.Kind != mail.KindMarketing {
		d.UnsubscribeURL, d.PreferencesURL = "", ""
	}
	return d
}

// faithful returns r, the batch rendering of c's message, when the
// provider's substitution of c's values into it gives what the template
// renders for c; else c's own rendering (and true), sent as a body of its own. The
// substitution is blind to where a value lands (a name inside a link, a
// line break in a subject) while the template escapes by context: values
// of plain letters and digits read the same everywhere and need no second
// rendering, others are rendered and compared.
func (s *Service) faithful(in BatchInput, c *customer.Customer, br batchRendering, unsub string) (_ template.Rendered, own bool, _ error) {
	r := br.Rendered
	vals := recipientValues(c, unsub)
	check := false
	for ph, v := range vals {
		switch {
		case !br.uses[ph]:
		case ph == phUnsub:
			// The link is Refrain's own: it only needs checking where it
			// is not a quoted href.
			check = check || !br.unsubInHrefOnly || !urlChars(v)
		default:
			check = check || !plainChars(v)
		}
	}
	if !check {
		return r, false, nil
	}
	mine, err := s.engine.Render(in.Template, ptr.Deref(c.Locale), s.data(c, EnqueueInput{Values: in.Values}, unsub))
	if err != nil {
		return template.Rendered{}, false, err
	}
	if personalise(r.Subject, vals, false) == mine.Subject && personalise(r.HTML, vals, true) == mine.HTML &&
		personalise(r.Text, vals, false) == mine.Text {
		return r, false, nil
	}
	return mine, true, nil
}

// batchRendering is a batch body and where its placeholders are.
type batchRendering struct {
	template.Rendered
	// uses holds the placeholders found in the subject or the HTML (the
	// text body is substituted verbatim, as text/template writes it).
	uses map[string]bool
	// unsubInHrefOnly says the unsubscribe link appears only as the whole
	// value of quoted hrefs, and not in the subject.
	unsubInHrefOnly bool
	// key groups the recipients of a shared body into one call.
	key string
}

// contentKey identifies a rendering by its locale and content.
func contentKey(r template.Rendered) string {
	return r.Locale + "\x00" + r.Subject + "\x00" + r.HTML + "\x00" + r.Text
}

func newBatchRendering(r template.Rendered) batchRendering {
	br := batchRendering{Rendered: r, uses: map[string]bool{}}
	for _, v := range batchVars {
		br.uses[v.placeholder] = strings.Contains(r.HTML, v.placeholder) || strings.Contains(r.Subject, v.placeholder)
	}
	br.unsubInHrefOnly = !strings.Contains(r.Subject, phUnsub) &&
		strings.Count(r.HTML, phUnsub) == strings.Count(r.HTML, `href="`+phUnsub+`"`)
	return br
}

// recipientValues are c's values for the batch placeholders.
func recipientValues(c *customer.Customer, unsub string) map[string]string {
	return map[string]string{phID: c.ID(), phEmail: ptr.Deref(c.Email), phFirstName: ptr.Deref(c.FirstName),
		phLastName: ptr.Deref(c.LastName), phUnsub: unsub}
}

// plainChars reports whether every context of html/template (text,
// attribute, URL, script, style) writes v unchanged.
func plainChars(v string) bool {
	for _, r := range v {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return false
		}
	}
	return true
}

// urlChars reports whether v holds only characters a quoted href keeps as
// they are.
func urlChars(v string) bool {
	for _, r := range v {
		if !plainChars(string(r)) && r != ':' && r != '/' && r != '~' {
			return false
		}
	}
	return true
}

// prepareCall builds the rows and the provider batch of one call.
func (s *Service) prepareCall(ctx context.Context, db bun.IDB, now time.Time, in BatchInput, r template.Rendered, cs []*customer.Customer, unsubs map[int64]string, res *BatchResult) (preparedCall, []*Message, error) {
	lockedUntil := now.Add(s.cfg.Lease)
	rows := make([]*Message, 0, len(cs))
	var toSend []*Message
	recipients := make([]mail.Recipient, 0, len(cs))
	// The provider substitutes %recipient.x%; HTML gets the escaped variants.
	subjText := placeholderReplacer(false)
	subjHTML := placeholderReplacer(true)
	batch := mail.Batch{From: s.cfg.From, ReplyTo: s.cfg.ReplyTo, Subject: subjText.Replace(r.Subject),
		HTML: subjHTML.Replace(r.HTML), Text: subjText.Replace(r.Text), Kind: in.Kind, Tracking: s.cfg.Tracking}
	suppressed, err := s.suppressedAmong(ctx, db, cs, in.Kind)
	if err != nil {
		return preparedCall{}, nil, err
	}
	// The body once for the call; each row keeps only its own facts. The
	// body also records the call's outcome: the rows to send are written
	// as sent, and read as sending until the body says the provider took
	// them (deliverCall), so that success updates one row, not a thousand.
	body := &MessageBody{Subject: r.Subject, HTML: r.HTML, Text: r.Text, CreatedAt: now}
	if len(suppressed) < len(cs) {
		body.State, body.LockedBy, body.LockedUntil = BodySending, &s.cfg.WorkerID, &lockedUntil
	}
	if _, err := db.NewInsert().Model(body).Exec(ctx); err != nil {
		return preparedCall{}, nil, fmt.Errorf("send batch: write body: %w", err)
	}
	for _, c := range cs {
		m := &Message{ID: NewMessageID(), IdempotencyKey: batchKey(in.IdempotencyPrefix, c.PK), CustomerPK: &c.PK,
			Recipient: *c.Email, Template: in.Template, Kind: in.Kind, Locale: strp(r.Locale),
			Program: strp(in.Program), Scenario: strp(in.Scenario), Step: strp(in.Step), Variant: strp(in.Variant),
			Campaign: strp(in.Campaign), Values: map[string]any{}, NextAttemptAt: now, CreatedAt: now, UpdatedAt: now,
			State: StateSent, Provider: &s.provider, SentAt: &now, Attempts: 1}
		for k, v := range in.Values {
			m.Values[k] = v
		}
		if name := fullName(c); name != "" {
			m.RecipientName = &name
		}
		unsub := ""
		if in.Kind == mail.KindMarketing {
			unsub = unsubs[c.PK]
			m.UnsubscribeURL = &unsub
		}
		vals := recipientValues(c, unsub)
		m.BodyID = &body.ID
		m.RecipientVars = map[string]string{rvID: c.ID()}
		if c.FirstName != nil && *c.FirstName != "" {
			m.RecipientVars[rvFirstName] = *c.FirstName
		}
		if c.LastName != nil && *c.LastName != "" {
			m.RecipientVars[rvLastName] = *c.LastName
		}
		if reason, ok := suppressed[c.PK]; ok {
			m.State, m.Provider, m.SentAt = StateSuppressed, nil, nil
			m.LastError = strp("suppressed: " + string(reason))
			res.Suppressed++
		} else {
			toSend = append(toSend, m)
			rv := map[string]string{}
			for _, v := range batchVars {
				rv[v.text] = vals[v.placeholder]
				if v.html != v.text {
					rv[v.html] = template.EscapeHTMLText(vals[v.placeholder])
				}
			}
			delete(rv, mail.RecipientVarUnsubscribeURL)
			recipients = append(recipients, mail.Recipient{MessageID: m.ID, Email: *c.Email, UnsubscribeURL: unsub, Variables: rv})
		}
		rows = append(rows, m)
	}
	if len(toSend) == 0 {
		return preparedCall{}, rows, nil
	}
	batch.Recipients = recipients
	tags := tagsOf(toSend[0])
	batch.Tags, batch.Variables = tags, varsOf(toSend[0])
	if in.Kind == mail.KindMarketing {
		batch.ListUnsubscribeMailto = s.cfg.ListUnsubscribeMailto
	}
	return preparedCall{batch: batch, toSend: toSend, body: body}, rows, nil
}

// deliverCall makes one provider call and records its outcome: on
// success, once, on the call's body; on failure, on each row (the rows are
// then the delivery worker's, one by one).
func (s *Service) deliverCall(ctx context.Context, call preparedCall, res *BatchResult) error {
	batch, toSend, body := call.batch, call.toSend, call.body
	id, sendErr := s.sender.SendBatch(ctx, batch)
	if sendErr != nil && ctx.Err() != nil {
		// Leave the call sending: its lease runs out and the delivery
		// worker takes its rows back, asking the provider first.
		return ctx.Err()
	}
	now := s.clock.Now()
	var pe *mail.ProviderError
	permanent := sendErr != nil && (errors.As(sendErr, new(*mail.FieldError)) || (errors.As(sendErr, &pe) && !pe.Temporary))
	err := s.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		// This commit need not wait for the disk: if the server loses it,
		// the call is left sending and its lease runs out, and the
		// delivery worker asks the provider before sending again.
		if err := store.SetLocal(ctx, tx, "synchronous_commit = off"); err != nil {
			return err
		}
		bq := tx.NewUpdate().Model((*MessageBody)(nil)).Set("locked_by = NULL").Set("locked_until = NULL").
			Where("id = ? AND state = ? AND locked_by = ?", body.ID, BodySending, s.cfg.WorkerID)
		if sendErr == nil {
			bq = bq.Set("state = ?", BodySent).Set("provider_message_id = ?", id).Set("sent_at = ?", now)
		} else {
			bq = bq.Set("state = ?", BodySettled)
		}
		r, err := bq.Exec(ctx)
		if err != nil {
			return err
		}
		if n, _ := r.RowsAffected(); n == 0 {
			// The lease ran out and the delivery worker took the rows
			// back: they are its own now.
			return nil
		}
		if sendErr == nil {
			return s.recordSent(ctx, tx, now, toSend)
		}
		ids := make([]int64, len(toSend))
		for i, m := range toSend {
			ids[i] = m.PK
		}
		q := tx.NewUpdate().Model((*Message)(nil)).Set("provider = NULL").Set("sent_at = NULL").Set("updated_at = ?", now).
			Set("last_error = ?", truncate(sendErr.Error(), 2000)).
			Where(store.In(tx, "id", ids)).Where("body_id = ? AND state = ?", body.ID, StateSent)
		if permanent {
			q = q.Set("state = ?", StateFailed)
		} else {
			maybe := !errors.As(sendErr, &pe) || pe.MaybeSent
			var retryAfter time.Duration
			if pe != nil {
				retryAfter = pe.RetryAfter
			}
			q = q.Set("state = ?", StateQueued).Set("maybe_sent = ?", maybe).
				Set("next_attempt_at = ?", now.Add(mail.Backoff(1, retryAfter, s.cfg.Jitter)))
		}
		_, err = q.Exec(ctx)
		return err
	})
	if err != nil {
		return fmt.Errorf("send batch: record outcome: %w", err)
	}
	switch {
	case sendErr == nil:
		res.Sent += len(toSend)
		res.ProviderIDs = append(res.ProviderIDs, id)
	case permanent:
		res.Failed += len(toSend)
	default:
		res.Queued += len(toSend)
	}
	return nil
}

// suppressedAmong returns, by customer row id, the suppression that stops
// kind for each customer in cs, in one query.
func (s *Service) suppressedAmong(ctx context.Context, db bun.IDB, cs []*customer.Customer, kind mail.Kind) (map[int64]Reason, error) {
	byHash := map[string]int64{}
	hashes := make([]string, 0, len(cs))
	for _, c := range cs {
		h := AddressHash(*c.Email)
		byHash[h] = c.PK
		hashes = append(hashes, h)
	}
	var rows []*Suppression
	if err := db.NewSelect().Model(&rows).Where(store.In(db, "address_hash", hashes)).Scan(ctx); err != nil {
		return nil, fmt.Errorf("send batch: check suppressions: %w", err)
	}
	out := map[int64]Reason{}
	for _, r := range rows {
		if kind == mail.KindMarketing || r.Reason.BlocksTransactional() {
			out[byHash[r.AddressHash]] = r.Reason
		}
	}
	for _, c := range cs {
		if _, ok := out[c.PK]; !ok && kind == mail.KindMarketing &&
			(c.ConsentState == customer.ConsentUnsubscribed || c.ConsentState == customer.ConsentNotSubscribed) {
			out[c.PK] = Reason("no_consent")
		}
	}
	if s.hold != nil && kind == mail.KindMarketing {
		pks := make([]int64, 0, len(cs))
		for _, c := range cs {
			pks = append(pks, c.PK)
		}
		holds, err := s.hold(ctx, db, pks)
		if err != nil {
			return nil, fmt.Errorf("send batch: %w", err)
		}
		for pk, why := range holds {
			if _, ok := out[pk]; !ok {
				out[pk] = Reason(why)
			}
		}
	}
	return out, nil
}

// Keys of Message.RecipientVars.
const (
	rvID        = "id"
	rvFirstName = "first_name"
	rvLastName  = "last_name"
)

// FillBodies is fillBodies for readers of the messages table outside the
// outbox (the data export).
func FillBodies(ctx context.Context, db bun.IDB, ms ...*Message) error {
	return fillBodies(ctx, db, ms...)
}

// fillBodies gives the rows of ms written by a batch what their shared
// body holds for them: their subject, HTML and text (the body with the
// row's own facts, as sent), and the outcome of their call: a row stored
// as sent reads as sending while its call is in flight, and reads the
// provider's id and the time the provider took the call once it has.
// Rows with their own content and state, and rows erased since, are left
// alone.
func fillBodies(ctx context.Context, db bun.IDB, ms ...*Message) error {
	var ids []int64
	seen := map[int64]bool{}
	for _, m := range ms {
		if m != nil && m.BodyID != nil && !seen[*m.BodyID] && (needsContent(m) || needsOutcome(m)) {
			seen[*m.BodyID] = true
			ids = append(ids, *m.BodyID)
		}
	}
	if len(ids) == 0 {
		return nil
	}
	var bodies []*MessageBody
	if err := db.NewSelect().Model(&bodies).Where("id IN (?)", bun.List(ids)).Scan(ctx); err != nil {
		return fmt.Errorf("load message bodies: %w", err)
	}
	byID := make(map[int64]*MessageBody, len(bodies))
	for _, b := range bodies {
		byID[b.ID] = b
	}
	for _, m := range ms {
		if m == nil || m.BodyID == nil {
			continue
		}
		b := byID[*m.BodyID]
		if b == nil {
			continue
		}
		if needsOutcome(m) {
			switch b.State {
			case BodySending:
				m.State, m.SentAt, m.LockedBy, m.LockedUntil = StateSending, nil, b.LockedBy, b.LockedUntil
			case BodySent:
				m.ProviderMessageID, m.SentAt = b.ProviderMessageID, b.SentAt
			}
		}
		if !needsContent(m) {
			continue
		}
		vals := map[string]string{phID: m.RecipientVars[rvID], phEmail: m.Recipient, phFirstName: m.RecipientVars[rvFirstName],
			phLastName: m.RecipientVars[rvLastName], phUnsub: ptr.Deref(m.UnsubscribeURL)}
		m.Subject = personalise(b.Subject, vals, false)
		m.HTML = personalise(b.HTML, vals, true)
		m.Text = personalise(b.Text, vals, false)
	}
	return nil
}

// needsContent says whether m keeps its content in its body.
func needsContent(m *Message) bool { return m.HTML == "" && m.Text == "" }

// needsOutcome says whether m may read its call's outcome from its body:
// stored as sent, with no provider id of its own.
func needsOutcome(m *Message) bool { return m.State == StateSent && m.ProviderMessageID == nil }

func placeholderReplacer(htmlVariant bool) *strings.Replacer {
	pairs := make([]string, 0, 2*len(batchVars))
	for _, v := range batchVars {
		name := v.text
		if htmlVariant {
			name = v.html
		}
		pairs = append(pairs, v.placeholder, "%recipient."+name+"%")
	}
	return strings.NewReplacer(pairs...)
}

func personalise(s string, vals map[string]string, escape bool) string {
	pairs := make([]string, 0, 2*len(vals))
	for ph, v := range vals {
		if escape {
			v = template.EscapeHTMLText(v)
		}
		pairs = append(pairs, ph, v)
	}
	return strings.NewReplacer(pairs...).Replace(s)
}
