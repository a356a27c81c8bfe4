package mail_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/refrain-dev/refrain/plugin/mail"
)

func TestBackoff(t *testing.T) {
	top := func() float64 { return 0.999999 }
	half := func() float64 { return 0.5 }
	zero := func() float64 { return 0 }

	cases := []struct {
		name       string
		attempt    int
		retryAfter time.Duration
		rnd        func() float64
		want       time.Duration
	}{
		{"first retry, half jitter", 1, 0, half, 5 * time.Second},
		{"second retry doubles", 2, 0, half, 10 * time.Second},
		{"fifth retry", 5, 0, half, 80 * time.Second},
		{"attempt 0 is the first", 0, 0, half, 5 * time.Second},
		{"capped at an hour", 20, 0, half, 30 * time.Minute},
		{"huge attempt does not overflow", 500, 0, half, 30 * time.Minute},
		{"full jitter can be zero", 3, 0, zero, 0},
		{"retry-after is a floor", 1, 7 * time.Second, zero, 7 * time.Second},
		{"jitter above retry-after wins", 4, 7 * time.Second, half, 40 * time.Second},
		{"retry-after above the cap is honoured", 30, 3 * time.Hour, half, 3 * time.Hour},
		{"retry-after is bounded", 1, 100 * time.Hour, zero, mail.MaxRetryAfter},
		{"out of range rnd is taken as zero", 2, 0, func() float64 { return 1.5 }, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, mail.Backoff(tc.attempt, tc.retryAfter, tc.rnd))
		})
	}

	// Never above the ceiling, whatever the jitter.
	for attempt := 1; attempt <= 40; attempt++ {
		d := mail.Backoff(attempt, 0, top)
		require.LessOrEqual(t, d, mail.BackoffCap, "attempt %d", attempt)
		require.GreaterOrEqual(t, d, time.Duration(0))
	}
	// The default source stays within bounds.
	for range 100 {
		d := mail.Backoff(3, 0, nil)
		require.GreaterOrEqual(t, d, time.Duration(0))
		require.Less(t, d, 40*time.Second)
	}
}

func TestProviderError(t *testing.T) {
	cause := errors.New("boom")
	err := fmt.Errorf("send message: %w", &mail.ProviderError{Status: 503, Reason: "unavailable", Temporary: true, Err: cause})
	require.True(t, mail.IsTemporary(err))
	require.ErrorIs(t, err, cause)
	require.EqualError(t, err, "send message: provider temporary failure: status 503: unavailable")

	perm := &mail.ProviderError{Status: 400, Reason: "to parameter is not a valid address"}
	require.False(t, mail.IsTemporary(perm))
	require.False(t, mail.IsTemporary(errors.New("other")))
	require.EqualError(t, &mail.ProviderError{Reason: "timeout", Temporary: true}, "provider temporary failure: timeout")
}

func validMessage() mail.Message {
	return mail.Message{
		ID:                 "msg_1",
		To:                 "ada@example.com",
		From:               "Shop <news@shop.example>",
		Subject:            "Hello",
		Text:               "Hi",
		Kind:               mail.KindMarketing,
		Tags:               []string{"welcome"},
		ListUnsubscribeURL: "https://shop.example/u/tok",
	}
}

