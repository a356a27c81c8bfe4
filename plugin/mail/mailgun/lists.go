package mailgun

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	mg "github.com/mailgun/mailgun-go/v4"

	refmail "github.com/refrain-dev/refrain/plugin/mail"
)

// Suppressed is one entry of Mailgun's own suppression lists.
type Suppressed struct {
	// Address is the suppressed address.
	Address string
	// List is "bounces", "complaints" or "unsubscribes".
	List string
	// Detail is Mailgun's explanation (the SMTP code and error of a bounce).
	Detail string
	// At is when Mailgun listed it.
	At time.Time
}

// The lists Suppressions reads.
const (
	ListBounces      = "bounces"
	ListComplaints   = "complaints"
	ListUnsubscribes = "unsubscribes"
)

// Suppressions calls fn with every entry of Mailgun's bounce, complaint and
// unsubscribe lists of the marketing domain (and the transactional domain
// when there is one).
func (s *Sender) Suppressions(ctx context.Context, fn func(Suppressed) error) error {
	domains := []string{s.cfg.Domain}
	if d := s.cfg.TransactionalDomain; d != "" && d != s.cfg.Domain {
		domains = append(domains, d)
	}
	for _, domain := range domains {
		client := mg.NewMailgun(domain, s.client.APIKey())
		client.SetAPIBase(s.client.APIBase())
		client.SetClient(s.client.Client())
		if err := s.listBounces(ctx, client, fn); err != nil {
			return fmt.Errorf("read mailgun bounces of %s: %w", domain, err)
		}
		if err := s.listComplaints(ctx, client, fn); err != nil {
			return fmt.Errorf("read mailgun complaints of %s: %w", domain, err)
		}
		if err := s.listUnsubscribes(ctx, client, fn); err != nil {
			return fmt.Errorf("read mailgun unsubscribes of %s: %w", domain, err)
		}
	}
	return nil
}

func (s *Sender) listBounces(ctx context.Context, c *mg.MailgunImpl, fn func(Suppressed) error) error {
	it := c.ListBounces(&mg.ListOptions{Limit: 1000})
	var page []mg.Bounce
	for it.Next(ctx, &page) {
		for _, b := range page {
			if err := fn(Suppressed{Address: b.Address, List: ListBounces, Detail: b.Code + " " + b.Error, At: time.Time(b.CreatedAt).UTC()}); err != nil {
				return err
			}
		}
	}
	return it.Err()
}

func (s *Sender) listComplaints(ctx context.Context, c *mg.MailgunImpl, fn func(Suppressed) error) error {
	it := c.ListComplaints(&mg.ListOptions{Limit: 1000})
	var page []mg.Complaint
	for it.Next(ctx, &page) {
		for _, b := range page {
			if err := fn(Suppressed{Address: b.Address, List: ListComplaints, At: time.Time(b.CreatedAt).UTC()}); err != nil {
				return err
			}
		}
	}
	return it.Err()
}

func (s *Sender) listUnsubscribes(ctx context.Context, c *mg.MailgunImpl, fn func(Suppressed) error) error {
	it := c.ListUnsubscribes(&mg.ListOptions{Limit: 1000})
	var page []mg.Unsubscribe
	for it.Next(ctx, &page) {
		for _, b := range page {
			if err := fn(Suppressed{Address: b.Address, List: ListUnsubscribes, At: time.Time(b.CreatedAt).UTC()}); err != nil {
				return err
			}
		}
	}
	return it.Err()
}

// pollPageLimit is the page size of PollEvents; pollMaxPages bounds one call.
const (
	pollPageLimit = 300
	pollMaxPages  = 100
)

// PollEvents reads Mailgun's events API for the marketing (and
// transactional) domain from begin to end, oldest first, and calls fn with
// each event parsed exactly as a webhook's event-data would be (events
// Refrain does not read are skipped). It fills the gaps an outage longer
// than Mailgun's webhook retries leaves; recording is idempotent on the
// event id, so overlapping polls and webhooks are harmless.
func (s *Sender) PollEvents(ctx context.Context, begin, end time.Time, fn func(refmail.Event) error) error {
	domains := []string{s.cfg.Domain}
	if d := s.cfg.TransactionalDomain; d != "" && d != s.cfg.Domain {
		domains = append(domains, d)
	}
	for _, domain := range domains {
		q := url.Values{}
		q.Set("begin", begin.UTC().Format(time.RFC1123Z))
		q.Set("end", end.UTC().Format(time.RFC1123Z))
		q.Set("ascending", "yes")
		q.Set("limit", strconv.Itoa(pollPageLimit))
		next := s.client.APIBase() + "/" + url.PathEscape(domain) + "/events?" + q.Encode()
		for page := 0; next != "" && page < pollMaxPages; page++ {
			var err error
			next, err = s.pollPage(ctx, next, fn)
			if err != nil {
				return fmt.Errorf("poll mailgun events of %s: %w", domain, err)
			}
		}
	}
	return nil
}

// pollPage reads one page and returns the next page's address, empty at the end.
func (s *Sender) pollPage(ctx context.Context, addr string, fn func(refmail.Event) error) (string, error) {
	callCtx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(callCtx, http.MethodGet, addr, nil)
	if err != nil {
		return "", err
	}
	req.SetBasicAuth("api", s.client.APIKey())
	resp, err := s.client.Client().Do(req)
	if err != nil {
		return "", &refmail.ProviderError{Reason: err.Error(), Temporary: true, Err: err}
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", &refmail.ProviderError{Status: resp.StatusCode, Reason: http.StatusText(resp.StatusCode),
			Temporary: resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests}
	}
	var body struct {
		Items  []json.RawMessage `json:"items"`
		Paging struct {
			Next string `json:"next"`
		} `json:"paging"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return "", fmt.Errorf("decode events page: %w", err)
	}
	for _, item := range body.Items {
		wrapped, _ := json.Marshal(map[string]json.RawMessage{"event-data": item})
		ev, err := ParseEvent(wrapped)
		if err != nil {
			continue // an event kind Refrain does not read
		}
		if err := fn(ev); err != nil {
			return "", err
		}
	}
	if len(body.Items) == 0 {
		return "", nil
	}
	return body.Paging.Next, nil
}
