package standard

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/refrain-dev/refrain/plugin/commerce/event"
	"github.com/refrain-dev/refrain/plugin/storefront"
)

// testSecret is the example secret of the Standard Webhooks specification.
const testSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

func fixtures() string {
	return filepath.Join("..", "..", "..", "testdata", "webhooks")
}

// sign signs like a Standard Webhooks sender, without the package's helpers.
func sign(t testing.TB, secret, id string, ts time.Time, body []byte) http.Header {
	t.Helper()
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	require.NoError(t, err)
	stamp := strconv.FormatInt(ts.Unix(), 10)
	m := hmac.New(sha256.New, key)
	m.Write([]byte(id + "." + stamp + "."))
	m.Write(body)
	h := http.Header{}
	h.Set("webhook-id", id)
	h.Set("webhook-timestamp", stamp)
	h.Set("webhook-signature", "v1,"+base64.StdEncoding.EncodeToString(m.Sum(nil)))
	return h
}

// testNow is the injected clock of every test: ten seconds after the samples' timestamp.
func testNow() time.Time { return time.Date(2024, 7, 8, 0, 0, 10, 0, time.UTC) }

func TestEveryStandardFixtureIsCovered(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(fixtures(), "standardwebhooks_*.json"))
	require.NoError(t, err)
	require.Equal(t, []string{"standardwebhooks_contact_created.json"}, baseNames(files), "a new fixture needs a test")
}

func baseNames(files []string) []string {
	var out []string
	for _, f := range files {
		out = append(out, filepath.Base(f))
	}
	return out
}

func TestContactCreatedFixture(t *testing.T) {
	now := testNow()
	body, err := os.ReadFile(filepath.Join(fixtures(), "standardwebhooks_contact_created.json"))
	require.NoError(t, err)
	h := sign(t, testSecret, "msg_p5jXN8AQM9LWM0D4loKWxJek", now, body)
	require.NoError(t, Verify(h, body, testSecret, now))

	d, err := Delivery(h, body)
	require.NoError(t, err)
	require.Equal(t, storefront.Delivery{
		Source: event.SourceStandard, Topic: "contact.created", DedupeKey: "msg_p5jXN8AQM9LWM0D4loKWxJek",
		Headers: map[string]string{"Webhook-Id": "msg_p5jXN8AQM9LWM0D4loKWxJek", "Webhook-Timestamp": strconv.FormatInt(now.Unix(), 10), "Webhook-Signature": h.Get("webhook-signature")},
		Body:    body,
	}, d)

	events, err := Parse(d.Topic, d.Body)
	require.ErrorIs(t, err, storefront.ErrUnknownTopic)
	require.Nil(t, events)
}

func TestVerify(t *testing.T) {
	now := testNow()
	body := []byte(`{"type":"customer.deleted","timestamp":"2024-07-08T00:00:00Z","data":{"id":"cus_1"}}`)
	h := sign(t, testSecret, "msg_1", now, body)
	require.NoError(t, Verify(h, body, testSecret, now))

	require.ErrorIs(t, Verify(h, append([]byte{}, strings.Replace(string(body), "cus_1", "cus_2", 1)...), testSecret, now), storefront.ErrBadSignature, "tampered")
	require.ErrorIs(t, Verify(h, body, "whsec_"+base64.StdEncoding.EncodeToString([]byte("another key")), now), storefront.ErrBadSignature, "wrong secret")
	require.ErrorIs(t, Verify(h, body, "", now), storefront.ErrNoKey)
	require.Error(t, Verify(h, body, "whsec_not*base64", now))

	require.ErrorIs(t, Verify(h, body, testSecret, now.Add(5*time.Minute+time.Second)), storefront.ErrBadSignature, "stale")
	require.ErrorIs(t, Verify(h, body, testSecret, now.Add(-5*time.Minute-time.Second)), storefront.ErrBadSignature, "from the future")
	require.NoError(t, Verify(h, body, testSecret, now.Add(5*time.Minute)))

	// Several signatures: one from a rotated-out key, a future version, then ours.
	good := h.Get("webhook-signature")
	other := sign(t, "whsec_"+base64.StdEncoding.EncodeToString([]byte("old key")), "msg_1", now, body).Get("webhook-signature")
	h.Set("webhook-signature", other+" v1a,AAAA "+good)
	require.NoError(t, Verify(h, body, testSecret, now))
	h.Set("webhook-signature", other+" v2,"+strings.TrimPrefix(good, "v1,"))
	require.ErrorIs(t, Verify(h, body, testSecret, now), storefront.ErrBadSignature, "only v1 counts")

	// The id is signed: replaying the body under another id fails.
	h = sign(t, testSecret, "msg_1", now, body)
	h.Set("webhook-id", "msg_2")
	require.ErrorIs(t, Verify(h, body, testSecret, now), storefront.ErrBadSignature)
	h.Del("webhook-id")
	require.ErrorIs(t, Verify(h, body, testSecret, now), storefront.ErrBadSignature)
}

