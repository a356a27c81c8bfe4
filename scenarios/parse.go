package scenarios

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	yaml "go.yaml.in/yaml/v3"
)

// Problem is one error in a scenario file, placed by file, line and step.
type Problem struct {
	File string
	Line int
	// Step is the id of the step the problem is in, empty for the header.
	Step string
	// Field is the key at fault ("steps[2].wait").
	Field   string
	Message string
}

// Error formats p as file:line: step: message.
func (p Problem) Error() string {
	var b strings.Builder
	if p.File != "" {
		b.WriteString(p.File)
		b.WriteString(":")
	}
	if p.Line > 0 {
		b.WriteString(strconv.Itoa(p.Line))
		b.WriteString(": ")
	} else if p.File != "" {
		b.WriteString(" ")
	}
	if p.Step != "" {
		b.WriteString("step ")
		b.WriteString(p.Step)
		b.WriteString(": ")
	}
	b.WriteString(p.Message)
	return b.String()
}

// Problems is every problem found in a file, sorted by line.
type Problems []Problem

// Error joins the problems, one a line.
func (ps Problems) Error() string {
	lines := make([]string, len(ps))
	for i, p := range ps {
		lines[i] = p.Error()
	}
	return strings.Join(lines, "\n")
}

// AsProblems returns the problems in err, or nil when err holds none.
func AsProblems(err error) Problems {
	var ps Problems
	if errors.As(err, &ps) {
		return ps
	}
	var p Problem
	if errors.As(err, &p) {
		return Problems{p}
	}
	return nil
}

type yamlParser struct {
	file     string
	problems Problems
}

func (p *yamlParser) fail(n *yaml.Node, step, field, format string, args ...any) {
	line := 0
	if n != nil {
		line = n.Line
	}
	p.problems = append(p.problems, Problem{File: p.file, Line: line, Step: step, Field: field, Message: fmt.Sprintf(format, args...)})
}

// Parse reads one scenario from YAML. It checks the shape of the file (keys,
// types, durations); Validate checks the meaning. The error is Problems.
func Parse(file string, data []byte) (*Scenario, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		line := 0
		var te *yaml.TypeError
		if !errors.As(err, &te) {
			// yaml.v3 writes "yaml: line N: ..."; keep its line.
			if _, after, ok := strings.Cut(err.Error(), "line "); ok {
				num, _, _ := strings.Cut(after, ":")
				line, _ = strconv.Atoi(num)
			}
		}
		return nil, Problems{{File: file, Line: line, Message: "not valid YAML: " + strings.TrimPrefix(err.Error(), "yaml: ")}}
	}
	p := &yamlParser{file: file}
	if len(doc.Content) == 0 {
		return nil, Problems{{File: file, Line: 1, Message: "empty file"}}
	}
	s := p.scenario(doc.Content[0])
	if len(p.problems) > 0 {
		sort.SliceStable(p.problems, func(i, j int) bool { return p.problems[i].Line < p.problems[j].Line })
		return s, p.problems
	}
	return s, nil
}

