package graph

import (
	"context"

	"github.com/refrain-dev/refrain/graph/model"
	"github.com/refrain-dev/refrain/plugin/hygiene"
	"github.com/refrain-dev/refrain/plugin/loyalty"
)

func hygieneCustomersOf(refs []hygiene.CustomerRef) []*model.HygieneCustomer {
	out := make([]*model.HygieneCustomer, 0, len(refs))
	for _, c := range refs {
		out = append(out, &model.HygieneCustomer{ID: c.ID, Email: c.Email})
	}
	return out
}

func hygieneReportOf(rep *hygiene.Report) *model.HygieneReport {
	out := &model.HygieneReport{Total: rep.Total, CheckedNow: rep.Unchecked,
		ByStatus: []*model.HygieneStatusCount{}, ByDomain: []*model.HygieneDomainCount{}}
	for _, g := range rep.ByStatus {
		out.ByStatus = append(out.ByStatus, &model.HygieneStatusCount{Status: model.HygieneStatus(g.Key),
			Count: g.Count, Customers: hygieneCustomersOf(g.Customers)})
	}
	for _, d := range rep.ByDomain {
		dc := &model.HygieneDomainCount{Domain: d.Key, Count: d.Count, Statuses: []*model.HygieneStatusCount{},
			Customers: hygieneCustomersOf(d.Customers)}
		for _, st := range hygiene.Statuses {
			if n := d.ByStatus[st]; n > 0 {
				dc.Statuses = append(dc.Statuses, &model.HygieneStatusCount{Status: model.HygieneStatus(st), Count: n,
					Customers: []*model.HygieneCustomer{}})
			}
		}
		out.ByDomain = append(out.ByDomain, dc)
	}
	return out
}

// subscribeHygiene runs after a subscription is accepted: the address gets
// its hygiene status (role addresses are accepted but flagged) and a
// referral code given as ref links the subscriber to the referrer. A ref
// that is not a referral code is only a reference, kept with the proof.
func (r *Resolver) subscribeHygiene(ctx context.Context, customerPK int64, ref string) error {
	if r.Hygiene != nil {
		if err := hygiene.RefreshCustomers(ctx, r.DB, r.Hygiene, customerPK); err != nil {
			return err
		}
		if v := hygiene.SubscribeVerdictFrom(ctx); v != nil && v.ConfirmTypo {
			if err := hygiene.ConfirmTypo(ctx, r.DB, customerPK); err != nil {
				return err
			}
		}
	}
	if ref != "" && r.LoyaltyService != nil {
		if _, err := r.LoyaltyService.Redeem(ctx, r.DB, r.Clock.Now(), customerPK, ref, loyalty.ChannelSubscribe); err != nil {
			r.Logger.DebugContext(ctx, "subscribe ref is not a usable referral code", "err", err)
		}
	}
	return nil
}
