// Package hygiene checks email addresses before Refrain relies on them:
// syntax (internationalised domains included), disposable domains from a
// maintained list shipped as data, likely typos of common mailbox domains
// (suggested, never corrected silently), role addresses, and addresses on
// the suppression list for hard bounces, complaints or an erasure. Each
// address gets one Status, stored on the customer, that subscription,
// imports, webhook ingest, marketing sends and the hygiene report use.
package hygiene

import (
	"bufio"
	"bytes"
	"context"
	_ "embed"
	"fmt"
	"io"
	"os"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/refrain-dev/refrain/plugin/customer"
)

// Status is the verdict on one address.
type Status string

// Statuses, from the worst to the best. An address gets the first that applies.
const (
	// StatusInvalid: the address cannot be an email address.
	StatusInvalid Status = "INVALID"
	// StatusSuppressed: the address hard bounced, complained, or was erased.
	StatusSuppressed Status = "SUPPRESSED"
	// StatusDisposable: the domain hands out throwaway mailboxes.
	StatusDisposable Status = "DISPOSABLE"
	// StatusTypoSuspected: the domain is one letter or two away from a common one.
	StatusTypoSuspected Status = "TYPO_SUSPECTED"
	// StatusRole: the mailbox is a function (info@, admin@), not a person.
	StatusRole Status = "ROLE"
	// StatusOK: nothing wrong was found.
	StatusOK Status = "OK"
)

// Statuses lists every status in report order.
var Statuses = []Status{StatusOK, StatusRole, StatusTypoSuspected, StatusDisposable, StatusSuppressed, StatusInvalid}

// Valid reports whether s is a known status.
func (s Status) Valid() bool {
	switch s {
	case StatusOK, StatusRole, StatusTypoSuspected, StatusDisposable, StatusSuppressed, StatusInvalid:
		return true
	}
	return false
}

// Sendable reports whether marketing mail may go to an address with this
// status by default: OK and role addresses only.
func (s Status) Sendable() bool { return s == StatusOK || s == StatusRole }

// Result is the verdict on one address.
type Result struct {
	Status Status
	// Normalized is the address as Refrain matches it; empty when INVALID.
	Normalized string
	// Domain is the ASCII (IDNA) domain; empty when INVALID.
	Domain string
	// Suggestion is the corrected address for TYPO_SUSPECTED, such as
	// jane@gmail.com for jane@gmial.com.
	Suggestion string
	// Reason says in a few words what was found.
	Reason string
}

//go:embed data/disposable_domains.txt
var embeddedDisposable []byte

//go:embed data/disposable_wildcard.txt
var embeddedWildcard []byte

// Options configure a Checker. The zero value uses the embedded lists.
type Options struct {
	// DisposableFile replaces the embedded disposable-domain list: one
	// domain per line, blank lines and lines starting with # ignored.
	DisposableFile string
	// CommonDomains replaces the table of common mailbox domains typos are
	// measured against. Default CommonDomains.
	CommonDomains []string
}

// Checker checks addresses. It is safe for concurrent use.
type Checker struct {
	disposable map[string]struct{}
	common     []string
	commonSet  map[string]struct{}
}

// NewChecker loads the disposable-domain list and the typo table.
func NewChecker(o Options) (*Checker, error) {
	c := &Checker{disposable: map[string]struct{}{}, common: CommonDomains}
	if len(o.CommonDomains) > 0 {
		c.common = o.CommonDomains
	}
	if o.DisposableFile != "" {
		f, err := os.Open(o.DisposableFile)
		if err != nil {
			return nil, fmt.Errorf("open disposable domains: %w", err)
		}
		defer f.Close()
		if err := c.addDomains(f); err != nil {
			return nil, fmt.Errorf("read disposable domains %s: %w", o.DisposableFile, err)
		}
	} else {
		for _, b := range [][]byte{embeddedDisposable, embeddedWildcard} {
			if err := c.addDomains(bytes.NewReader(b)); err != nil {
				return nil, fmt.Errorf("read embedded disposable domains: %w", err)
			}
		}
	}
	c.commonSet = make(map[string]struct{}, len(c.common))
	for _, d := range c.common {
		c.commonSet[d] = struct{}{}
	}
	return c, nil
}

func (c *Checker) addDomains(r io.Reader) error {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := strings.ToLower(strings.TrimSpace(sc.Text()))
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		c.disposable[strings.TrimPrefix(line, "*.")] = struct{}{}
	}
	return sc.Err()
}

// DisposableCount is the number of domains on the disposable list.
func (c *Checker) DisposableCount() int { return len(c.disposable) }

