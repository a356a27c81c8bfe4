package plugin_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/refrain-dev/refrain/plugin"
	"github.com/refrain-dev/refrain/plugin/customer"
	"github.com/refrain-dev/refrain/plugin/hygiene"
	"github.com/refrain-dev/refrain/plugin/privacy"
	"github.com/refrain-dev/refrain/plugin/store/storetest"
)

type userErr struct {
	Field   []string `json:"field"`
	Message string   `json:"message"`
	Code    string   `json:"code"`
}

func TestHygieneLoyaltyAndDataRightsThroughGraphQL(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *storetest.DB) {
		ctx := context.Background()
		e := newEnv(t, db, func(c *plugin.Config) {
			c.SigningSecret = strings.Repeat("x", 32)
			c.DoubleOptIn = false
			c.ReferralURL = "https://shop.example/"
		})
		subscribe := func(vars map[string]any) (state *string, didYouMean *string, errs []userErr) {
			var out struct {
				Refrain struct {
					Subscribe struct {
						State      *string   `json:"state"`
						DidYouMean *string   `json:"didYouMean"`
						UserErrors []userErr `json:"userErrors"`
					} `json:"subscribe"`
				} `json:"refrain"`
			}
			e.do("", `mutation($input: SubscribeInput!) { refrain { subscribe(input: $input) { state didYouMean userErrors { field message code } } } }`,
				map[string]any{"input": vars}).decode(t, &out)
			s := out.Refrain.Subscribe
			return s.State, s.DidYouMean, s.UserErrors
		}

		// Disposable and invalid addresses are refused.
		st, _, errs := subscribe(map[string]any{"email": "promo@yopmail.com"})
		require.Nil(t, st)
		require.Len(t, errs, 1)
		require.Equal(t, []string{"input", "email"}, errs[0].Field)
		require.Contains(t, errs[0].Message, "disposable")
		_, _, errs = subscribe(map[string]any{"email": "marie..x@gmail.com"})
		require.Len(t, errs, 1)

		// A typo is suggested, and accepted once confirmed.
		st, dym, errs := subscribe(map[string]any{"email": "marie@gmial.com"})
		require.Nil(t, st)
		require.Len(t, errs, 1)
		require.NotNil(t, dym)
		require.Equal(t, "marie@gmail.com", *dym)
		st, _, errs = subscribe(map[string]any{"email": "marie@gmial.com", "confirmTypo": true})
		require.Empty(t, errs)
		require.Equal(t, "SUBSCRIBED", *st)

		// A role address is accepted and flagged.
		st, _, errs = subscribe(map[string]any{"email": "info@maboutique.fr"})
		require.Empty(t, errs)
		require.Equal(t, "SUBSCRIBED", *st)
		var hyg struct {
			Refrain struct {
				Customer struct {
					Hygiene struct {
						Status     *string `json:"status"`
						Suggestion *string `json:"suggestion"`
					} `json:"hygiene"`
				} `json:"customer"`
			} `json:"refrain"`
		}
		e.do(testBootstrapKey, `query($email: String) { refrain { customer(email: $email) { hygiene { status suggestion } } } }`,
			map[string]any{"email": "info@maboutique.fr"}).decode(t, &hyg)
		require.Equal(t, "ROLE", *hyg.Refrain.Customer.Hygiene.Status)

		// The report counts the base.
		var rep struct {
			Refrain struct {
				HygieneReport struct {
					Total    int `json:"total"`
					ByStatus []struct {
						Status    string `json:"status"`
						Count     int    `json:"count"`
						Customers []struct {
							Email string `json:"email"`
						} `json:"customers"`
					} `json:"byStatus"`
					ByDomain []struct {
						Domain string `json:"domain"`
						Count  int    `json:"count"`
					} `json:"byDomain"`
				} `json:"hygieneReport"`
			} `json:"refrain"`
		}
		e.do(testBootstrapKey, `{ refrain { hygieneReport { total byStatus { status count customers { email } } byDomain { domain count } } } }`, nil).decode(t, &rep)
		require.Equal(t, 2, rep.Refrain.HygieneReport.Total)
		counts := map[string]int{}
		for _, g := range rep.Refrain.HygieneReport.ByStatus {
			counts[g.Status] = g.Count
		}
		require.Equal(t, map[string]int{"OK": 1, "ROLE": 1, "TYPO_SUSPECTED": 0, "DISPOSABLE": 0, "SUPPRESSED": 0, "INVALID": 0}, counts)
		res := e.do("", `{ refrain { hygieneReport { total } } }`, nil)
		require.Equal(t, []string{"UNAUTHENTICATED"}, res.codes())

		// Referral: a store customer's code, used through subscribe by a new one.
		ext := "shop-1"
		anne := "anne@orange.fr"
		_, _, err := customer.Upsert(ctx, db, e.clock.Now(), customer.Profile{ExternalID: &ext, Email: &anne})
		require.NoError(t, err)
		tok := e.customerToken(ext, time.Hour, testJWTSecret)
		type referral struct {
			Code          string  `json:"code"`
			Link          *string `json:"link"`
			ReferredCount int     `json:"referredCount"`
			RewardsEarned int     `json:"rewardsEarned"`
		}
		var me struct {
			Refrain struct {
				Me struct {
					Referral referral `json:"referral"`
					Loyalty  struct {
						Points   int     `json:"points"`
						Tier     *string `json:"tier"`
						NextTier struct {
							Name    string `json:"name"`
							Missing int    `json:"missing"`
						} `json:"nextTier"`
						Ledger struct {
							Edges []struct {
								Node struct {
									Delta int    `json:"delta"`
									Kind  string `json:"kind"`
								} `json:"node"`
							} `json:"edges"`
						} `json:"ledger"`
					} `json:"loyalty"`
				} `json:"me"`
			} `json:"refrain"`
		}
		meQuery := `{ refrain { me { referral { code link referredCount rewardsEarned } loyalty { points tier nextTier { name missing } ledger(first: 5) { edges { node { delta kind } } } } } } }`
		e.do(tok, meQuery, nil).decode(t, &me)
		code := me.Refrain.Me.Referral.Code
		require.Len(t, code, 10)
		require.Equal(t, "https://shop.example/?ref="+code, *me.Refrain.Me.Referral.Link)
		require.Equal(t, "bronze", me.Refrain.Me.Loyalty.NextTier.Name)
		require.Equal(t, 10000, me.Refrain.Me.Loyalty.NextTier.Missing)

		var redeem struct {
			Refrain struct {
				RedeemReferral struct {
					Redeemed   bool      `json:"redeemed"`
					UserErrors []userErr `json:"userErrors"`
				} `json:"redeemReferral"`
			} `json:"refrain"`
		}
		e.do(tok, `mutation($code: String!) { refrain { redeemReferral(code: $code) { redeemed userErrors { field message code } } } }`,
			map[string]any{"code": code}).decode(t, &redeem)
		require.False(t, redeem.Refrain.RedeemReferral.Redeemed)
		require.Equal(t, "INVALID", redeem.Refrain.RedeemReferral.UserErrors[0].Code, "self-referral")

		_, _, errs = subscribe(map[string]any{"email": "paul@free.fr", "ref": code})
		require.Empty(t, errs)
		e.do(tok, meQuery, nil).decode(t, &me)
		require.Equal(t, 1, me.Refrain.Me.Referral.ReferredCount)
		require.Equal(t, code, me.Refrain.Me.Referral.Code, "the code is stable")

		// Points by hand.
		var adj struct {
			Refrain struct {
				AdjustPoints struct {
					Points     *int      `json:"points"`
					UserErrors []userErr `json:"userErrors"`
				} `json:"adjustPoints"`
			} `json:"refrain"`
		}
		e.do(testBootstrapKey, `mutation { refrain { adjustPoints(customerId: "shop-1", points: 25, note: "welcome gift") { points userErrors { code } } } }`, nil).decode(t, &adj)
		require.Equal(t, 25, *adj.Refrain.AdjustPoints.Points)
		e.do(testBootstrapKey, `mutation { refrain { adjustPoints(customerId: "shop-1", points: -26, note: "too much") { points userErrors { code } } } }`, nil).decode(t, &adj)
		require.Nil(t, adj.Refrain.AdjustPoints.Points)
		require.Equal(t, "INVALID", adj.Refrain.AdjustPoints.UserErrors[0].Code)
		e.do(tok, meQuery, nil).decode(t, &me)
		require.Equal(t, 25, me.Refrain.Me.Loyalty.Points)
		require.Len(t, me.Refrain.Me.Loyalty.Ledger.Edges, 1)
		require.Equal(t, "adjust", me.Refrain.Me.Loyalty.Ledger.Edges[0].Node.Kind)
		res = e.do(tok, `mutation { refrain { adjustPoints(customerId: "shop-1", points: 1000, note: "me") { points } } }`, nil)
		require.Equal(t, []string{"FORBIDDEN"}, res.codes())

		// Export, then erase.
		var exp struct {
			Refrain struct {
				ExportCustomer map[string]any `json:"exportCustomer"`
			} `json:"refrain"`
		}
		e.do(testBootstrapKey, `{ refrain { exportCustomer(id: "shop-1") } }`, nil).decode(t, &exp)
		require.Contains(t, exp.Refrain.ExportCustomer["customer"], "email")
		require.Len(t, exp.Refrain.ExportCustomer["loyalty_ledger"], 1)
		var del struct {
			Refrain struct {
				DeleteCustomer struct {
					Deleted    bool      `json:"deleted"`
					UserErrors []userErr `json:"userErrors"`
				} `json:"deleteCustomer"`
			} `json:"refrain"`
		}
		e.do(testBootstrapKey, `mutation { refrain { deleteCustomer(id: "shop-1") { deleted userErrors { code } } } }`, nil).decode(t, &del)
		require.True(t, del.Refrain.DeleteCustomer.Deleted)
		_, err = customer.GetByEmail(ctx, db, anne)
		require.ErrorIs(t, err, customer.ErrNotFound)
		e.do(testBootstrapKey, `mutation { refrain { deleteCustomer(id: "nobody") { deleted userErrors { code } } } }`, nil).decode(t, &del)
		require.False(t, del.Refrain.DeleteCustomer.Deleted)
		require.Equal(t, "NOT_FOUND", del.Refrain.DeleteCustomer.UserErrors[0].Code)
	})
}

