package plugin

import (
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/refrain-dev/refrain/scenarios/library"
)

// ScenariosConfig holds the settings of the scenario engine and the program library.
type ScenariosConfig struct {
	// ScenariosLibrary lists the built-in programs to run: all, none, or ids separated by commas.
	ScenariosLibrary string `env:"REFRAIN_SCENARIOS_LIBRARY" yaml:"scenarios_library" default:"all" doc:"built-in programs to run: all, none, or ids separated by commas (welcome,cart-abandonment,...); the others are paused. Programs that delete profiles (sunset) are installed paused unless named here; enable them later with the setScenarioStatus mutation"`
	// ScenariosDir holds the store's own scenario files, which add to or override the library.
	ScenariosDir string `env:"REFRAIN_SCENARIOS_DIR" yaml:"scenarios_dir" default:"" doc:"directory of the store's own scenario files (*.yaml), added at start; a file with a library id overrides that program"`
	// ScenariosBatch is how many due enrollments or events one worker pass takes.
	ScenariosBatch int `env:"REFRAIN_SCENARIOS_BATCH" yaml:"scenarios_batch" default:"100" doc:"due enrollments (or customer events) one scenario worker pass claims"`
	// ScenariosLease is how long a worker holds what it claimed before another replica may take it.
	ScenariosLease time.Duration `env:"REFRAIN_SCENARIOS_LEASE" yaml:"scenarios_lease" default:"1m" doc:"how long a scenario worker holds claimed enrollments; a replica that dies leaves them to expire"`
	// ScenariosPoll is how long an idle scenario worker waits before looking again.
	ScenariosPoll time.Duration `env:"REFRAIN_SCENARIOS_POLL" yaml:"scenarios_poll" default:"1s" doc:"how long an idle scenario worker waits before looking again"`
	// StoreAnniversary is the store's anniversary as MM-DD for the store-anniversary program.
	StoreAnniversary string `env:"REFRAIN_STORE_ANNIVERSARY" yaml:"store_anniversary" default:"" doc:"the store's anniversary as MM-DD, for the store-anniversary program (empty: it never fires)"`
	// SurveyURL is the preference survey page that ${survey_url} points to.
	SurveyURL string `env:"REFRAIN_SURVEY_URL" yaml:"survey_url" default:"" doc:"survey page linked from the welcome and sunset mails, given ?customer=<id>&token=<signed token the page passes to submitSurvey> (empty: REFRAIN_STORE_URL + /survey)"`
}

// libraryIDs returns the enabled library program ids, and all of them.
func (c ScenariosConfig) libraryEnabled() (map[string]bool, error) {
	all := map[string]bool{}
	for _, f := range library.Files() {
		id := strings.TrimSuffix(strings.TrimPrefix(f.Name, "library/"), ".yaml")
		all[id] = false
	}
	switch v := strings.TrimSpace(c.ScenariosLibrary); v {
	case "all", "":
		for id := range all {
			all[id] = true
		}
	case "none":
	default:
		for _, id := range strings.Split(v, ",") {
			id = strings.TrimSpace(id)
			if _, ok := all[id]; !ok {
				return nil, fmt.Errorf("unknown library program %q", id)
			}
			all[id] = true
		}
	}
	return all, nil
}

// libraryNamed reports whether REFRAIN_SCENARIOS_LIBRARY names the program
// id explicitly (rather than through all).
func (c ScenariosConfig) libraryNamed(id string) bool {
	for _, v := range strings.Split(c.ScenariosLibrary, ",") {
		if strings.TrimSpace(v) == id {
			return true
		}
	}
	return false
}

func (c ScenariosConfig) validate() []error {
	var errs []error
	bad := func(env, format string, args ...any) {
		errs = append(errs, fmt.Errorf("setting %s: "+format, append([]any{env}, args...)...))
	}
	if _, err := c.libraryEnabled(); err != nil {
		bad("REFRAIN_SCENARIOS_LIBRARY", "%v (want all, none, or ids separated by commas)", err)
	}
	if c.ScenariosDir != "" {
		if st, err := os.Stat(c.ScenariosDir); err != nil || !st.IsDir() {
			bad("REFRAIN_SCENARIOS_DIR", "%q is not a directory", c.ScenariosDir)
		}
	}
	if c.ScenariosBatch <= 0 {
		bad("REFRAIN_SCENARIOS_BATCH", "must be positive, got %d", c.ScenariosBatch)
	}
	if c.ScenariosLease < time.Second {
		bad("REFRAIN_SCENARIOS_LEASE", "must be at least 1s, got %s", c.ScenariosLease)
	}
	if c.ScenariosPoll <= 0 {
		bad("REFRAIN_SCENARIOS_POLL", "must be positive, got %s", c.ScenariosPoll)
	}
	if c.StoreAnniversary != "" {
		if _, err := time.Parse("01-02", c.StoreAnniversary); err != nil {
			bad("REFRAIN_STORE_ANNIVERSARY", "want MM-DD, got %q", c.StoreAnniversary)
		}
	}
	return errs
}
