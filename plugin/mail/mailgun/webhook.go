package mailgun

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	refmail "github.com/refrain-dev/refrain/plugin/mail"
)

// DefaultSignatureWindow is the freshness window the webhook handler should
// pass to VerifySignature: Mailgun signs each delivery attempt anew, so a
// genuine delivery is seconds old.
const DefaultSignatureWindow = 5 * time.Minute

// ErrBadSignature reports a webhook whose signature does not match the
// signing key (or is missing). The HTTP edge answers 401.
var ErrBadSignature = errors.New("mailgun webhook signature mismatch")

// StaleSignatureError reports a correctly signed webhook whose timestamp is
// outside the freshness window: a replay, or a badly skewed clock.
type StaleSignatureError struct {
	// Timestamp is the signed time, Now the verifier's time, Window the
	// tolerance either side.
	Timestamp time.Time
	Now       time.Time
	Window    time.Duration
}

// Error describes how far off the timestamp is.
func (e *StaleSignatureError) Error() string {
	return fmt.Sprintf("mailgun webhook timestamp %s is outside %s of %s",
		e.Timestamp.Format(time.RFC3339), e.Window, e.Now.Format(time.RFC3339))
}

// Signature is the signature block of a Mailgun webhook body.
type Signature struct {
	// Timestamp is the signing time, Unix seconds as a decimal string.
	Timestamp string `json:"timestamp"`
	// Token is a random string, unique per delivery: the caller stores it
	// for the freshness window and refuses a token seen before (replay).
	Token string `json:"token"`
	// Signature is hex(HMAC-SHA256(signing key, Timestamp + Token)).
	Signature string `json:"signature"`
}

// Verify checks s with VerifySignature.
func (s Signature) Verify(signingKey string, now time.Time, window time.Duration) error {
	return VerifySignature(signingKey, s.Timestamp, s.Token, s.Signature, now, window)
}

// VerifySignature checks a Mailgun webhook signature: signature must be the
// hex HMAC-SHA256 of timestamp followed by token under signingKey (compared
// in constant time), and timestamp within window of now. It returns
// ErrBadSignature or a *StaleSignatureError. The token is not checked for
// reuse here, since that needs storage: the caller records it.
func VerifySignature(signingKey, timestamp, token, signature string, now time.Time, window time.Duration) error {
	if signingKey == "" {
		return errors.New("verify mailgun signature: no signing key configured")
	}
	if timestamp == "" || token == "" || signature == "" {
		return fmt.Errorf("verify mailgun signature: missing timestamp, token or signature: %w", ErrBadSignature)
	}
	got, err := hex.DecodeString(signature)
	if err != nil {
		return fmt.Errorf("verify mailgun signature: signature is not hex: %w", ErrBadSignature)
	}
	mac := hmac.New(sha256.New, []byte(signingKey))
	mac.Write([]byte(timestamp))
	mac.Write([]byte(token))
	if !hmac.Equal(got, mac.Sum(nil)) {
		return fmt.Errorf("verify mailgun signature: %w", ErrBadSignature)
	}
	secs, err := strconv.ParseInt(timestamp, 10, 64)
	if err != nil {
		return fmt.Errorf("verify mailgun signature: timestamp %q is not Unix seconds: %w", timestamp, ErrBadSignature)
	}
	signed := time.Unix(secs, 0).UTC()
	if d := now.Sub(signed); d > window || d < -window {
		return &StaleSignatureError{Timestamp: signed, Now: now.UTC(), Window: window}
	}
	return nil
}

// ParseSignature reads the signature block of a webhook body. A body with
// no signature block wraps mail.ErrUnacceptable.
func ParseSignature(body []byte) (Signature, error) {
	var payload struct {
		Signature *Signature `json:"signature"`
	}
	if err := json.Unmarshal(body, &payload); err != nil {
		return Signature{}, fmt.Errorf("parse mailgun signature: %w: %v", refmail.ErrUnacceptable, err)
	}
	if payload.Signature == nil {
		return Signature{}, fmt.Errorf("parse mailgun signature: no signature block: %w", refmail.ErrUnacceptable)
	}
	return *payload.Signature, nil
}