func TestReimportOfAnErasedAddressIsSuppressed(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *storetest.DB) {
		ctx := context.Background()
		cfg := plugin.DefaultConfig()
		cfg.DatabaseURL = db.URL
		csv := "email,first_name,last_name\nzoe.quillard@orange.fr,Zoé,Quillard\ninfo@maboutique.fr,,\nluc@hotmial.fr,Luc,\n"
		var out strings.Builder
		require.NoError(t, plugin.ImportCustomers(ctx, cfg, strings.NewReader(csv), plugin.ImportOptions{Name: "a.csv", Stdout: &out}))
		zoe, err := customer.GetByEmail(ctx, db, "zoe.quillard@orange.fr")
		require.NoError(t, err)
		status := func(email string) string {
			var s *string
			require.NoError(t, db.NewSelect().Table("customers").Column("hygiene_status").Where("email_normalized = ?", email).Scan(ctx, &s))
			return *s
		}
		require.Equal(t, "OK", status("zoe.quillard@orange.fr"))
		require.Equal(t, "ROLE", status("info@maboutique.fr"))
		require.Equal(t, "TYPO_SUSPECTED", status("luc@hotmial.fr"), "imports flag typos, never correct them")

		require.NoError(t, privacy.Erase(ctx, db, time.Now().UTC(), zoe.PK, "admin"))
		out.Reset()
		require.NoError(t, plugin.ImportCustomers(ctx, cfg, strings.NewReader(csv), plugin.ImportOptions{Name: "a.csv", Stdout: &out}))
		require.Contains(t, out.String(), "1 rows held an erased address")
		_, err = customer.GetByEmail(ctx, db, "zoe.quillard@orange.fr")
		require.ErrorIs(t, err, customer.ErrNotFound, "the re-import did not bring the customer back")
		n, err := db.NewSelect().Table("customers").Where("first_name = ? OR last_name = ?", "Zoé", "Quillard").Count(ctx)
		require.NoError(t, err)
		require.Zero(t, n)

		rep, err := plugin.HygieneReport(ctx, cfg, hygiene.ReportOpts{})
		require.NoError(t, err)
		var typos *hygiene.Group
		for i := range rep.ByStatus {
			if rep.ByStatus[i].Key == "TYPO_SUSPECTED" {
				typos = &rep.ByStatus[i]
			}
		}
		require.NotNil(t, typos)
		require.Equal(t, 1, typos.Count)
		require.Equal(t, "luc@hotmial.fr", typos.Customers[0].Email)
	})
}
