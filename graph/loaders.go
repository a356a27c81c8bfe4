package graph

import (
	"context"
	"time"

	"github.com/uptrace/bun"
	"github.com/vikstrous/dataloadgen"

	"github.com/refrain-dev/refrain/plugin/campaign"
)

// loaders batches the per-parent lookups of one request: a field that a
// list fans out (the counts of each campaign of a page) asks its loader,
// and the loader answers every parent of the page with one query.
type loaders struct {
	campaignCounts *dataloadgen.Loader[string, campaign.Counts]
	// audienceCounts counts each distinct audience of a page once.
	audienceCounts *dataloadgen.Loader[string, int]
}

func newLoaders(db bun.IDB, campaigns *campaign.Service) *loaders {
	// A batch waits up to 10ms for the fields of the page to ask.
	wait := dataloadgen.WithWait(10 * time.Millisecond)
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
