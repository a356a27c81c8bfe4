package ingest_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/refrain-dev/refrain/plugin/commerce/event"
	"github.com/refrain-dev/refrain/plugin/storefront/ingest"
)

// withField loads a fixture and sets one top-level field (after walking
// path) to v, so the attribute shapes are tested on the real payloads.
func withField(t *testing.T, fixture string, v any, path ...string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "..", "testdata", "webhooks", fixture))
	require.NoError(t, err)
	var doc map[string]any
	require.NoError(t, json.Unmarshal(b, &doc))
	m := doc
	for _, p := range path[:len(path)-1] {
		m = m[p].(map[string]any)
	}
	m[path[len(path)-1]] = v
	out, err := json.Marshal(doc)
	require.NoError(t, err)
	return out
}

func TestOrderAttributes(t *testing.T) {
	cases := []struct {
		name  string
		src   event.Source
		topic string
		body  []byte
		want  map[string]string
	}{
		{"shopify note_attributes", event.SourceShopify, "orders/create",
			withField(t, "shopify_orders_create.json", []map[string]any{{"name": "ref", "value": "K7P2QX9MZA"}, {"name": "gift", "value": true}}, "note_attributes"),
			map[string]string{"ref": "K7P2QX9MZA", "gift": "true"}},
		{"woocommerce meta_data without private keys", event.SourceWooCommerce, "order.created",
			withField(t, "woocommerce_order_created.json", []map[string]any{{"id": 1, "key": "_download_permissions_granted", "value": "yes"},
				{"id": 2, "key": "referral_code", "value": "K7P2QX9MZA"}, {"id": 3, "key": "structured", "value": map[string]any{"a": 1}}}, "meta_data"),
			map[string]string{"referral_code": "K7P2QX9MZA"}},
		{"woocommerce fixture has only private meta", event.SourceWooCommerce, "order.created",
			withField(t, "woocommerce_order_created.json", "processing", "status"), nil},
		{"saleor metadata", event.SourceSaleor, "ORDER_CREATED",
			withField(t, "saleor_order_created_event_root.json", []map[string]any{{"key": "ref", "value": "K7P2QX9MZA"}}, "order", "metadata"),
			map[string]string{"ref": "K7P2QX9MZA"}},
		{"standard metadata object", event.SourceStandard, "order.created",
			[]byte(`{"type":"order.created","timestamp":"2026-05-01T10:00:00Z","data":{"id":"ord_1","email":"a@exemple.fr","total":{"amount":"12.00","currency":"EUR"},"metadata":{"ref":"K7P2QX9MZA","n":3,"skip":null,"nested":{"x":1}}}}`),
			map[string]string{"ref": "K7P2QX9MZA", "n": "3"}},
		{"malformed attributes never refuse the order", event.SourceShopify, "orders/create",
			withField(t, "shopify_orders_create.json", "not a list", "note_attributes"), nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			evs, err := ingest.Parse(c.src, c.topic, c.body)
			require.NoError(t, err)
			require.NotEmpty(t, evs)
			require.NotNil(t, evs[0].Order)
			if c.want == nil {
				require.Empty(t, evs[0].Order.Attributes)
				return
			}
			require.Equal(t, c.want, evs[0].Order.Attributes)
		})
	}
}
