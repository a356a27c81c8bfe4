package graph

import (
	"context"
	"time"

	"github.com/uptrace/bun"
	"github.com/vikstrous/dataloadgen"

	"github.com/refrain-dev/refrain/plugin/campaign"
	"github.com/refrain-dev/refrain/plugin/commerce"
	"github.com/refrain-dev/refrain/plugin/hygiene"
	"github.com/refrain-dev/refrain/plugin/segment"
	"github.com/refrain-dev/refrain/scenarios/engine"
)

// loaders batches the per-parent lookups of one request: a field that a
// list fans out (the counts of each campaign of a page) asks its loader,
// and the loader answers every parent of the page with one query.
type loaders struct {
	campaignCounts *dataloadgen.Loader[string, campaign.Counts]
	// audienceCounts counts each distinct audience of a page once.
	audienceCounts *dataloadgen.Loader[string, int]

	// The nested fields of a page of customers, by customer primary key.
	segments    *dataloadgen.Loader[int64, []*segment.Segment]
	enrollments *dataloadgen.Loader[int64, []*engine.Enrollment]
	hygiene     *dataloadgen.Loader[int64, hygiene.CustomerStatus]
	carts       *dataloadgen.Loader[cartKey, []*commerce.Cart]
}

// cartKey asks for a customer's carts of one status (empty: all).
type cartKey struct {
	pk     int64
	status commerce.CartStatus
}

// byCustomer makes the batch function of a loader keyed by customer from
// a domain function that answers many customers at once; a customer it
// leaves out gets the zero value (no rows).
func byCustomer[V any](db bun.IDB, many func(context.Context, bun.IDB, []int64) (map[int64]V, error)) func(context.Context, []int64) (map[int64]V, error) {
	return func(ctx context.Context, pks []int64) (map[int64]V, error) {
		m, err := many(ctx, db, pks)
		if err != nil {
			return nil, err
		}
		for _, pk := range pks {
			if _, ok := m[pk]; !ok {
				var zero V
				m[pk] = zero
			}
		}
		return m, nil
	}
}

func newLoaders(db bun.IDB, campaigns *campaign.Service) *loaders {
	// A batch waits up to 50ms for the fields of the page to ask: on a
	// loaded machine 10ms let a page of 50 split into several batches.
	wait := dataloadgen.WithWait(50 * time.Millisecond)
	return &loaders{
		audienceCounts: dataloadgen.NewLoader(func(ctx context.Context, specs []string) ([]int, []error) {
			ns, errs := make([]int, len(specs)), make([]error, len(specs))
			for i, spec := range specs {
				ns[i], errs[i] = campaigns.AudienceCount(ctx, db, spec)
			}
			return ns, errs
		}, wait),
		campaignCounts: dataloadgen.NewMappedLoader(func(ctx context.Context, ids []string) (map[string]campaign.Counts, error) {
			return campaign.CountsOfMany(ctx, db, ids)
		}, wait),
		segments:    dataloadgen.NewMappedLoader(byCustomer(db, segment.OfMany), wait),
		enrollments: dataloadgen.NewMappedLoader(byCustomer(db, engine.CustomerEnrollmentsOf), wait),
		hygiene:     dataloadgen.NewMappedLoader(byCustomer(db, hygiene.StatusOfMany), wait),
		carts: dataloadgen.NewMappedLoader(func(ctx context.Context, keys []cartKey) (map[cartKey][]*commerce.Cart, error) {
			byStatus := map[commerce.CartStatus][]int64{}
			for _, k := range keys {
				byStatus[k.status] = append(byStatus[k.status], k.pk)
			}
			out := make(map[cartKey][]*commerce.Cart, len(keys))
			for _, k := range keys {
				out[k] = []*commerce.Cart{}
			}
			for st, pks := range byStatus {
				m, err := commerce.ListCartsOf(ctx, db, pks, st)
				if err != nil {
					return nil, err
				}
				for pk, cs := range m {
					out[cartKey{pk, st}] = cs
				}
			}
			return out, nil
		}, wait),
	}
}

type loadersKey struct{}

// withLoaders gives a request its own loaders (NewServer calls it for
// every operation), so nothing is cached across requests.
func withLoaders(ctx context.Context, r *Resolver) context.Context {
	return context.WithValue(ctx, loadersKey{}, newLoaders(r.DB, r.Campaigns))
}

// loadersOf returns the loaders of the request, or fresh ones outside a
// request.
func (r *Resolver) loadersOf(ctx context.Context) *loaders {
	if l, ok := ctx.Value(loadersKey{}).(*loaders); ok {
		return l
	}
	return newLoaders(r.DB, r.Campaigns)
}
