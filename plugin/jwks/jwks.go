// Package jwks fetches and caches a JSON Web Key Set (RFC 7517) published by
// a token issuer, and hands out its public keys by key id.
//
// A Set has no background goroutine that polls the issuer. It fetches on
// demand: on first use, when the cache is older than Options.MaxAge, and when
// asked for a key id it does not know (the issuer may have rotated its keys).
// Refetches are rate limited by Options.MinRefreshInterval so that a flood of
// tokens with made-up key ids cannot turn Refrain into an amplifier against the
// issuer, and concurrent callers share one fetch.
//
// It serves customer JWT verification (plugin/auth) and the Saleor webhook
// signature check.
//
// It is an edge: an HTTP client of the issuer, so it imports net/http. The
// domain reaches it only through the key lookup plugin/auth declares; it
// must not import graph, the plugin assembly or a domain package.
package jwks

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/refrain-dev/refrain/plugin/clock"
)

// ErrKeyNotFound is returned (wrapped) by Set.Key when the key set, fetched
// successfully, has no usable key with the requested key id.
var ErrKeyNotFound = errors.New("key not found in key set")

// Defaults for Options fields left zero.
const (
	DefaultMinRefreshInterval = time.Minute
	DefaultMaxAge             = time.Hour
	DefaultFetchTimeout       = 10 * time.Second
	DefaultMaxBodyBytes       = 1 << 20
)

// Options configures a Set. A nil *Options, and every zero field, means the
// default.
type Options struct {
	// HTTPClient fetches the key set. Default: a client with no timeout of its
	// own (FetchTimeout bounds each fetch).
	HTTPClient *http.Client
	// Clock decides when the cache is stale and when a refetch is allowed.
	// Default: clock.Real{}.
	Clock clock.Clock
	// Logger reports key-set entries that are skipped and refreshes that fail
	// while stale keys are still served. Default: slog.Default().
	Logger *slog.Logger
	// MinRefreshInterval is the least time between two fetches started by an
	// unknown key id or a stale cache. Default: 1 minute.
	MinRefreshInterval time.Duration
	// MaxAge is how long a fetched key set is used before it is fetched again.
	// Default: 1 hour.
	MaxAge time.Duration
	// FetchTimeout bounds one fetch, which runs detached from the caller's
	// context so that one impatient caller does not fail the others waiting on
	// the same fetch. Default: 10 seconds.
	FetchTimeout time.Duration
	// MaxBodyBytes is the largest response body accepted, in bytes.
	// Default: 1 MiB.
	MaxBodyBytes int64
}

// Set is a cached JSON Web Key Set fetched from one URL. It is safe for
// concurrent use.
type Set struct {
	url         string
	client      *http.Client
	clock       clock.Clock
	log         *slog.Logger
	minInterval time.Duration
	maxAge      time.Duration
	timeout     time.Duration
	maxBody     int64

	mu          sync.Mutex
	keys        map[string]crypto.PublicKey
	fetched     bool      // keys holds the result of a successful fetch
	fetchedAt   time.Time // time of the last successful fetch
	lastAttempt time.Time // time the last fetch started, successful or not
	lastErr     error     // error of the last fetch, nil when it succeeded
	inflight    *fetchCall
}

// fetchCall is one fetch shared by every caller that needs it.
type fetchCall struct {
	done chan struct{}
	err  error // set before done is closed
}

