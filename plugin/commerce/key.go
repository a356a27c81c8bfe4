package commerce

// EventKey is the idempotency key of the customer event of type typ that
// the order externalID of source records (order.created, order.paid, ...):
// the key the ingest writes, so others can find that event again.
func EventKey(source, typ, externalID string) string {
	return source + ":" + typ + ":" + externalID
}
