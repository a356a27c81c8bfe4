package kpi

import (
	"context"
	"time"

	"github.com/uptrace/bun"

	"github.com/refrain-dev/refrain/plugin/mail"
	"github.com/refrain-dev/refrain/plugin/mail/outbox"
	"github.com/refrain-dev/refrain/plugin/ptr"
)

// Recorder moves the engagement rollups when the outbox marks messages
// sent (it is an outbox.SendRecorder) and when tracking records a provider
// event (a tracking.EventRecorder). The assembly hands it to both, so that
// mail never imports kpi.
type Recorder struct{}

// RecordSent counts msgs as sent in the hour of at.
func (Recorder) RecordSent(ctx context.Context, db bun.IDB, at time.Time, msgs []*outbox.Message) error {
	dims := make([]Dims, len(msgs))
	for i, m := range msgs {
		dims[i] = DimsOf(m)
	}
	return CountSent(ctx, db, at, dims)
}

// RecordEvent counts ev against msg.
func (Recorder) RecordEvent(ctx context.Context, db bun.IDB, msg *outbox.Message, ev mail.Event) error {
	return CountEvent(ctx, db, MessageOf(msg), ev.Kind, ev.Severity, ev.MachineOpen, ev.At)
}

// DimsOf returns the dimensions m's engagement counts roll up to.
func DimsOf(m *outbox.Message) Dims {
	return Dims{Program: ptr.Deref(m.Program), Scenario: ptr.Deref(m.Scenario), Step: ptr.Deref(m.Step),
		Variant: ptr.Deref(m.Variant), Campaign: ptr.Deref(m.Campaign)}
}

// MessageOf is what the engagement rollups need of a message row: its
// cohort is its send time, or its creation time when it was never sent.
func MessageOf(m *outbox.Message) Message {
	at := m.CreatedAt
	if m.SentAt != nil {
		at = *m.SentAt
	}
	return Message{PK: m.PK, SentAt: at, Dims: DimsOf(m)}
}
