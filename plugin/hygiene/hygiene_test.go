package hygiene_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/refrain-dev/refrain/plugin/customer"
	"github.com/refrain-dev/refrain/plugin/hygiene"
	"github.com/refrain-dev/refrain/plugin/mail/outbox"
	"github.com/refrain-dev/refrain/plugin/store/storetest"
)

func newChecker(t *testing.T) *hygiene.Checker {
	t.Helper()
	c, err := hygiene.NewChecker(hygiene.Options{})
	require.NoError(t, err)
	return c
}

func TestCheck(t *testing.T) {
	c := newChecker(t)
	require.Greater(t, c.DisposableCount(), 100000, "the embedded list is the maintained one")
	cases := []struct {
		addr       string
		status     hygiene.Status
		suggestion string
		norm       string
	}{
		// Syntax, internationalised domains included.
		{"marie.dupont@gmail.com", hygiene.StatusOK, "", "marie.dupont@gmail.com"},
		{"  Marie.Dupont@GMAIL.com ", hygiene.StatusOK, "", "marie.dupont@gmail.com"},
		{"jean+promo@orange.fr", hygiene.StatusOK, "", "jean+promo@orange.fr"},
		{"françois@exemple.fr", hygiene.StatusOK, "", "françois@exemple.fr"},
		{"jose@correo.españa.es", hygiene.StatusOK, "", "jose@correo.xn--espaa-rta.es"},
		{"kunde@bücher.de", hygiene.StatusOK, "", "kunde@xn--bcher-kva.de"},
		{"user@пример.рф", hygiene.StatusOK, "", "user@xn--e1afmkfd.xn--p1ai"},
		{"marie.dupont", hygiene.StatusInvalid, "", ""},
		{"marie@", hygiene.StatusInvalid, "", ""},
		{"@gmail.com", hygiene.StatusInvalid, "", ""},
		{"marie dupont@gmail.com", hygiene.StatusInvalid, "", ""},
		{"marie..dupont@gmail.com", hygiene.StatusInvalid, "", ""},
		{".marie@gmail.com", hygiene.StatusInvalid, "", ""},
		{"marie@gmail", hygiene.StatusInvalid, "", ""},
		{"marie@gmail.c", hygiene.StatusInvalid, "", ""},
		{"marie@gmail.c0m", hygiene.StatusInvalid, "", ""},
		{"marie@-gmail.com", hygiene.StatusInvalid, "", ""},
		{"marie@gmail..com", hygiene.StatusInvalid, "", ""},
		{"", hygiene.StatusInvalid, "", ""},
		// Disposable domains, subdomains of them too.
		{"test123@yopmail.com", hygiene.StatusDisposable, "", "test123@yopmail.com"},
		{"promo@mailinator.com", hygiene.StatusDisposable, "", "promo@mailinator.com"},
		{"x@guerrillamail.com", hygiene.StatusDisposable, "", "x@guerrillamail.com"},
		{"x@10minutemail.com", hygiene.StatusDisposable, "", "x@10minutemail.com"},
		{"x@sub.yopmail.com", hygiene.StatusDisposable, "", "x@sub.yopmail.com"},
		// Typos of common domains: suggested.
		{"marie@gmial.com", hygiene.StatusTypoSuspected, "marie@gmail.com", "marie@gmial.com"},
		{"marie@gamil.com", hygiene.StatusTypoSuspected, "marie@gmail.com", "marie@gamil.com"},
		{"marie@gmail.con", hygiene.StatusTypoSuspected, "marie@gmail.com", "marie@gmail.con"},
		{"marie@gmail.co", hygiene.StatusTypoSuspected, "marie@gmail.com", "marie@gmail.co"},
		{"luc@hotmial.fr", hygiene.StatusTypoSuspected, "luc@hotmail.fr", "luc@hotmial.fr"},
		{"luc@hotmail.frr", hygiene.StatusTypoSuspected, "luc@hotmail.fr", "luc@hotmail.frr"},
		{"ana@yahooo.com", hygiene.StatusTypoSuspected, "ana@yahoo.com", "ana@yahooo.com"},
		{"ana@outlok.com", hygiene.StatusTypoSuspected, "ana@outlook.com", "ana@outlok.com"},
		{"paul@wanado.fr", hygiene.StatusTypoSuspected, "paul@wanadoo.fr", "paul@wanado.fr"},
		{"paul@laposte.nett", hygiene.StatusTypoSuspected, "paul@laposte.net", "paul@laposte.nett"},
		{"tom@htomial.com", hygiene.StatusTypoSuspected, "tom@hotmail.com", "tom@htomial.com"},
		{"tom@hotmal.con", hygiene.StatusOK, "", "tom@hotmal.con"},
		{"tom@hotmal.co.uk", hygiene.StatusTypoSuspected, "tom@hotmail.co.uk", "tom@hotmal.co.uk"},
		// Real domains close to nothing in the table, and short ones, are left alone.
		{"marie@hotmail.de", hygiene.StatusOK, "", "marie@hotmail.de"},
		{"contact.client@maboutique.fr", hygiene.StatusOK, "", "contact.client@maboutique.fr"},
		{"ana@gmx.de", hygiene.StatusOK, "", "ana@gmx.de"},
		{"ana@gmz.de", hygiene.StatusOK, "", "ana@gmz.de"},
		// Role addresses.
		{"info@maboutique.fr", hygiene.StatusRole, "", "info@maboutique.fr"},
		{"admin@example.com", hygiene.StatusRole, "", "admin@example.com"},
		{"noreply@boutique.com", hygiene.StatusRole, "", "noreply@boutique.com"},
		{"no-reply@boutique.com", hygiene.StatusRole, "", "no-reply@boutique.com"},
		{"Contact+web@boutique.com", hygiene.StatusRole, "", "contact+web@boutique.com"},
		{"information@boutique.com", hygiene.StatusOK, "", "information@boutique.com"},
		// A disposable domain wins over a role mailbox.
		{"admin@yopmail.com", hygiene.StatusDisposable, "", "admin@yopmail.com"},
	}
	for _, tc := range cases {
		t.Run(tc.addr, func(t *testing.T) {
			r := c.Check(tc.addr)
			require.Equal(t, tc.status, r.Status, "reason %q", r.Reason)
			require.Equal(t, tc.suggestion, r.Suggestion)
			require.Equal(t, tc.norm, r.Normalized)
			if r.Status != hygiene.StatusOK {
				require.NotEmpty(t, r.Reason)
			}
		})
	}
}

