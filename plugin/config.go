package plugin

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/goccy/go-yaml"

	"github.com/refrain-dev/refrain/plugin/pressure"
)

// Config is every setting of Refrain. Defaults come first, then the optional
// file given by --config (YAML, keys as in the yaml tags), then REFRAIN_*
// environment variables. Validate names the setting that is wrong.
//
// Each field carries its environment variable (env), its file key (yaml),
// its default (default) and a one-line description (doc); the README's
// settings table lists the same, and a test keeps the two in step.
type Config struct {
	// Listen is the HTTP listen address.
	Listen string `env:"REFRAIN_LISTEN" yaml:"listen" default:":8080" doc:"HTTP listen address"`
	// DatabaseURL selects the database: postgres://... for PostgreSQL, or
	// sqlite:PATH (or a bare path) for the embedded SQLite database.
	DatabaseURL string `env:"REFRAIN_DATABASE_URL" yaml:"database_url" default:"sqlite:refrain.db" doc:"postgres://user@host:5432/db for PostgreSQL, or sqlite:PATH for the embedded SQLite file"`
	// DatabaseSchema is the PostgreSQL schema Refrain keeps its tables in,
	// created if missing; empty means the connection's default (public).
	DatabaseSchema string `env:"REFRAIN_DATABASE_SCHEMA" yaml:"database_schema" default:"" doc:"PostgreSQL schema of Refrain's own, created if missing (empty: the connection's default, usually public)"`
	// DatabaseSharedSchema lets migrations create tables beside tables Refrain did not create.
	DatabaseSharedSchema bool `env:"REFRAIN_DATABASE_SHARED_SCHEMA" yaml:"database_shared_schema" default:"false" doc:"let migrate and serve create Refrain's tables in a schema (or SQLite file) that holds tables of another application"`
	// DatabaseMaxConns caps the PostgreSQL connection pool (SQLite uses one connection).
	DatabaseMaxConns int `env:"REFRAIN_DATABASE_MAX_CONNS" yaml:"database_max_conns" default:"20" doc:"PostgreSQL connection pool size"`
	// AutoMigrate applies pending migrations at start, under a lock.
	AutoMigrate bool `env:"REFRAIN_AUTO_MIGRATE" yaml:"auto_migrate" default:"true" doc:"apply pending migrations at start (under a lock shared by replicas)"`
	// PublicURL is the address customers and stores reach this service at; links in mail use it.
	PublicURL string `env:"REFRAIN_PUBLIC_URL" yaml:"public_url" default:"http://localhost:8080" doc:"external base URL of this service, used in links"`

	// GraphiQL serves the GraphiQL IDE at GET /graphql.
	GraphiQL bool `env:"REFRAIN_GRAPHIQL" yaml:"graphiql" default:"true" doc:"serve GraphiQL at GET /graphql (turn off in production)"`
	// Introspection allows GraphQL introspection queries.
	Introspection bool `env:"REFRAIN_INTROSPECTION" yaml:"introspection" default:"true" doc:"allow GraphQL introspection"`
	// QueryMaxDepth is the deepest selection a GraphQL operation may have.
	QueryMaxDepth int `env:"REFRAIN_QUERY_MAX_DEPTH" yaml:"query_max_depth" default:"12" doc:"maximum GraphQL selection depth"`
	// QueryMaxComplexity is the highest complexity score a GraphQL operation may have.
	QueryMaxComplexity int `env:"REFRAIN_QUERY_MAX_COMPLEXITY" yaml:"query_max_complexity" default:"20000" doc:"maximum GraphQL complexity (each field 1, every list multiplies its children by its page size or bound)"`

	// AdminAPIKey is an optional bootstrap key with every scope.
	AdminAPIKey string `env:"REFRAIN_ADMIN_API_KEY" yaml:"admin_api_key" default:"" doc:"optional bootstrap admin key with every scope (like a master key); at least 32 characters" secret:"true"`
	// JWTSecret verifies HS256 customer tokens.
	JWTSecret string `env:"REFRAIN_JWT_SECRET" yaml:"jwt_secret" default:"" doc:"shared secret for HS256 customer tokens (at least 32 bytes)" secret:"true"`
	// JWKSURL verifies RS256/ES256 customer tokens with keys from this address.
	JWKSURL string `env:"REFRAIN_JWKS_URL" yaml:"jwks_url" default:"" doc:"JWKS address for RS256/ES256 customer tokens"`
	// JWTCustomerClaim is the claim that holds the customer id.
	JWTCustomerClaim string `env:"REFRAIN_JWT_CUSTOMER_CLAIM" yaml:"jwt_customer_claim" default:"sub" doc:"claim of the customer token that holds the customer id"`
	// JWTIssuer, when set, must equal the token's iss claim.
	JWTIssuer string `env:"REFRAIN_JWT_ISSUER" yaml:"jwt_issuer" default:"" doc:"required iss claim of customer tokens (empty: not checked)"`
	// JWTAudience, when set, must be in the token's aud claim.
	JWTAudience string `env:"REFRAIN_JWT_AUDIENCE" yaml:"jwt_audience" default:"" doc:"required aud claim of customer tokens (empty: not checked)"`

	// LogLevel is debug, info, warn or error.
	LogLevel string `env:"REFRAIN_LOG_LEVEL" yaml:"log_level" default:"info" doc:"debug, info, warn or error"`
	// LogFormat is json, text, or auto (text on a terminal, JSON otherwise).
	LogFormat string `env:"REFRAIN_LOG_FORMAT" yaml:"log_format" default:"auto" doc:"json, text, or auto (text on a terminal, JSON otherwise)"`
	// ShutdownTimeout bounds the graceful shutdown that finishes requests in flight.
	ShutdownTimeout time.Duration `env:"REFRAIN_SHUTDOWN_TIMEOUT" yaml:"shutdown_timeout" default:"30s" doc:"how long SIGTERM waits for requests in flight"`

	// Each domain's settings, declared in its own config_<domain>.go.
	StorefrontConfig
	MailConfig
	ScenariosConfig
	HygieneConfig
	MetricsConfig
	PressureConfig
	SegmentConfig
	LimitsConfig
}

