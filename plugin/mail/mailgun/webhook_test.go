package mailgun_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/refrain-dev/refrain/plugin/mail"
	"github.com/refrain-dev/refrain/plugin/mail/mailgun"
)

const (
	fixtureDir = "../../../testdata/webhooks"
	signingKey = "TEST_WEBHOOK_SIGNING_KEY"
)

func readFixture(t *testing.T, name string) []byte {
	t.Helper()
	body, err := os.ReadFile(filepath.Join(fixtureDir, name))
	require.NoError(t, err)
	return body
}

func TestWebhookFixtures(t *testing.T) {
	cases := []struct {
		file string
		want mail.Event
	}{
		{
			file: "mailgun_delivered.json",
			want: mail.Event{
				ID: "hK7mQVt1QtqRiOfQXta4sw", Provider: "mailgun", Kind: mail.EventDelivered,
				At:                time.Date(2018, 6, 22, 18, 29, 59, 626182000, time.UTC),
				Recipient:         "john@example.com",
				ProviderMessageID: "20180622182958.1.48906CB188F1A454@exmple.org",
				Variables:         map[string]string{}, Tags: []string{},
			},
		},
		{
			file: "mailgun_opened.json",
			want: mail.Event{
				ID: "-laxIqj9QWubsjY_3pTq_g", Provider: "mailgun", Kind: mail.EventOpened,
				At:                time.Date(2013, 8, 21, 1, 9, 3, 42277000, time.UTC),
				Recipient:         "recipient@example.com",
				ProviderMessageID: "20130821005614.19826.35976@samples.mailgun.org",
				Variables:         map[string]string{}, Tags: []string{},
				Client: mail.ClientInfo{
					Type: "mobile browser", OS: "iOS", DeviceType: "mobile", Name: "Mobile Safari",
					UserAgent: "Mozilla/5.0 (iPhone; CPU iPhone OS 6_1 like Mac OS X) AppleWebKit/536.26 (KHTML, like Gecko) Mobile/10B143",
					IP:        "111.111.111.111",
				},
				MachineOpen: false,
			},
		},
		{
			file: "mailgun_clicked.json",
			want: mail.Event{
				ID: "G5zMz2ysS6OxZ2C8xb2Tqg", Provider: "mailgun", Kind: mail.EventClicked,
				At:                time.Date(2013, 8, 21, 8, 59, 24, 94891000, time.UTC),
				Recipient:         "recipient@example.com",
				ProviderMessageID: "20130821085807.30688.67706@samples.mailgun.org",
				Variables:         map[string]string{}, Tags: []string{},
				URL: "http://example.com/signup",
				Client: mail.ClientInfo{
					Type: "browser", OS: "Linux", DeviceType: "desktop", Name: "Chromium",
					UserAgent: "Mozilla/5.0 (X11; Linux i686) AppleWebKit/537.36 (KHTML, like Gecko) Ubuntu Chromium/28.0.1500.71 Chrome/28.0.1500.71 Safari/537.36",
					IP:        "123.123.123.321",
				},
			},
		},
		{
			file: "mailgun_unsubscribed.json",
			want: mail.Event{
				ID: "W3X4JOhFT-OZidZGKKr9iA", Provider: "mailgun", Kind: mail.EventUnsubscribed,
				At:                time.Date(2013, 8, 22, 23, 23, 11, 421473000, time.UTC),
				Recipient:         "recipient@example.com",
				ProviderMessageID: "20130822232216.13966.79700@samples.mailgun.org",
				Variables:         map[string]string{}, Tags: []string{},
				Client: mail.ClientInfo{
					Type: "browser", OS: "OS X", DeviceType: "desktop", Name: "Chrome",
					UserAgent: "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_8_4) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/28.0.1500.95 Safari/537.36",
					IP:        "23.23.23.345",
				},
			},
		},
		{
			file: "mailgun_complained.json",
			want: mail.Event{
				ID: "ncV2XwymRUKbPek_MIM-Gw", Provider: "mailgun", Kind: mail.EventComplained,
				At:                time.Date(2013, 8, 22, 23, 31, 0, 49634000, time.UTC),
				Recipient:         "foo@example.com",
				ProviderMessageID: "20130718032413.263EE2E0926@example.com",
				Variables:         map[string]string{}, Tags: []string{},
			},
		},
		{
			file: "mailgun_permanent_fail.json",
			want: mail.Event{
				ID: "pl271FzxTTmGRW8Uj3dUWw", Provider: "mailgun", Kind: mail.EventFailed,
				At:                time.Date(2018, 6, 22, 21, 12, 49, 818328000, time.UTC),
				Recipient:         "slava@mailgun.com",
				ProviderMessageID: "20180622211249.1.2A6098970A380E12@example.org",
				Variables:         map[string]string{}, Tags: []string{},
				Severity:            mail.SeverityPermanent,
				Reason:              "suppress-bounce",
				DeliveryCode:        605,
				DeliveryDescription: "Not delivering to previously bounced address",
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.file, func(t *testing.T) {
			body := readFixture(t, tc.file)

			sig, err := mailgun.ParseSignature(body)
			require.NoError(t, err)
			require.NotEmpty(t, sig.Token)
			var secs int64
			require.NoError(t, json.Unmarshal([]byte(sig.Timestamp), &secs))
			signed := time.Unix(secs, 0)

			// Valid with the key, a minute after signing.
			require.NoError(t, sig.Verify(signingKey, signed.Add(time.Minute), mailgun.DefaultSignatureWindow))
			// The fixtures are old: valid today only with a wide window.
			require.NoError(t, mailgun.VerifySignature(signingKey, sig.Timestamp, sig.Token, sig.Signature,
				time.Now(), 100*365*24*time.Hour))
			// Wrong key.
			require.ErrorIs(t, sig.Verify("ANOTHER_KEY", signed, time.Minute), mailgun.ErrBadSignature)
			// Stale: today, with the default window.
			var stale *mailgun.StaleSignatureError
			require.ErrorAs(t, sig.Verify(signingKey, time.Now(), mailgun.DefaultSignatureWindow), &stale)
			require.Equal(t, signed.UTC(), stale.Timestamp)
			// From the future beyond the window.
			require.ErrorAs(t, sig.Verify(signingKey, signed.Add(-10*time.Minute), mailgun.DefaultSignatureWindow), &stale)
			// A tampered token.
			require.ErrorIs(t, mailgun.VerifySignature(signingKey, sig.Timestamp, sig.Token+"x", sig.Signature,
				signed, time.Minute), mailgun.ErrBadSignature)

			ev, err := mailgun.ParseEvent(body)
			require.NoError(t, err)
			require.NotEmpty(t, ev.Raw)
			require.True(t, json.Valid(ev.Raw))
			ev.Raw = nil
			require.Equal(t, tc.want, ev)
		})
	}
}

func TestParseEventUserVariablesAndTags(t *testing.T) {
	body := []byte(`{"signature":{},"event-data":{
		"event":"clicked","id":"ev-1","timestamp":1767268800.000123,"recipient":"ada@example.com",
		"tags":["welcome","welcome-d3"],"url":"https://shop.example/survey?x=1",
		"user-variables":{"message_id":"msg_01","program":"welcome","step":"d3","variant":"a","attempt":2},
		"message":{"headers":{"message-id":"<20260101.1@mg.shop.example>"}}}}`)
	ev, err := mailgun.ParseEvent(body)
	require.NoError(t, err)
	require.Equal(t, "msg_01", ev.MessageID)
	require.Equal(t, "welcome", ev.Program)
	require.Equal(t, "d3", ev.Step)
	require.Equal(t, "a", ev.Variant)
	require.Equal(t, map[string]string{"message_id": "msg_01", "program": "welcome", "step": "d3", "variant": "a", "attempt": "2"}, ev.Variables)
	require.Equal(t, []string{"welcome", "welcome-d3"}, ev.Tags)
	require.Equal(t, "https://shop.example/survey?x=1", ev.URL)
	require.Equal(t, "20260101.1@mg.shop.example", ev.ProviderMessageID)
	require.Equal(t, time.Date(2026, 1, 1, 12, 0, 0, 123000, time.UTC), ev.At)
}

func TestParseEventAcceptedAndTemporaryFailure(t *testing.T) {
	ev, err := mailgun.ParseEvent([]byte(`{"event-data":{"event":"accepted","id":"a1","timestamp":1767268800,
		"recipient":"ada@example.com","user-variables":{"message_id":"m1"}}}`))
	require.NoError(t, err)
	require.Equal(t, mail.EventAccepted, ev.Kind)
	require.Equal(t, "m1", ev.MessageID)
	require.Equal(t, time.Unix(1767268800, 0).UTC(), ev.At)

	ev, err = mailgun.ParseEvent([]byte(`{"event-data":{"event":"failed","id":"f1","timestamp":1767268800.5,
		"severity":"temporary","reason":"generic","recipient":"ada@example.com",
		"delivery-status":{"code":452,"description":"","message":"4.2.2 Mailbox full"}}}`))
	require.NoError(t, err)
	require.Equal(t, mail.SeverityTemporary, ev.Severity)
	require.Equal(t, "generic", ev.Reason)
	require.Equal(t, 452, ev.DeliveryCode)
	require.Equal(t, "4.2.2 Mailbox full", ev.DeliveryMessage)
	require.Equal(t, time.Date(2026, 1, 1, 12, 0, 0, 500000000, time.UTC), ev.At)
}

func TestParseEventUnacceptable(t *testing.T) {
	cases := map[string]string{
		"not json":         `event=delivered`,
		"no event-data":    `{"signature":{"timestamp":"1","token":"t","signature":"s"}}`,
		"null event-data":  `{"event-data":null}`,
		"unknown kind":     `{"event-data":{"event":"list_member_uploaded","id":"x","timestamp":1}}`,
		"no id":            `{"event-data":{"event":"delivered","timestamp":1}}`,
		"no timestamp":     `{"event-data":{"event":"delivered","id":"x"}}`,
		"bad vars":         `{"event-data":{"event":"delivered","id":"x","timestamp":1,"user-variables":[1]}}`,
		"event-data array": `{"event-data":[]}`,
	}
	for name, body := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := mailgun.ParseEvent([]byte(body))
			require.ErrorIs(t, err, mail.ErrUnacceptable)
		})
	}
	_, err := mailgun.ParseSignature([]byte(`{"event-data":{}}`))
	require.ErrorIs(t, err, mail.ErrUnacceptable)
}

