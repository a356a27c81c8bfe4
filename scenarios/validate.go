package scenarios

import (
	"fmt"
	"regexp"
	"sort"
	"strings"
)

// Templates is what the validator needs of the template engine
// (*template.Engine satisfies it).
type Templates interface {
	Has(name string) bool
	RequiredValues(name string) []string
}

// RuleChecker checks rules when a scenario is loaded. CheckCustomer is for
// rules over a customer (audience, exit_when, if); CheckEvent for filters
// over an event's properties. The segment package's checker satisfies it
// through an adapter in plugin/setup_scenarios.go; BasicRules is the
// built-in fallback.
type RuleChecker interface {
	CheckCustomer(rule string) error
	CheckEvent(rule string) error
}

// ValidateOpts are what Validate checks against; a nil field skips its checks.
type ValidateOpts struct {
	Templates Templates
	Rules     RuleChecker
}

var idPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,63}$`)

// Load parses and validates one file and compiles the step graph.
func Load(file string, data []byte, opts ValidateOpts) (*Scenario, error) {
	s, err := Parse(file, data)
	if err != nil {
		return nil, err
	}
	if err := Validate(s, opts); err != nil {
		return nil, err
	}
	return s, nil
}

// Validate checks the meaning of a parsed scenario and fills each step's
// Next. The error is Problems.
func Validate(s *Scenario, opts ValidateOpts) error {
	v := &validator{s: s, opts: opts, ids: map[string]*Step{}}
	v.header()
	v.list(s.Steps, "")
	if len(v.problems) > 0 {
		sort.SliceStable(v.problems, func(i, j int) bool { return v.problems[i].Line < v.problems[j].Line })
		return v.problems
	}
	link(s.Steps, "")
	return nil
}

type validator struct {
	s        *Scenario
	opts     ValidateOpts
	ids      map[string]*Step
	problems Problems
}

func (v *validator) fail(line int, step, field, format string, args ...any) {
	v.problems = append(v.problems, Problem{File: v.s.File, Line: line, Step: step, Field: field, Message: fmt.Sprintf(format, args...)})
}

func (v *validator) header() {
	s := v.s
	if !idPattern.MatchString(s.ID) {
		v.fail(s.LineOf("id"), "", "id", "id %q: use 1 to 64 lower-case letters, digits, - and _", s.ID)
	}
	if s.Title == "" {
		v.fail(s.LineOf("title"), "", "title", "title is required")
	}
	if !s.Objective.Valid() {
		v.fail(s.LineOf("objective"), "", "objective", "objective %q: want build, maintain, reactivate or retain", s.Objective)
	}
	if s.Priority < 0 || s.Priority > 100 {
		v.fail(s.LineOf("priority"), "", "priority", "priority %d: want 0 to 100", s.Priority)
	}
	if s.Holdout < 0 || s.Holdout > 99 {
		v.fail(s.LineOf("holdout"), "", "holdout", "holdout %d: want a percentage from 0 to 99", s.Holdout)
	}
	if s.ObservedFor < 0 {
		v.fail(s.LineOf("observed_for"), "", "observed_for", "observed_for: want a positive duration")
	}
	if s.ObservedFor <= 0 && s.Destructive() {
		v.fail(s.LineOf("steps"), "", "observed_for",
			"a program that deletes profiles needs observed_for (at least its inactivity window, such as 90d): without it a customer just imported or synced, with no history yet, would be deleted")
	}
	if !s.Reentry.Never && s.Reentry.After <= 0 {
		v.fail(s.LineOf("reentry"), "", "reentry", "reentry: want never or a positive duration")
	}
	v.customerRule(s.Audience, s.LineOf("audience"), "", "audience")
	v.customerRule(s.ExitWhen, s.LineOf("exit_when"), "", "exit_when")
	t := s.Trigger
	switch t.Kind {
	case TriggerEvent:
		if len(t.Events) == 0 {
			v.fail(t.Line, "", "trigger.event", "trigger.event needs an event type")
		}
		for _, e := range t.Events {
			v.eventType(e, t.Line, "", "trigger.event")
		}
		v.eventRule(t.Filter, t.Line, "", "trigger.filter")
	case TriggerSegment:
		if t.Segment == "" {
			v.fail(t.Line, "", "trigger.segment", "trigger.segment needs a segment id or name")
		}
	case TriggerYearly:
		if t.Field != "" && t.Field != "first_order_at" && t.Field != "created_at" {
			v.fail(t.Line, "", "trigger.yearly", "yearly %q: want first_order_at, created_at, store_anniversary or a date MM-DD", t.Field)
		}
	}
	for _, m := range s.ExitOn {
		v.match(m, "", "exit_on")
	}
	if g := s.Goal; g != nil {
		v.match(g.EventMatch, "", "goal")
		if g.Within <= 0 {
			v.fail(g.Line, "", "goal.within", "goal.within must be a positive duration")
		}
	}
	if len(s.Steps) == 0 {
		v.fail(s.LineOf("steps"), "", "steps", "a scenario needs at least one step")
	}
}

func (v *validator) match(m EventMatch, step, field string) {
	v.eventType(m.Event, m.Line, step, field+".event")
	v.eventRule(m.Filter, m.Line, step, field+".filter")
}

func (v *validator) eventType(t string, line int, step, field string) {
	if !eventPattern.MatchString(t) {
		v.fail(line, step, field, "event type %q: want dotted lower-case words such as order.created", t)
	}
}

var eventPattern = regexp.MustCompile(`^[a-z0-9_]+(\.[a-z0-9_]+)*$`)

func (v *validator) customerRule(rule string, line int, step, field string) {
	if rule == "" || v.opts.Rules == nil {
		return
	}
	if err := v.opts.Rules.CheckCustomer(rule); err != nil {
		v.fail(line, step, field, "%s does not check: %v", field, err)
	}
}

func (v *validator) eventRule(rule string, line int, step, field string) {
	if rule == "" || v.opts.Rules == nil {
		return
	}
	if err := v.opts.Rules.CheckEvent(rule); err != nil {
		v.fail(line, step, field, "%s does not check: %v", field, err)
	}
}

// list checks a list of steps; after a step that ends the enrollment the
// rest of the list can never be reached.
func (v *validator) list(steps []*Step, field string) {
	ended := ""
	for _, st := range steps {
		if ended != "" {
			v.fail(st.Line, st.ID, field, "unreachable: it follows %s", ended)
			ended = "" // report the first unreachable step of a list only
			continue
		}
		v.step(st)
		switch st.Kind {
		case StepExit:
			ended = "an exit"
		case StepDeleteProfile:
			ended = "delete_profile (nothing can be sent to an erased profile)"
		}
	}
}

func (v *validator) step(st *Step) {
	if prev, dup := v.ids[st.ID]; dup {
		v.fail(st.Line, st.ID, "id", "step id %q is also used on line %d", st.ID, prev.Line)
	}
	v.ids[st.ID] = st
	if !stepIDPattern.MatchString(st.ID) {
		v.fail(st.Line, st.ID, "id", "step id %q: use letters, digits, -, _ and .", st.ID)
	}
	switch st.Kind {
	case "":
		return
	case StepSend:
		if st.Message != Marketing && st.Message != Transactional {
			v.fail(st.Line, st.ID, "kind", "kind %q: want marketing or transactional", st.Message)
		}
		for _, key := range sortedValueKeys(st.Values) {
			if bad := UnknownPlaceholders(st.Values[key]); len(bad) > 0 {
				v.fail(st.Line, st.ID, "values", "value %q: unknown placeholder %s (known: ${survey_url}, ${keep_url}, ${store_url}, ${customer.id}, ${context.KEY})",
					key, strings.Join(bad, ", "))
			}
		}
		if t := v.opts.Templates; t != nil {
			if !t.Has(st.Template) {
				v.fail(st.Line, st.ID, "send", "unknown template %q", st.Template)
			} else {
				var missing []string
				for _, name := range t.RequiredValues(st.Template) {
					if _, ok := st.Values[name]; !ok {
						missing = append(missing, name)
					}
				}
				if len(missing) > 0 {
					v.fail(st.Line, st.ID, "values", "template %q needs values: %s", st.Template, strings.Join(missing, ", "))
				}
			}
		}
	case StepWait:
		if st.Until == nil && st.Duration <= 0 {
			v.fail(st.Line, st.ID, "wait", "wait must be longer than zero")
		}
		if st.Duration < 0 && st.Until != nil {
			v.fail(st.Line, st.ID, "wait", "wait must not be negative")
		}
	case StepWaitFor:
		v.match(st.WaitEvent, st.ID, "wait_for")
		if st.Timeout <= 0 {
			v.fail(st.Line, st.ID, "timeout", "timeout must be longer than zero")
		}
	case StepIf:
		v.customerRule(st.Rule, st.Line, st.ID, "if")
	case StepSplit:
		if len(st.Variants) < 2 {
			v.fail(st.Line, st.ID, "split", "split needs at least two variants")
		}
		names := map[string]bool{}
		for _, va := range st.Variants {
			if names[va.Name] {
				v.fail(va.Line, st.ID, "split", "variant %q given twice", va.Name)
			}
			names[va.Name] = true
			if va.Weight <= 0 {
				v.fail(va.Line, st.ID, "split", "unreachable: variant %q has weight %d", va.Name, va.Weight)
			}
		}
	case StepUpdate:
		if len(st.Attributes)+len(st.Preferences)+len(st.AddTags)+len(st.RemoveTags) == 0 {
			v.fail(st.Line, st.ID, "update", "update changes nothing")
		}
	}
	for _, b := range st.Children() {
		v.list(b.Steps, b.Name)
	}
}

// Placeholder matches a placeholder of a step value: ${survey_url},
// ${keep_url}, ${store_url}, ${customer.id} or ${context.KEY}.
var Placeholder = regexp.MustCompile(`\$\{([a-z_]+(?:\.[A-Za-z0-9_]+)?)\}`)

// anyPlaceholder matches anything written as a placeholder.
var anyPlaceholder = regexp.MustCompile(`\$\{[^}]*\}?`)

// UnknownPlaceholders returns the placeholders of v that the engine does
// not fill, which would otherwise be sent as they are or as nothing.
func UnknownPlaceholders(v string) []string {
	var bad []string
	for _, m := range anyPlaceholder.FindAllString(v, -1) {
		sub := Placeholder.FindStringSubmatch(m)
		if sub == nil || sub[0] != m {
			bad = append(bad, m)
			continue
		}
		switch name := sub[1]; {
		case name == "survey_url", name == "keep_url", name == "store_url", name == "customer.id", strings.HasPrefix(name, "context."):
		default:
			bad = append(bad, m)
		}
	}
	return bad
}

func sortedValueKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

var stepIDPattern = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,100}$`)

// link fills Next: the step after each one, climbing out of branches to
// the step after the branching step; next is where list continues.
func link(list []*Step, next string) {
	for i, s := range list {
		after := next
		if i+1 < len(list) {
			after = list[i+1].ID
		}
		s.Next = after
		for _, b := range s.Children() {
			link(b.Steps, after)
		}
	}
}

// Index returns the steps of s by id.
func (s *Scenario) Index() map[string]*Step {
	out := map[string]*Step{}
	Walk(s.Steps, func(st *Step) { out[st.ID] = st })
	return out
}

// First is the id of the first step.
func (s *Scenario) First() string {
	if len(s.Steps) == 0 {
		return ""
	}
	return s.Steps[0].ID
}
