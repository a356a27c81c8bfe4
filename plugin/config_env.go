package plugin

import (
	"github.com/refrain-dev/refrain/plugin/hygiene"

	"fmt"
	"sort"
	"strings"
)

// UnknownEnv returns a warning for each REFRAIN_* variable of environ (as
// os.Environ gives them) that names no setting, with the closest known name
// when one is near: a misspelt REFRAIN_PRESURE_CAP would otherwise be
// ignored without a word. Variables read by the tests and benchmarks
// (REFRAIN_TEST_*, REFRAIN_BENCH_*) are not settings and are left alone.
func UnknownEnv(environ []string) []string {
	known := map[string]bool{}
	var names []string
	for _, s := range Settings() {
		known[s.Env] = true
		names = append(names, s.Env)
	}
	var out []string
	for _, kv := range environ {
		k, _, _ := strings.Cut(kv, "=")
		if !strings.HasPrefix(k, "REFRAIN_") || known[k] ||
			strings.HasPrefix(k, "REFRAIN_TEST_") || strings.HasPrefix(k, "REFRAIN_BENCH_") {
			continue
		}
		msg := fmt.Sprintf("%s is not a setting: it is ignored", k)
		if near, ok := closest(k, names); ok {
			msg = fmt.Sprintf("%s is not a setting: it is ignored (did you mean %s?)", k, near)
		}
		out = append(out, msg)
	}
	sort.Strings(out)
	return out
}

// closest returns the name nearest to s by edit distance, when it is near
// enough to be a typo: at most a third of the part after REFRAIN_.
func closest(s string, names []string) (string, bool) {
	best, bestD := "", -1
	for _, n := range names {
		if d := hygiene.OSADistance(s, n); bestD < 0 || d < bestD {
			best, bestD = n, d
		}
	}
	limit := max(2, (len(s)-len("REFRAIN_"))/3)
	return best, bestD >= 0 && bestD <= limit
}
