package graph

import (
	"strconv"
	"strings"

	"github.com/refrain-dev/refrain/graph/model"
	"github.com/refrain-dev/refrain/plugin/commerce"
)

// itemsOf converts stored order or cart lines, priced in currency.
func itemsOf(items []commerce.Item, currency *string) []*model.CommerceLineItem {
	out := make([]*model.CommerceLineItem, 0, len(items))
	for _, it := range items {
		out = append(out, &model.CommerceLineItem{ProductID: optional(it.ProductID), VariantID: optional(it.VariantID),
			Sku: optional(it.SKU), Title: optional(it.Title), Quantity: int(it.Quantity),
			UnitPrice: &model.Money{Amount: int(it.PriceMinor), Currency: currency}})
	}
	return out
}

func optional(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// inboundCursor decodes the cursor of an inbound event listing: the id of
// the last event of the previous page.
func inboundCursor(after *string) (int64, error) {
	if after == nil || *after == "" {
		return 0, nil
	}
	id, err := strconv.ParseInt(strings.TrimSpace(*after), 10, 64)
	if err != nil || id < 1 {
		return 0, errBadInput("invalid cursor")
	}
	return id, nil
}