// New returns a Set for the key set published at url. Nothing is fetched until
// the first call to Key.
func New(url string, opts *Options) *Set {
	var o Options
	if opts != nil {
		o = *opts
	}
	s := &Set{
		url:         url,
		client:      o.HTTPClient,
		clock:       o.Clock,
		log:         o.Logger,
		minInterval: o.MinRefreshInterval,
		maxAge:      o.MaxAge,
		timeout:     o.FetchTimeout,
		maxBody:     o.MaxBodyBytes,
	}
	if s.client == nil {
		s.client = &http.Client{}
	}
	if s.clock == nil {
		s.clock = clock.Real{}
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.minInterval <= 0 {
		s.minInterval = DefaultMinRefreshInterval
	}
	if s.maxAge <= 0 {
		s.maxAge = DefaultMaxAge
	}
	if s.timeout <= 0 {
		s.timeout = DefaultFetchTimeout
	}
	if s.maxBody <= 0 {
		s.maxBody = DefaultMaxBodyBytes
	}
	return s
}

// Key returns the public key with key id kid: an *rsa.PublicKey or an
// *ecdsa.PublicKey. A key without a "kid" member in the set is found under the
// empty kid.
//
// It fetches the set when it has never been fetched, when the cached copy is
// older than MaxAge, or when kid is unknown, but starts a fetch at most once
// per MinRefreshInterval. When a refresh fails, keys from the previous
// successful fetch are still served (and the failure logged), so that an
// issuer outage does not lock out holders of valid tokens. The error wraps
// ErrKeyNotFound when the set has been fetched but has no such key; any other
// error means the set could not be fetched.
func (s *Set) Key(ctx context.Context, kid string) (crypto.PublicKey, error) {
	s.mu.Lock()
	now := s.clock.Now()
	key, known := s.keys[kid]
	if known && now.Sub(s.fetchedAt) < s.maxAge {
		s.mu.Unlock()
		return key, nil
	}
	call := s.inflight
	if call == nil {
		if !s.lastAttempt.IsZero() && now.Sub(s.lastAttempt) < s.minInterval {
			// A fetch started too recently: answer from what we have.
			fetched, lastErr := s.fetched, s.lastErr
			s.mu.Unlock()
			switch {
			case known:
				return key, nil
			case !fetched && lastErr != nil:
				return nil, fmt.Errorf("fetch key set %s: %w", s.url, lastErr)
			default:
				return nil, fmt.Errorf("look up kid %q: %w", kid, ErrKeyNotFound)
			}
		}
		call = &fetchCall{done: make(chan struct{})}
		s.inflight = call
		s.lastAttempt = now
		go s.run(ctx, call)
	}
	s.mu.Unlock()

	select {
	case <-call.done:
	case <-ctx.Done():
		return nil, fmt.Errorf("wait for key set: %w", ctx.Err())
	}

	s.mu.Lock()
	key, known = s.keys[kid]
	s.mu.Unlock()
	if known {
		if call.err != nil {
			s.log.WarnContext(ctx, "jwks refresh failed, serving cached keys",
				slog.String("url", s.url), slog.String("kid", kid), slog.Any("error", call.err))
		}
		return key, nil
	}
	if call.err != nil {
		return nil, fmt.Errorf("fetch key set %s: %w", s.url, call.err)
	}
	return nil, fmt.Errorf("look up kid %q: %w", kid, ErrKeyNotFound)
}

// run performs one fetch and publishes its result. ctx only carries values
// (for logging); its cancellation does not stop the fetch, which other callers
// may be waiting for.
func (s *Set) run(ctx context.Context, call *fetchCall) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.timeout)
	defer cancel()
	keys, err := s.fetch(ctx)

	s.mu.Lock()
	defer s.mu.Unlock()
	if err == nil {
		s.keys = keys
		s.fetched = true
		s.fetchedAt = s.clock.Now()
	}
	s.lastErr = err
	call.err = err
	s.inflight = nil
	close(call.done)
}

// fetch downloads and parses the key set.
func (s *Set) fetch(ctx context.Context) (map[string]crypto.PublicKey, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.url, nil)
	if err != nil {
		return nil, fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("Accept", "application/jwk-set+json, application/json")
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("get: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		// Drain a little so the connection can be reused.
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
		return nil, fmt.Errorf("get: unexpected status %s", resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, s.maxBody+1))
	if err != nil {
		return nil, fmt.Errorf("read body: %w", err)
	}
	if int64(len(body)) > s.maxBody {
		return nil, fmt.Errorf("read body: larger than %d bytes", s.maxBody)
	}
	keys, skipped, err := parseSet(body)
	for _, sk := range skipped {
		s.log.DebugContext(ctx, "jwks key skipped",
			slog.String("url", s.url), slog.String("kid", sk.kid), slog.String("reason", sk.reason))
	}
	if err != nil {
		return nil, fmt.Errorf("parse: %w", err)
	}
	return keys, nil
}