func TestDisposableFileReplacesTheList(t *testing.T) {
	path := filepath.Join(t.TempDir(), "domains.txt")
	require.NoError(t, os.WriteFile(path, []byte("# our own list\nthrowaway.example\n\n"), 0o600))
	c, err := hygiene.NewChecker(hygiene.Options{DisposableFile: path})
	require.NoError(t, err)
	require.Equal(t, 1, c.DisposableCount())
	require.Equal(t, hygiene.StatusDisposable, c.Check("a@throwaway.example").Status)
	require.Equal(t, hygiene.StatusOK, c.Check("a@yopmail.com").Status, "the file replaces the embedded list")
	_, err = hygiene.NewChecker(hygiene.Options{DisposableFile: filepath.Join(t.TempDir(), "missing.txt")})
	require.Error(t, err)
}

func TestSuppressedAndStored(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *storetest.DB) {
		ctx := context.Background()
		now := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
		c := newChecker(t)
		_, err := outbox.Suppress(ctx, db, now, "Bounced@Gmail.com", outbox.ReasonHardBounce, "webhook", "")
		require.NoError(t, err)
		_, err = outbox.Suppress(ctx, db, now, "complains@orange.fr", outbox.ReasonComplaint, "webhook", "")
		require.NoError(t, err)
		_, err = outbox.Suppress(ctx, db, now, "left@orange.fr", outbox.ReasonUnsubscribe, "link", "")
		require.NoError(t, err)

		for addr, want := range map[string]hygiene.Status{
			"bounced@gmail.com":   hygiene.StatusSuppressed,
			"complains@orange.fr": hygiene.StatusSuppressed,
			"left@orange.fr":      hygiene.StatusOK, // unsubscribed, not bad
			"fresh@orange.fr":     hygiene.StatusOK,
		} {
			r, err := hygiene.Evaluate(ctx, db, c, addr)
			require.NoError(t, err)
			require.Equal(t, want, r.Status, addr)
		}

		emails := []string{"bounced@gmail.com", "marie@gmial.com", "info@maboutique.fr", "x@yopmail.com", "ok@orange.fr"}
		pks := map[string]int64{}
		for _, e := range emails {
			e := e
			cu, _, err := customer.Upsert(ctx, db, now, customer.Profile{Email: &e})
			require.NoError(t, err)
			pks[e] = cu.PK
		}
		require.NoError(t, hygiene.RefreshEmails(ctx, db, c, emails[:3]))
		type row struct {
			Status     *string `bun:"hygiene_status"`
			Suggestion *string `bun:"hygiene_suggestion"`
		}
		get := func(e string) row {
			var r row
			require.NoError(t, db.NewSelect().Table("customers").Column("hygiene_status", "hygiene_suggestion").
				Where("id = ?", pks[e]).Scan(ctx, &r))
			return r
		}
		require.Equal(t, "SUPPRESSED", *get("bounced@gmail.com").Status)
		require.Equal(t, "TYPO_SUSPECTED", *get("marie@gmial.com").Status)
		require.Equal(t, "marie@gmail.com", *get("marie@gmial.com").Suggestion)
		require.Equal(t, "ROLE", *get("info@maboutique.fr").Status)
		require.Nil(t, get("x@yopmail.com").Status, "not refreshed yet")

		holds, err := hygiene.MarketingHolds(ctx, db, c, nil, []int64{pks["x@yopmail.com"], pks["ok@orange.fr"], pks["info@maboutique.fr"], pks["marie@gmial.com"]})
		require.NoError(t, err)
		require.Equal(t, map[int64]string{pks["x@yopmail.com"]: "hygiene: DISPOSABLE", pks["marie@gmial.com"]: "hygiene: TYPO_SUSPECTED"}, holds)
		require.Equal(t, "DISPOSABLE", *get("x@yopmail.com").Status, "checked on the way and stored")

		rep, err := hygiene.BuildReport(ctx, db, c, now, hygiene.ReportOpts{})
		require.NoError(t, err)
		require.Equal(t, 5, rep.Total)
		require.Equal(t, 0, rep.Unchecked, "the send check stored the last one")
		counts := map[string]int{}
		for _, g := range rep.ByStatus {
			counts[g.Key] = g.Count
			require.Len(t, g.Customers, g.Count)
		}
		require.Equal(t, map[string]int{"OK": 1, "ROLE": 1, "TYPO_SUSPECTED": 1, "DISPOSABLE": 1, "SUPPRESSED": 1, "INVALID": 0}, counts)
		domains := map[string]int{}
		for _, g := range rep.ByDomain {
			domains[g.Key] = g.Count
		}
		require.Equal(t, map[string]int{"gmail.com": 1, "gmial.com": 1, "maboutique.fr": 1, "yopmail.com": 1, "orange.fr": 1}, domains)
	})
}