func TestVerifySignatureInputs(t *testing.T) {
	now := time.Unix(1767268800, 0)
	require.ErrorIs(t, mailgun.VerifySignature(signingKey, "1767268800", "tok", "", now, time.Minute), mailgun.ErrBadSignature)
	require.ErrorIs(t, mailgun.VerifySignature(signingKey, "1767268800", "tok", "zz-not-hex", now, time.Minute), mailgun.ErrBadSignature)
	require.EqualError(t, mailgun.VerifySignature("", "1767268800", "tok", "ab", now, time.Minute),
		"verify mailgun signature: no signing key configured")
}

// TestMachineOpen: the Gmail and Yahoo image proxies fetch when a person
// opens the message, so their opens are human; Apple MPP prefetches.
func TestMachineOpen(t *testing.T) {
	cases := []struct {
		name   string
		client mail.ClientInfo
		want   bool
	}{
		{"person on a phone", mail.ClientInfo{Name: "Mobile Safari", UserAgent: "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148"}, false},
		{"Mailgun flags a bot", mail.ClientInfo{Bot: "apple", UserAgent: "Mozilla/5.0"}, true},
		{"Mailgun flags the Gmail proxy", mail.ClientInfo{Bot: "gmail"}, false},
		{"Apple MPP by name", mail.ClientInfo{Name: "Apple Mail Privacy Protection"}, true},
		{"Apple MPP bare user agent", mail.ClientInfo{UserAgent: "Mozilla/5.0"}, true},
		{"Google image proxy", mail.ClientInfo{UserAgent: "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)"}, false},
		{"Yahoo proxy", mail.ClientInfo{UserAgent: "YahooMailProxy; https://help.yahoo.com/kb/yahoo-mail-proxy-SLN28749.html"}, false},
		{"nothing known", mail.ClientInfo{}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, mailgun.MachineOpen(tc.client))
		})
	}

	ev, err := mailgun.ParseEvent([]byte(`{"event-data":{"event":"opened","id":"o1","timestamp":1767268800,
		"client-info":{"client-name":"unknown","user-agent":"Mozilla/5.0","bot":"apple"}}}`))
	require.NoError(t, err)
	require.True(t, ev.MachineOpen)
	require.Equal(t, "apple", ev.Client.Bot)
}