// settingField is one leaf setting: its struct field and its value.
type settingField struct {
	f reflect.StructField
	v reflect.Value
}

// settingFields lists every setting of c, walking embedded structs: each
// domain declares its settings in a struct of its own (StorefrontConfig,
// MailConfig, ...) embedded in Config.
func settingFields(v reflect.Value) []settingField {
	var out []settingField
	for i := 0; i < v.NumField(); i++ {
		f := v.Type().Field(i)
		if f.Anonymous && f.Type.Kind() == reflect.Struct {
			out = append(out, settingFields(v.Field(i))...)
			continue
		}
		if f.Tag.Get("env") == "" {
			continue
		}
		out = append(out, settingField{f: f, v: v.Field(i)})
	}
	return out
}

// DefaultConfig returns the configuration with every default applied.
func DefaultConfig() Config {
	var c Config
	for _, sf := range settingFields(reflect.ValueOf(&c).Elem()) {
		if def, ok := sf.f.Tag.Lookup("default"); ok && def != "" {
			if err := setField(sf.v, def); err != nil {
				panic(fmt.Sprintf("bad default for %s: %v", sf.f.Name, err))
			}
		}
	}
	return c
}

// Setting describes one setting, for documentation and the CLI.
type Setting struct {
	Env, YAML, Default, Doc string
	Secret                  bool
}

// Settings lists every setting in declaration order.
func Settings() []Setting {
	var c Config
	fields := settingFields(reflect.ValueOf(&c).Elem())
	out := make([]Setting, 0, len(fields))
	for _, sf := range fields {
		f := sf.f
		out = append(out, Setting{Env: f.Tag.Get("env"), YAML: f.Tag.Get("yaml"), Default: f.Tag.Get("default"),
			Doc: f.Tag.Get("doc"), Secret: f.Tag.Get("secret") == "true"})
	}
	return out
}

// LoadConfig builds the configuration: defaults, then the YAML file at path
// (if path is not empty), then the REFRAIN_* variables in environ (as
// os.Environ gives them). The result is validated.
func LoadConfig(path string, environ []string) (Config, error) {
	c := DefaultConfig()
	fields := settingFields(reflect.ValueOf(&c).Elem())
	if path != "" {
		raw, err := os.ReadFile(path)
		if err != nil {
			return c, fmt.Errorf("read config file: %w", err)
		}
		var m map[string]any
		if err := yaml.Unmarshal(raw, &m); err != nil {
			return c, fmt.Errorf("parse config file %s: %w", path, err)
		}
		known := map[string]int{}
		for i, sf := range fields {
			known[sf.f.Tag.Get("yaml")] = i
		}
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			i, ok := known[k]
			if !ok {
				return c, fmt.Errorf("config file %s: unknown setting %q", path, k)
			}
			if err := setField(fields[i].v, fmt.Sprint(m[k])); err != nil {
				return c, fmt.Errorf("config file %s: setting %s: %w", path, k, err)
			}
		}
	}
	env := map[string]string{}
	for _, kv := range environ {
		if k, val, ok := strings.Cut(kv, "="); ok && strings.HasPrefix(k, "REFRAIN_") {
			env[k] = val
		}
	}
	for _, sf := range fields {
		name := sf.f.Tag.Get("env")
		if val, ok := env[name]; ok {
			if err := setField(sf.v, val); err != nil {
				return c, fmt.Errorf("setting %s: %w", name, err)
			}
		}
	}
	return c, c.Validate()
}