func readSample(t testing.TB, k event.Kind) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", string(k)+".json"))
	require.NoError(t, err)
	return b
}

func TestSchemasAndSamples(t *testing.T) {
	now := testNow()
	require.Len(t, Types(), 13)
	for _, k := range Types() {
		t.Run(string(k), func(t *testing.T) {
			raw, err := Schema(string(k))
			require.NoError(t, err)
			var schema struct {
				Schema     string `json:"$schema"`
				Title      string `json:"title"`
				Required   []string
				Properties struct {
					Type struct {
						Const string `json:"const"`
					} `json:"type"`
					Data struct {
						Required []string `json:"required"`
					} `json:"data"`
				} `json:"properties"`
			}
			require.NoError(t, json.Unmarshal(raw, &schema))
			require.Equal(t, "https://json-schema.org/draft/2020-12/schema", schema.Schema)
			require.Equal(t, string(k), schema.Properties.Type.Const)
			require.Equal(t, []string{"type", "timestamp", "data"}, schema.Required)
			require.Equal(t, required(k), schema.Properties.Data.Required, "Go and the schema require the same fields")

			body := readSample(t, k)
			h := sign(t, testSecret, "msg_"+string(k), now, body)
			require.NoError(t, Verify(h, body, testSecret, now))
			d, err := Delivery(h, body)
			require.NoError(t, err)
			require.Equal(t, string(k), d.Topic)
			events, err := Parse(d.Topic, d.Body)
			require.NoError(t, err)
			require.Len(t, events, 1)
			require.Equal(t, k, events[0].Kind)
			require.Equal(t, event.SourceStandard, events[0].Source)
			require.False(t, events[0].OccurredAt.IsZero())

			// Each required field is enforced.
			for _, f := range required(k) {
				var doc map[string]any
				require.NoError(t, json.Unmarshal(body, &doc))
				delete(doc["data"].(map[string]any), f)
				broken, err := json.Marshal(doc)
				require.NoError(t, err)
				_, err = Parse(string(k), broken)
				var pe *storefront.ParseError
				require.ErrorAs(t, err, &pe, "without %s", f)
				require.Equal(t, "data."+f, pe.Field)
			}
		})
	}
	_, err := Schema("contact.created")
	require.ErrorIs(t, err, storefront.ErrUnknownTopic)
}