// webhookEvent is the part of Mailgun's event-data Refrain reads.
type webhookEvent struct {
	Event         string          `json:"event"`
	ID            string          `json:"id"`
	Timestamp     json.Number     `json:"timestamp"`
	Recipient     string          `json:"recipient"`
	Tags          []string        `json:"tags"`
	URL           string          `json:"url"`
	IP            string          `json:"ip"`
	Severity      string          `json:"severity"`
	Reason        string          `json:"reason"`
	UserVariables json.RawMessage `json:"user-variables"`
	ClientInfo    struct {
		ClientType string `json:"client-type"`
		ClientOS   string `json:"client-os"`
		DeviceType string `json:"device-type"`
		ClientName string `json:"client-name"`
		UserAgent  string `json:"user-agent"`
		Bot        string `json:"bot"`
		IP         string `json:"ip"`
	} `json:"client-info"`
	DeliveryStatus struct {
		Code        json.Number `json:"code"`
		Description string      `json:"description"`
		Message     string      `json:"message"`
	} `json:"delivery-status"`
	Message struct {
		Headers struct {
			MessageID string `json:"message-id"`
		} `json:"headers"`
	} `json:"message"`
}

// ParseEvent reads a Mailgun webhook body ({"signature": ..., "event-data":
// ...}) into a mail.Event. Only accepted, delivered, opened, clicked,
// unsubscribed, complained and failed events are read; a body that is not
// JSON, has no event-data, no event id, or another event kind wraps
// mail.ErrUnacceptable, which the HTTP edge answers with 406 so Mailgun
// stops retrying. ParseEvent does not verify the signature.
func ParseEvent(body []byte) (refmail.Event, error) {
	var payload struct {
		EventData json.RawMessage `json:"event-data"`
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&payload); err != nil {
		return refmail.Event{}, fmt.Errorf("parse mailgun event: %w: %v", refmail.ErrUnacceptable, err)
	}
	if len(payload.EventData) == 0 || string(payload.EventData) == "null" {
		return refmail.Event{}, fmt.Errorf("parse mailgun event: no event-data: %w", refmail.ErrUnacceptable)
	}
	var data webhookEvent
	dec = json.NewDecoder(bytes.NewReader(payload.EventData))
	dec.UseNumber()
	if err := dec.Decode(&data); err != nil {
		return refmail.Event{}, fmt.Errorf("parse mailgun event: %w: %v", refmail.ErrUnacceptable, err)
	}

	kind := refmail.EventKind(data.Event)
	switch kind {
	case refmail.EventAccepted, refmail.EventDelivered, refmail.EventOpened, refmail.EventClicked,
		refmail.EventUnsubscribed, refmail.EventComplained, refmail.EventFailed:
	default:
		return refmail.Event{}, fmt.Errorf("parse mailgun event: unknown event %q: %w", data.Event, refmail.ErrUnacceptable)
	}
	if data.ID == "" {
		return refmail.Event{}, fmt.Errorf("parse mailgun event %s: no id: %w", kind, refmail.ErrUnacceptable)
	}
	at, err := parseTimestamp(data.Timestamp)
	if err != nil {
		return refmail.Event{}, fmt.Errorf("parse mailgun event %s: %w: %v", data.ID, refmail.ErrUnacceptable, err)
	}
	vars, err := parseUserVariables(data.UserVariables)
	if err != nil {
		return refmail.Event{}, fmt.Errorf("parse mailgun event %s: user-variables: %w: %v", data.ID, refmail.ErrUnacceptable, err)
	}

	ev := refmail.Event{
		ID:                data.ID,
		Provider:          "mailgun",
		Kind:              kind,
		At:                at,
		Recipient:         data.Recipient,
		ProviderMessageID: trimAngles(data.Message.Headers.MessageID),
		MessageID:         vars[refmail.VarMessageID],
		Program:           vars[refmail.VarProgram],
		Step:              vars[refmail.VarStep],
		Variant:           vars[refmail.VarVariant],
		Variables:         vars,
		Tags:              data.Tags,
		URL:               data.URL,
		Client: refmail.ClientInfo{
			Type:       data.ClientInfo.ClientType,
			OS:         data.ClientInfo.ClientOS,
			DeviceType: data.ClientInfo.DeviceType,
			Name:       data.ClientInfo.ClientName,
			UserAgent:  data.ClientInfo.UserAgent,
			Bot:        data.ClientInfo.Bot,
			IP:         firstNonEmpty(data.IP, data.ClientInfo.IP),
		},
		Raw: append(json.RawMessage(nil), payload.EventData...),
	}
	if ev.Tags == nil {
		ev.Tags = []string{}
	}
	if kind == refmail.EventOpened {
		ev.MachineOpen = MachineOpen(ev.Client)
	}
	if kind == refmail.EventFailed {
		ev.Severity = refmail.Severity(data.Severity)
		ev.Reason = data.Reason
		ev.DeliveryDescription = data.DeliveryStatus.Description
		ev.DeliveryMessage = data.DeliveryStatus.Message
		if data.DeliveryStatus.Code != "" {
			code, err := strconv.Atoi(data.DeliveryStatus.Code.String())
			if err != nil {
				return refmail.Event{}, fmt.Errorf("parse mailgun event %s: delivery-status code: %w: %v", data.ID, refmail.ErrUnacceptable, err)
			}
			ev.DeliveryCode = code
		}
	}
	return ev, nil
}

