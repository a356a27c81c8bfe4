package event

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestKindsAndSources(t *testing.T) {
	require.Len(t, Kinds(), 16)
	require.True(t, KindCustomerRedacted.Valid())
	require.False(t, Kind("order.updated").Valid())
	require.Len(t, Sources(), 5)
	require.True(t, SourceStandard.Valid())
	require.False(t, Source("mailgun").Valid())
}

func TestEventJSON(t *testing.T) {
	e := Event{Kind: KindOrderPaid, Source: SourceShopify, Topic: "orders/paid", Order: &Order{ID: "gid://shopify/Order/1", Total: Money{Minor: 100, Currency: "USD"}}}
	b, err := json.Marshal(e)
	require.NoError(t, err)
	require.JSONEq(t, `{"kind":"order.paid","source":"shopify","topic":"orders/paid","order":{"id":"gid://shopify/Order/1","total":{"minor":100,"currency":"USD"}}}`, string(b))
}