func TestConfirmedTypoStaysConfirmed(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *storetest.DB) {
		ctx := context.Background()
		now := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
		c := newChecker(t)
		e := "marie@gmial.com"
		cu, _, err := customer.Upsert(ctx, db, now, customer.Profile{Email: &e})
		require.NoError(t, err)
		status := func() string {
			st, _, err := hygiene.StatusOf(ctx, db, cu.PK)
			require.NoError(t, err)
			require.NotNil(t, st)
			return string(*st)
		}
		require.NoError(t, hygiene.RefreshCustomers(ctx, db, c, cu.PK))
		require.Equal(t, "TYPO_SUSPECTED", status())

		require.NoError(t, hygiene.ConfirmTypo(ctx, db, cu.PK))
		require.Equal(t, "OK", status())
		// Later checks (a webhook, an import) leave the confirmed address OK.
		require.NoError(t, hygiene.RefreshCustomers(ctx, db, c, cu.PK))
		require.NoError(t, hygiene.RefreshEmails(ctx, db, c, []string{e}))
		require.Equal(t, "OK", status())

		// A new address is checked afresh: the confirmation was for the old one.
		_, err = db.NewUpdate().Table("customers").Set("email = ?", "marie@hotnail.com").
			Set("email_normalized = ?", "marie@hotnail.com").Where("id = ?", cu.PK).Exec(ctx)
		require.NoError(t, err)
		require.NoError(t, hygiene.RefreshCustomers(ctx, db, c, cu.PK))
		require.Equal(t, "TYPO_SUSPECTED", status())
	})
}