// MachineOpen reports whether an open was made by a machine rather than by
// a person reading the message. The rule, in order:
//
//   - The open came through the image proxy of Gmail or Yahoo Mail: a
//     human open. These proxies fetch images when the person opens the
//     message, only hiding their address and device. Google: "Gmail will
//     now display all images [...] served through Google's secure proxy
//     servers" when a message is opened
//     (https://gmail.googleblog.com/2013/12/images-now-showing.html and
//     https://support.google.com/mail/answer/145919); Yahoo's proxy names
//     itself in its user agent and fetches on display
//     (https://help.yahoo.com/kb/yahoo-mail-proxy-SLN28749.html). Mailgun
//     flags the Gmail proxy as bot "gmail"
//     (https://documentation.mailgun.com/docs/mailgun/user-manual/tracking-messages/tracking-opens),
//     which is therefore not taken as a machine either.
//   - Mailgun flagged another bot: client-info.bot is not empty ("apple"
//     for Apple Mail Privacy Protection).
//   - The client is Apple Mail Privacy Protection: its client name says
//     so, or the user agent is the bare "Mozilla/5.0" Apple's proxy sends.
//     Apple's proxy downloads remote content in the background when the
//     message is received, whether or not it is read
//     (https://support.apple.com/guide/mail/use-mail-privacy-protection-mlhl03be2866/mac).
//
// Anything else (a browser or mail client user agent) is a human open.
func MachineOpen(c refmail.ClientInfo) bool {
	lowerUA := strings.ToLower(strings.TrimSpace(c.UserAgent))
	for _, proxy := range []string{"googleimageproxy", "via ggpht.com", "yahoomailproxy"} {
		if strings.Contains(lowerUA, proxy) {
			return false
		}
	}
	switch strings.ToLower(strings.TrimSpace(c.Bot)) {
	case "":
	case "gmail", "google", "yahoo":
		return false
	default:
		return true
	}
	if strings.Contains(strings.ToLower(c.Name), "privacy protection") {
		return true
	}
	return lowerUA == "mozilla/5.0"
}

// parseTimestamp reads Mailgun's float Unix timestamp to the microsecond,
// from its decimal text so that no float rounding creeps in.
func parseTimestamp(n json.Number) (time.Time, error) {
	s := strings.TrimSpace(n.String())
	if s == "" {
		return time.Time{}, errors.New("no timestamp")
	}
	whole, frac, _ := strings.Cut(s, ".")
	if strings.ContainsAny(s, "eE") {
		f, err := n.Float64()
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			return time.Time{}, fmt.Errorf("timestamp %q is not a number", s)
		}
		return time.UnixMicro(int64(math.Round(f * 1e6))).UTC(), nil
	}
	secs, err := strconv.ParseInt(whole, 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("timestamp %q is not a number", s)
	}
	frac = (frac + "000000")[:6]
	micros, err := strconv.ParseInt(frac, 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("timestamp %q is not a number", s)
	}
	return time.Unix(secs, micros*1000).UTC(), nil
}

// parseUserVariables flattens Mailgun's user-variables object to strings:
// strings stay as they are, other JSON values keep their JSON text.
func parseUserVariables(raw json.RawMessage) (map[string]string, error) {
	vars := map[string]string{}
	if len(raw) == 0 || string(raw) == "null" {
		return vars, nil
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, err
	}
	for k, v := range m {
		var s string
		if json.Unmarshal(v, &s) == nil {
			vars[k] = s
			continue
		}
		vars[k] = string(v)
	}
	return vars, nil
}

func firstNonEmpty(values ...string) string {
	for _, v := range values {
		if v != "" {
			return v
		}
	}
	return ""
}