func TestSampleValues(t *testing.T) {
	parse := func(k event.Kind) event.Event {
		events, err := Parse(string(k), readSample(t, k))
		require.NoError(t, err)
		return events[0]
	}
	e := parse(event.KindOrderCreated)
	require.Equal(t, "order_01HV9A", e.Order.ID)
	require.Equal(t, event.Money{Minor: 5390, Currency: "EUR"}, e.Order.Total)
	require.Equal(t, []event.LineItem{{ProductID: "prod_01HV8Z", VariantID: "variant_01HV8Z", SKU: "TEE-M-NAVY", Title: "Organic tee", Quantity: 2, UnitPrice: event.Money{Minor: 2450, Currency: "EUR"}}}, e.Order.Items)
	require.Equal(t, "ana@work.example.pt", e.Order.Email)
	require.Equal(t, "cus_01HV8Z3K", e.Customer.ID)
	require.Equal(t, time.Date(2024, 5, 3, 12, 0, 1, 0, time.UTC), e.OccurredAt)

	e = parse(event.KindOrderRefunded)
	require.Equal(t, event.Money{Minor: 2450, Currency: "EUR"}, e.Order.Refunded)

	e = parse(event.KindOrderCancelled)
	require.Equal(t, time.Date(2024, 7, 8, 0, 0, 0, 0, time.UTC), e.OccurredAt, "no updatedAt: the envelope timestamp")

	e = parse(event.KindCartUpdated)
	require.Equal(t, event.Money{Minor: 4900, Currency: "EUR"}, e.Cart.Total, "summed from the lines")
	require.Equal(t, "https://shop.example.pt/cart/recover/cart_01HV8Y?sig=abc", e.Cart.RecoveryURL)
	require.Equal(t, event.CartOpen, e.Cart.Status)

	e = parse(event.KindCartAbandoned)
	require.Equal(t, event.CartAbandoned, e.Cart.Status)
	e = parse(event.KindCartConverted)
	require.Equal(t, "order_01HV9A", e.Cart.OrderID)
	require.Equal(t, event.CartConverted, e.Cart.Status)

	e = parse(event.KindCustomerCreated)
	require.Equal(t, "pt-PT", e.Customer.Locale)
	require.Equal(t, event.ConsentSubscribed, e.Customer.EmailConsent.State)

	e = parse(event.KindNewsletterUnsubscribed)
	require.Equal(t, "joao@example.pt", e.Customer.Email)
	require.Equal(t, event.ConsentUnsubscribed, e.Customer.EmailConsent.State)
	require.Equal(t, "cus_01HVAA", e.Ref.ID)
}

func TestParseErrors(t *testing.T) {
	var pe *storefront.ParseError
	_, err := Parse("order.created", []byte(`{"type":"order.created","timestamp":"2024-07-08T00:00:00Z","data":{"id":"o","total":{"amount":12.5,"currency":"EUR"}}}`))
	require.ErrorAs(t, err, &pe, "amounts are strings")
	_, err = Parse("order.created", []byte(`{"type":"order.created","timestamp":"2024-07-08T00:00:00Z","data":{"id":"o","total":{"amount":"12.5"}}}`))
	require.ErrorAs(t, err, &pe)
	require.Equal(t, "data.total.currency", pe.Field)
	_, err = Parse("order.paid", []byte(`{"type":"order.created","timestamp":"2024-07-08T00:00:00Z","data":{"id":"o"}}`))
	require.ErrorAs(t, err, &pe)
	require.Equal(t, "type", pe.Field)
	_, err = Parse("order.paid", []byte(`{"type":"order.paid","data":{"id":"o"}}`))
	require.ErrorAs(t, err, &pe)
	require.Equal(t, "timestamp", pe.Field)
	_, err = Parse("order.paid", []byte(`{"type":"order.paid","timestamp":"2024-07-08T00:00:00Z","data":[]}`))
	require.ErrorAs(t, err, &pe)
	require.Equal(t, "data", pe.Field)
}

func FuzzParse(f *testing.F) {
	for _, k := range Types() {
		f.Add(string(k), readSample(f, k))
	}
	body, err := os.ReadFile(filepath.Join(fixtures(), "standardwebhooks_contact_created.json"))
	require.NoError(f, err)
	f.Add("contact.created", body)
	f.Fuzz(func(t *testing.T, topic string, body []byte) {
		events, err := Parse(topic, body)
		if err != nil {
			require.Nil(t, events)
			return
		}
		require.Len(t, events, 1)
		require.Equal(t, event.Kind(topic), events[0].Kind)
		_, _ = Delivery(http.Header{}, body)
	})
}