// Check checks an address without the database: every rule but SUPPRESSED
// (see Service.Check).
func (c *Checker) Check(addr string) Result {
	norm, reason := syntax(addr)
	if reason != "" {
		return Result{Status: StatusInvalid, Reason: reason}
	}
	at := strings.LastIndexByte(norm, '@')
	local, domain := norm[:at], norm[at+1:]
	r := Result{Status: StatusOK, Normalized: norm, Domain: domain}
	if c.isDisposable(domain) {
		r.Status, r.Reason = StatusDisposable, "disposable domain "+domain
		return r
	}
	if s := c.suggest(domain); s != "" {
		r.Status, r.Suggestion, r.Reason = StatusTypoSuspected, local+"@"+s, "did you mean "+s+"?"
		return r
	}
	if isRole(local) {
		r.Status, r.Reason = StatusRole, "role address "+local+"@"
	}
	return r
}

// isDisposable reports whether domain or one of its parent domains is on the list.
func (c *Checker) isDisposable(domain string) bool {
	for d := domain; strings.Contains(d, "."); d = d[strings.IndexByte(d, '.')+1:] {
		if _, ok := c.disposable[d]; ok {
			return true
		}
	}
	return false
}

// syntax returns the normalised address, or why it is not an address.
func syntax(addr string) (string, string) {
	norm, err := customer.NormalizeEmail(addr)
	if err != nil {
		return "", "not a valid email address"
	}
	at := strings.LastIndexByte(norm, '@')
	local, domain := norm[:at], norm[at+1:]
	if strings.HasPrefix(local, ".") || strings.HasSuffix(local, ".") || strings.Contains(local, "..") {
		return "", "misplaced dot in the mailbox name"
	}
	for _, r := range local {
		if r < utf8.RuneSelf {
			if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || strings.ContainsRune(".!#$%&'*+/=?^_`{|}~-", r)) {
				return "", fmt.Sprintf("character %q not allowed in the mailbox name", r)
			}
		} else if !unicode.IsLetter(r) && !unicode.IsDigit(r) && !unicode.IsMark(r) {
			return "", fmt.Sprintf("character %q not allowed in the mailbox name", r)
		}
	}
	labels := strings.Split(domain, ".")
	for _, l := range labels {
		if l == "" || len(l) > 63 || strings.HasPrefix(l, "-") || strings.HasSuffix(l, "-") {
			return "", "bad domain label " + l
		}
	}
	tld := labels[len(labels)-1]
	if len(tld) < 2 {
		return "", "top-level domain too short"
	}
	if !strings.HasPrefix(tld, "xn--") {
		for _, r := range tld {
			if r < 'a' || r > 'z' {
				return "", "top-level domain " + tld + " is not a name"
			}
		}
	}
	return norm, ""
}

// roles are mailbox names that belong to a function rather than a person.
var roles = map[string]struct{}{}

func init() {
	for _, r := range strings.Fields(`abuse accounting accounts admin administrator billing careers commercial compta
		contact contactus contact-us devnull do-not-reply donotreply enquiries feedback help hello hostmaster hr info
		inquiries jobs list listserv mailer-daemon marketing media news newsletter no-reply nobody noc noreply
		notifications office orders postmaster press privacy recrutement root sales security service support
		team webmaster www`) {
		roles[r] = struct{}{}
	}
}

// isRole reports whether a mailbox name (with or without +tag) is a role.
func isRole(local string) bool {
	if i := strings.IndexByte(local, '+'); i > 0 {
		local = local[:i]
	}
	_, ok := roles[local]
	return ok
}

// SubscribeVerdict carries, through a subscription request, whether the
// subscriber confirmed an address that looks like a typo, and the verdict
// the address check reached (so the form can show didYouMean).
type SubscribeVerdict struct {
	ConfirmTypo bool
	Result      Result
}

type verdictKey struct{}

// WithSubscribe returns ctx carrying a SubscribeVerdict for the address check.
func WithSubscribe(ctx context.Context, confirmTypo bool) (context.Context, *SubscribeVerdict) {
	v := &SubscribeVerdict{ConfirmTypo: confirmTypo}
	return context.WithValue(ctx, verdictKey{}, v), v
}

// SubscribeVerdictFrom returns the SubscribeVerdict WithSubscribe stored, or nil.
func SubscribeVerdictFrom(ctx context.Context) *SubscribeVerdict {
	v, _ := ctx.Value(verdictKey{}).(*SubscribeVerdict)
	return v
}