func TestMessageValidate(t *testing.T) {
	require.NoError(t, validMessage().Validate())

	cases := []struct {
		field  string
		mutate func(*mail.Message)
	}{
		{"ID", func(m *mail.Message) { m.ID = "" }},
		{"To", func(m *mail.Message) { m.To = "not an address" }},
		{"From", func(m *mail.Message) { m.From = "" }},
		{"ReplyTo", func(m *mail.Message) { m.ReplyTo = "nope" }},
		{"Kind", func(m *mail.Message) { m.Kind = "promo" }},
		{"HTML", func(m *mail.Message) { m.Text = "" }},
		{"Tags", func(m *mail.Message) { m.Tags = []string{"a", "b", "c", "d"} }},
		{"Tags[0]", func(m *mail.Message) { m.Tags = []string{" "} }},
		{"Variables", func(m *mail.Message) { m.Variables = map[string]string{"message_id": "x"} }},
		{"ListUnsubscribeURL", func(m *mail.Message) { m.ListUnsubscribeURL = "" }},
		{"ListUnsubscribeURL", func(m *mail.Message) { m.ListUnsubscribeURL = "http://shop.example/u" }},
		{"Subject", func(m *mail.Message) { m.Subject = "Hi\r\nBcc: victim@example.com" }},
		{"ToName", func(m *mail.Message) { m.ToName = "Ann\nBcc: victim@example.com" }},
	}
	for _, tc := range cases {
		m := validMessage()
		tc.mutate(&m)
		err := m.Validate()
		require.ErrorIs(t, err, mail.ErrInvalid, tc.field)
		var fe *mail.FieldError
		require.ErrorAs(t, err, &fe)
		require.Equal(t, tc.field, fe.Field)
	}

	// Transactional mail needs no unsubscribe address; a template replaces the body.
	m := validMessage()
	m.Kind, m.ListUnsubscribeURL, m.Text, m.TemplateName = mail.KindTransactional, "", "", "order-confirmation"
	require.NoError(t, m.Validate())
}

func TestBatchValidate(t *testing.T) {
	b := mail.Batch{
		From: "news@shop.example", Subject: "Hi %recipient.first_name%", HTML: "<p>Hi</p>", Kind: mail.KindMarketing,
		Recipients: []mail.Recipient{
			{MessageID: "m1", Email: "a@example.com", UnsubscribeURL: "https://shop.example/u/1"},
			{MessageID: "m2", Email: "b@example.com", UnsubscribeURL: "https://shop.example/u/2"},
		},
	}
	require.NoError(t, b.Validate())

	dup := b
	dup.Recipients = append([]mail.Recipient{}, b.Recipients...)
	dup.Recipients[1].Email = "A@example.com"
	var fe *mail.FieldError
	require.ErrorAs(t, dup.Validate(), &fe)
	require.Equal(t, "Recipients[1].Email", fe.Field)

	reserved := b
	reserved.Recipients = []mail.Recipient{{MessageID: "m1", Email: "a@example.com", UnsubscribeURL: "https://shop.example/u/1", Variables: map[string]string{"unsubscribe_url": "x"}}}
	require.ErrorAs(t, reserved.Validate(), &fe)
	require.Equal(t, "Recipients[0].Variables", fe.Field)

	noUnsub := b
	noUnsub.Recipients = []mail.Recipient{{MessageID: "m1", Email: "a@example.com"}}
	require.ErrorAs(t, noUnsub.Validate(), &fe)
	require.Equal(t, "Recipients[0].UnsubscribeURL", fe.Field)

	header := b
	header.Subject = "Hi\nBcc: victim@example.com"
	require.ErrorAs(t, header.Validate(), &fe)
	require.Equal(t, "Subject", fe.Field)

	tooMany := b
	tooMany.Recipients = make([]mail.Recipient, mail.MaxBatchRecipients+1)
	require.ErrorAs(t, tooMany.Validate(), &fe)
	require.Equal(t, "Recipients", fe.Field)
}

func TestListUnsubscribe(t *testing.T) {
	require.Equal(t, "<https://shop.example/u/t>, <mailto:u@shop.example?subject=unsubscribe>",
		mail.ListUnsubscribe("https://shop.example/u/t", "u@shop.example?subject=unsubscribe"))
	require.Equal(t, "<https://shop.example/u/t>", mail.ListUnsubscribe("https://shop.example/u/t", ""))
	require.Equal(t, "<https://x.example/u>, <MAILTO:a@x.example>", mail.ListUnsubscribe("https://x.example/u", "MAILTO:a@x.example"))
}