// fields reads a mapping node into key -> value nodes, reporting unknown
// and repeated keys.
func (p *yamlParser) fields(n *yaml.Node, step, where string, allowed ...string) map[string]*yaml.Node {
	out := map[string]*yaml.Node{}
	if n.Kind != yaml.MappingNode {
		p.fail(n, step, where, "%s must be a mapping", where)
		return out
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if !contains(allowed, k.Value) {
			p.fail(k, step, where+"."+k.Value, "unknown key %q in %s (allowed: %s)", k.Value, where, strings.Join(allowed, ", "))
			continue
		}
		if _, dup := out[k.Value]; dup {
			p.fail(k, step, where+"."+k.Value, "key %q given twice", k.Value)
			continue
		}
		out[k.Value] = v
	}
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func (p *yamlParser) str(n *yaml.Node, step, field string) string {
	if n == nil {
		return ""
	}
	if n.Kind != yaml.ScalarNode {
		p.fail(n, step, field, "%s must be a string", field)
		return ""
	}
	return n.Value
}

func (p *yamlParser) integer(n *yaml.Node, step, field string) int {
	if n == nil {
		return 0
	}
	v, err := strconv.Atoi(n.Value)
	if n.Kind != yaml.ScalarNode || err != nil {
		p.fail(n, step, field, "%s must be a whole number", field)
		return 0
	}
	return v
}

func (p *yamlParser) duration(n *yaml.Node, step, field string) time.Duration {
	if n == nil {
		return 0
	}
	if n.Kind != yaml.ScalarNode {
		p.fail(n, step, field, "%s must be a duration such as 3d or 36h", field)
		return 0
	}
	d, err := ParseDuration(n.Value)
	if err != nil {
		p.fail(n, step, field, "%s: %v", field, err)
	}
	return d
}

func (p *yamlParser) strings(n *yaml.Node, step, field string) []string {
	if n == nil {
		return nil
	}
	if n.Kind == yaml.ScalarNode {
		return []string{n.Value}
	}
	if n.Kind != yaml.SequenceNode {
		p.fail(n, step, field, "%s must be a string or a list of strings", field)
		return nil
	}
	var out []string
	for _, c := range n.Content {
		out = append(out, p.str(c, step, field))
	}
	return out
}

func (p *yamlParser) anyMap(n *yaml.Node, step, field string) map[string]any {
	if n == nil {
		return nil
	}
	var m map[string]any
	if n.Kind != yaml.MappingNode || n.Decode(&m) != nil {
		p.fail(n, step, field, "%s must be a mapping", field)
		return nil
	}
	return m
}

func (p *yamlParser) scenario(n *yaml.Node) *Scenario {
	s := &Scenario{File: p.file, Line: n.Line, Reentry: Reentry{Never: true}}
	f := p.fields(n, "", "scenario", "id", "title", "objective", "kpi", "priority", "audience", "trigger",
		"reentry", "exit_when", "exit_on", "goal", "holdout", "observed_for", "steps")
	if v := f["id"]; v != nil {
		s.Line = v.Line
	}
	s.Lines = map[string]int{}
	for k, v := range f {
		s.Lines[k] = v.Line
	}
	s.ID = p.str(f["id"], "", "id")
	s.Title = p.str(f["title"], "", "title")
	s.Objective = Objective(p.str(f["objective"], "", "objective"))
	s.KPI = p.str(f["kpi"], "", "kpi")
	s.Priority = p.integer(f["priority"], "", "priority")
	s.Audience = p.str(f["audience"], "", "audience")
	s.ExitWhen = p.str(f["exit_when"], "", "exit_when")
	s.Holdout = p.integer(f["holdout"], "", "holdout")
	if v := f["trigger"]; v != nil {
		s.Trigger = p.trigger(v)
	} else {
		p.fail(n, "", "trigger", "trigger is required")
	}
	if v := f["observed_for"]; v != nil {
		s.ObservedFor = p.duration(v, "", "observed_for")
	}
	if v := f["reentry"]; v != nil {
		if v.Value != "never" {
			s.Reentry = Reentry{After: p.duration(v, "", "reentry")}
		}
	}
	if v := f["exit_on"]; v != nil {
		if v.Kind != yaml.SequenceNode {
			p.fail(v, "", "exit_on", "exit_on must be a list of events")
		} else {
			for _, c := range v.Content {
				s.ExitOn = append(s.ExitOn, p.eventMatch(c, "", "exit_on"))
			}
		}
	}
	if v := f["goal"]; v != nil {
		g := &Goal{}
		gf := p.fields(v, "", "goal", "event", "filter", "same", "within")
		g.Event, g.Filter, g.Same, g.Line = p.str(gf["event"], "", "goal.event"), p.str(gf["filter"], "", "goal.filter"),
			p.strings(gf["same"], "", "goal.same"), v.Line
		g.Within = p.duration(gf["within"], "", "goal.within")
		s.Goal = g
	}
	if v := f["steps"]; v != nil {
		s.Steps = p.steps(v, "s", "steps")
	} else {
		p.fail(n, "", "steps", "steps are required")
	}
	return s
}

func (p *yamlParser) eventMatch(n *yaml.Node, step, field string) EventMatch {
	if n.Kind == yaml.ScalarNode {
		return EventMatch{Event: n.Value, Line: n.Line}
	}
	f := p.fields(n, step, field, "event", "filter", "same")
	return EventMatch{Event: p.str(f["event"], step, field+".event"), Filter: p.str(f["filter"], step, field+".filter"),
		Same: p.strings(f["same"], step, field+".same"), Line: n.Line}
}

func (p *yamlParser) trigger(n *yaml.Node) Trigger {
	t := Trigger{Line: n.Line}
	if n.Kind == yaml.ScalarNode {
		if n.Value == "manual" {
			t.Kind = TriggerManual
		} else {
			p.fail(n, "", "trigger", "trigger must be manual or a mapping with event, segment or yearly")
		}
		return t
	}
	f := p.fields(n, "", "trigger", "event", "filter", "segment", "yearly", "manual")
	set := 0
	if v := f["event"]; v != nil {
		set++
		t.Kind, t.Events = TriggerEvent, p.strings(v, "", "trigger.event")
	}
	t.Filter = p.str(f["filter"], "", "trigger.filter")
	if v := f["segment"]; v != nil {
		set++
		t.Kind, t.Segment = TriggerSegment, p.str(v, "", "trigger.segment")
	}
	if v := f["yearly"]; v != nil {
		set++
		t.Kind = TriggerYearly
		switch y := p.str(v, "", "trigger.yearly"); {
		case y == "store_anniversary":
			t.StoreAnniversary = true
		case len(y) == 5 && y[2] == '-':
			if _, err := time.Parse("01-02", y); err != nil {
				p.fail(v, "", "trigger.yearly", "yearly date %q: want MM-DD", y)
			}
			t.Date = y
		default:
			t.Field = y
		}
	}
	if v := f["manual"]; v != nil {
		set++
		t.Kind = TriggerManual
	}
	if set != 1 {
		p.fail(n, "", "trigger", "trigger needs exactly one of event, segment, yearly or manual")
	}
	if t.Filter != "" && t.Kind != TriggerEvent {
		p.fail(f["filter"], "", "trigger.filter", "filter applies to event triggers only")
	}
	return t
}

var stepKeys = []string{"id", "send", "kind", "values", "wait", "until", "weekday", "wait_for", "timeout", "on_event",
	"on_timeout", "if", "then", "else", "split", "update", "delete_profile", "exit"}

// steps reads a list of steps; prefix derives ids ("s" -> s1, s2).
func (p *yamlParser) steps(n *yaml.Node, prefix, field string) []*Step {
	if n.Kind != yaml.SequenceNode {
		p.fail(n, "", field, "%s must be a list of steps", field)
		return nil
	}
	var out []*Step
	for i, c := range n.Content {
		out = append(out, p.step(c, prefix+strconv.Itoa(i+1), fmt.Sprintf("%s[%d]", field, i)))
	}
	return out
}

func (p *yamlParser) step(n *yaml.Node, autoID, field string) *Step {
	s := &Step{ID: autoID, Line: n.Line}
	f := p.fields(n, autoID, field, stepKeys...)
	if v := f["id"]; v != nil {
		s.ID = p.str(v, autoID, field+".id")
	}
	id := s.ID
	var kinds []string
	for _, k := range []StepKind{StepSend, StepWait, StepWaitFor, StepIf, StepSplit, StepUpdate, StepDeleteProfile, StepExit} {
		if f[string(k)] != nil {
			kinds = append(kinds, string(k))
			s.Kind = k
		}
	}
	if len(kinds) != 1 {
		p.fail(n, id, field, "a step needs exactly one of send, wait, wait_for, if, split, update, delete_profile, exit (got %d)", len(kinds))
		return s
	}
	allowed := map[StepKind][]string{
		StepSend: {"kind", "values"}, StepWait: {"until", "weekday"}, StepWaitFor: {"timeout", "on_event", "on_timeout"},
		StepIf: {"then", "else"},
	}
	for k, v := range f {
		if k == "id" || k == string(s.Kind) {
			continue
		}
		if !contains(allowed[s.Kind], k) {
			p.fail(v, id, field+"."+k, "key %q does not belong to a %s step", k, s.Kind)
		}
	}
	v := f[string(s.Kind)]
	switch s.Kind {
	case StepSend:
		s.Template = p.str(v, id, field+".send")
		s.Message = MessageKind(p.str(f["kind"], id, field+".kind"))
		if s.Message == "" {
			s.Message = Marketing
		}
		if vals := f["values"]; vals != nil {
			s.Values = map[string]string{}
			vf := vals
			if vf.Kind != yaml.MappingNode {
				p.fail(vf, id, field+".values", "values must be a mapping of strings")
			} else {
				for i := 0; i+1 < len(vf.Content); i += 2 {
					s.Values[vf.Content[i].Value] = p.str(vf.Content[i+1], id, field+".values."+vf.Content[i].Value)
				}
			}
		}
	case StepWait:
		if v.Kind == yaml.ScalarNode && v.Value != "" {
			s.Duration = p.duration(v, id, field+".wait")
		} else if v.Kind != yaml.ScalarNode {
			p.fail(v, id, field+".wait", "wait must be a duration (3d); use until and weekday beside it for a local time")
		}
		if u := f["until"]; u != nil {
			t, err := time.Parse("15:04", p.str(u, id, field+".until"))
			if err != nil {
				p.fail(u, id, field+".until", "until %q: want a local time HH:MM", u.Value)
			} else {
				s.Until = &TimeOfDay{Hour: t.Hour(), Minute: t.Minute()}
			}
		}
		for _, d := range p.strings(f["weekday"], id, field+".weekday") {
			wd, ok := weekdays[strings.ToLower(d)]
			if !ok {
				p.fail(f["weekday"], id, field+".weekday", "weekday %q: want monday..sunday", d)
			}
			s.Weekdays = append(s.Weekdays, wd)
		}
		if len(s.Weekdays) > 0 && s.Until == nil {
			s.Until = &TimeOfDay{}
		}
	case StepWaitFor:
		s.WaitEvent = p.eventMatch(v, id, field+".wait_for")
		s.Timeout = p.duration(f["timeout"], id, field+".timeout")
		if f["timeout"] == nil {
			p.fail(n, id, field+".timeout", "wait_for needs a timeout")
		}
		if b := f["on_event"]; b != nil {
			s.OnEvent = p.steps(b, id+".on_event.", field+".on_event")
		}
		if b := f["on_timeout"]; b != nil {
			s.OnTimeout = p.steps(b, id+".on_timeout.", field+".on_timeout")
		}
	case StepIf:
		s.Rule = p.str(v, id, field+".if")
		if b := f["then"]; b != nil {
			s.Then = p.steps(b, id+".then.", field+".then")
		} else {
			p.fail(n, id, field+".then", "if needs then")
		}
		if b := f["else"]; b != nil {
			s.Else = p.steps(b, id+".else.", field+".else")
		}
	case StepSplit:
		if v.Kind != yaml.SequenceNode {
			p.fail(v, id, field+".split", "split must be a list of variants")
			break
		}
		for i, c := range v.Content {
			vf := p.fields(c, id, fmt.Sprintf("%s.split[%d]", field, i), "variant", "weight", "steps")
			name := p.str(vf["variant"], id, "variant")
			if name == "" {
				name = string(rune('a' + i))
			}
			va := &Variant{Name: name, Weight: p.integer(vf["weight"], id, "weight"), Line: c.Line}
			if vf["weight"] == nil {
				va.Weight = 1
			}
			if st := vf["steps"]; st != nil {
				va.Steps = p.steps(st, id+"."+name+".", fmt.Sprintf("%s.split[%d].steps", field, i))
			}
			s.Variants = append(s.Variants, va)
		}
	case StepUpdate:
		uf := p.fields(v, id, field+".update", "attributes", "preferences", "tags", "remove_tags")
		s.Attributes = p.anyMap(uf["attributes"], id, field+".update.attributes")
		s.Preferences = p.anyMap(uf["preferences"], id, field+".update.preferences")
		s.AddTags = p.strings(uf["tags"], id, field+".update.tags")
		s.RemoveTags = p.strings(uf["remove_tags"], id, field+".update.remove_tags")
	case StepDeleteProfile:
		if v.Value != "true" {
			p.fail(v, id, field+".delete_profile", "write delete_profile: true")
		}
	case StepExit:
		s.Reason = v.Value
		if s.Reason == "" || s.Reason == "true" {
			s.Reason = "exit step"
		}
	}
	return s
}

var weekdays = map[string]time.Weekday{"sunday": time.Sunday, "monday": time.Monday, "tuesday": time.Tuesday,
	"wednesday": time.Wednesday, "thursday": time.Thursday, "friday": time.Friday, "saturday": time.Saturday,
	"sun": time.Sunday, "mon": time.Monday, "tue": time.Tuesday, "wed": time.Wednesday, "thu": time.Thursday,
	"fri": time.Friday, "sat": time.Saturday}