func setField(f reflect.Value, s string) error {
	switch f.Interface().(type) {
	case time.Duration:
		d, err := pressure.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("%q is not a duration (examples: 30s, 5m, 1h, 365d)", s)
		}
		f.SetInt(int64(d))
		return nil
	}
	switch f.Kind() {
	case reflect.String:
		f.SetString(s)
	case reflect.Bool:
		b, err := strconv.ParseBool(strings.TrimSpace(s))
		if err != nil {
			return fmt.Errorf("%q is not true or false", s)
		}
		f.SetBool(b)
	case reflect.Int, reflect.Int64:
		n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
		if err != nil {
			return fmt.Errorf("%q is not a whole number", s)
		}
		f.SetInt(n)
	case reflect.Float64:
		x, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
		if err != nil {
			return fmt.Errorf("%q is not a number", s)
		}
		f.SetFloat(x)
	default:
		return fmt.Errorf("unsupported setting type %s", f.Type())
	}
	return nil
}

// validSchemaName reports whether s is what REFRAIN_DATABASE_SCHEMA
// accepts: an identifier that needs no quoting in PostgreSQL.
func validSchemaName(s string) bool {
	if s == "" || len(s) > 63 || (s[0] >= '0' && s[0] <= '9') {
		return false
	}
	for _, c := range s {
		if !(c == '_' || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) {
			return false
		}
	}
	return true
}

// Validate checks every setting and names the first one that is wrong.
func (c Config) Validate() error {
	var errs []error
	bad := func(env, format string, args ...any) {
		errs = append(errs, fmt.Errorf("setting %s: "+format, append([]any{env}, args...)...))
	}
	if c.Listen == "" {
		bad("REFRAIN_LISTEN", "must not be empty")
	}
	if c.DatabaseURL == "" {
		bad("REFRAIN_DATABASE_URL", "must not be empty")
	} else if strings.Contains(c.DatabaseURL, "://") && !strings.HasPrefix(c.DatabaseURL, "postgres://") &&
		!strings.HasPrefix(c.DatabaseURL, "postgresql://") && !strings.HasPrefix(c.DatabaseURL, "sqlite://") {
		bad("REFRAIN_DATABASE_URL", "unsupported scheme: use postgres://..., sqlite:PATH or a file path")
	}
	if c.DatabaseSchema != "" && !validSchemaName(c.DatabaseSchema) {
		bad("REFRAIN_DATABASE_SCHEMA", "must be a lowercase identifier (letters, digits, _), got %q", c.DatabaseSchema)
	}
	if c.DatabaseMaxConns < 1 {
		bad("REFRAIN_DATABASE_MAX_CONNS", "must be at least 1, got %d", c.DatabaseMaxConns)
	}
	if u, err := url.Parse(c.PublicURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		bad("REFRAIN_PUBLIC_URL", "must be an absolute http(s) URL, got %q", c.PublicURL)
	}
	if c.QueryMaxDepth < 2 {
		bad("REFRAIN_QUERY_MAX_DEPTH", "must be at least 2, got %d", c.QueryMaxDepth)
	}
	if c.QueryMaxComplexity < 10 {
		bad("REFRAIN_QUERY_MAX_COMPLEXITY", "must be at least 10, got %d", c.QueryMaxComplexity)
	}
	if c.AdminAPIKey != "" && len(c.AdminAPIKey) < 32 {
		bad("REFRAIN_ADMIN_API_KEY", "must be at least 32 characters")
	}
	if c.JWTSecret != "" && len(c.JWTSecret) < 32 {
		bad("REFRAIN_JWT_SECRET", "must be at least 32 bytes")
	}
	if c.JWKSURL != "" {
		if u, err := url.Parse(c.JWKSURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad("REFRAIN_JWKS_URL", "must be an absolute http(s) URL, got %q", c.JWKSURL)
		}
	}
	if c.JWTCustomerClaim == "" {
		bad("REFRAIN_JWT_CUSTOMER_CLAIM", "must not be empty")
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		bad("REFRAIN_LOG_LEVEL", "must be debug, info, warn or error, got %q", c.LogLevel)
	}
	switch c.LogFormat {
	case "auto", "json", "text":
	default:
		bad("REFRAIN_LOG_FORMAT", "must be auto, json or text, got %q", c.LogFormat)
	}
	if c.ShutdownTimeout <= 0 {
		bad("REFRAIN_SHUTDOWN_TIMEOUT", "must be positive, got %s", c.ShutdownTimeout)
	}
	errs = append(errs, c.StorefrontConfig.validate()...)
	errs = append(errs, c.MailConfig.validate()...)
	errs = append(errs, c.ScenariosConfig.validate()...)
	errs = append(errs, c.HygieneConfig.validate()...)
	errs = append(errs, c.MetricsConfig.validate()...)
	errs = append(errs, c.PressureConfig.validate()...)
	errs = append(errs, c.SegmentConfig.validate()...)
	errs = append(errs, c.LimitsConfig.validate()...)
	return errors.Join(errs...)
}
