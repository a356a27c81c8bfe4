package plugin

import (
	"fmt"
	"time"
)

// LimitsConfig bounds what one request may cost: its body, its parse, its
// time, and the connections that carry it.
type LimitsConfig struct {
	// GraphQLMaxBody is the largest GraphQL request body accepted, in bytes.
	GraphQLMaxBody int64 `env:"REFRAIN_GRAPHQL_MAX_BODY" yaml:"graphql_max_body" default:"1048576" doc:"largest GraphQL request body in bytes (larger ones get 413)"`
	// QueryMaxTokens caps the tokens of a GraphQL document, checked while parsing.
	QueryMaxTokens int `env:"REFRAIN_QUERY_MAX_TOKENS" yaml:"query_max_tokens" default:"3000" doc:"maximum tokens in a GraphQL document, checked before validation"`
	// QueryMaxAliases caps the aliased fields of a GraphQL operation.
	QueryMaxAliases int `env:"REFRAIN_QUERY_MAX_ALIASES" yaml:"query_max_aliases" default:"30" doc:"maximum aliased fields in a GraphQL operation"`
	// RequestTimeout bounds each request: its work is cancelled after it, or when the client leaves.
	RequestTimeout time.Duration `env:"REFRAIN_REQUEST_TIMEOUT" yaml:"request_timeout" default:"30s" doc:"deadline of each HTTP request; its work (and database calls) is cancelled after it or when the client leaves"`
	// HTTPReadTimeout bounds reading a whole request, body included.
	HTTPReadTimeout time.Duration `env:"REFRAIN_HTTP_READ_TIMEOUT" yaml:"http_read_timeout" default:"30s" doc:"time allowed to read a request, headers and body"`
	// HTTPIdleTimeout closes keep-alive connections idle this long.
	HTTPIdleTimeout time.Duration `env:"REFRAIN_HTTP_IDLE_TIMEOUT" yaml:"http_idle_timeout" default:"120s" doc:"keep-alive connections idle this long are closed"`
}

func (c LimitsConfig) validate() []error {
	var errs []error
	bad := func(env, format string, args ...any) {
		errs = append(errs, fmt.Errorf("setting %s: "+format, append([]any{env}, args...)...))
	}
	if c.GraphQLMaxBody < 1024 {
		bad("REFRAIN_GRAPHQL_MAX_BODY", "must be at least 1024, got %d", c.GraphQLMaxBody)
	}
	if c.QueryMaxTokens < 100 {
		bad("REFRAIN_QUERY_MAX_TOKENS", "must be at least 100, got %d", c.QueryMaxTokens)
	}
	if c.QueryMaxAliases < 0 {
		bad("REFRAIN_QUERY_MAX_ALIASES", "must not be negative, got %d", c.QueryMaxAliases)
	}
	for env, d := range map[string]time.Duration{"REFRAIN_REQUEST_TIMEOUT": c.RequestTimeout,
		"REFRAIN_HTTP_READ_TIMEOUT": c.HTTPReadTimeout, "REFRAIN_HTTP_IDLE_TIMEOUT": c.HTTPIdleTimeout} {
		if d <= 0 {
			bad(env, "must be positive, got %s", d)
		}
	}
	return errs
}
