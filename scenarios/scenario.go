// Package scenarios is the language of Refrain's relational programs: the
// Go types of a scenario, a YAML parser that keeps line numbers, and a
// validator whose errors name the file, the line and the step. The engine
// that runs scenarios lives in scenarios/engine, the built-in programs in
// scenarios/library.
package scenarios

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Objective is what a program is for.
type Objective string

// Objectives, from the program library.
const (
	ObjectiveBuild      Objective = "build"
	ObjectiveMaintain   Objective = "maintain"
	ObjectiveReactivate Objective = "reactivate"
	ObjectiveRetain     Objective = "retain"
)

// Valid reports whether o is a known objective.
func (o Objective) Valid() bool {
	switch o {
	case ObjectiveBuild, ObjectiveMaintain, ObjectiveReactivate, ObjectiveRetain:
		return true
	}
	return false
}

// Scenario is one program, as written in its YAML file.
type Scenario struct {
	// ID names the scenario ("welcome"): lower-case letters, digits and dashes.
	ID        string
	Title     string
	Objective Objective
	KPI       string
	// Priority, 0 to 100, is what the pressure policy weighs.
	Priority int
	// Audience is a segment rule that must hold for the customer at entry.
	Audience string
	Trigger  Trigger
	Reentry  Reentry
	// ExitWhen is a rule re-checked before every step; when it holds the
	// enrollment exits.
	ExitWhen string
	// ExitOn lists events that end the enrollment when they happen after entry.
	ExitOn []EventMatch
	// Goal is the conversion the program is measured by.
	Goal *Goal
	// Holdout is the percentage (0-99) of entrants kept out of the steps.
	Holdout int
	// ObservedFor is how long Refrain must have observed a customer (since
	// the customer's observed_since) before the program may enrol them. A
	// program that deletes must set it, to at least its inactivity window:
	// "no open in 90 days" says nothing of a customer watched for a week.
	ObservedFor time.Duration
	Steps       []*Step

	// Line is the line of the id key; File the file name it was read from;
	// Lines the line of each header key, for problems.
	File  string
	Line  int
	Lines map[string]int
}

// Destructive reports whether the program erases or suppresses customers.
func (s *Scenario) Destructive() bool {
	found := false
	var walk func([]*Step)
	walk = func(steps []*Step) {
		for _, st := range steps {
			if st.Kind == StepDeleteProfile {
				found = true
			}
			walk(st.Then)
			walk(st.Else)
			walk(st.OnEvent)
			walk(st.OnTimeout)
			for _, v := range st.Variants {
				walk(v.Steps)
			}
		}
	}
	walk(s.Steps)
	return found
}

// LineOf returns the line of header key, or of the id when it is absent.
func (s *Scenario) LineOf(key string) int {
	if l, ok := s.Lines[key]; ok {
		return l
	}
	return s.Line
}

// TriggerKind says what starts an enrollment.
type TriggerKind string

// Trigger kinds.
const (
	TriggerEvent   TriggerKind = "event"
	TriggerSegment TriggerKind = "segment"
	TriggerYearly  TriggerKind = "yearly"
	TriggerManual  TriggerKind = "manual"
)

// Trigger starts enrollments.
type Trigger struct {
	Kind TriggerKind
	// Events are the customer event types that start it (TriggerEvent).
	Events []string
	// Filter is a rule on the event's properties (TriggerEvent).
	Filter string
	// Segment is the segment id or name whose segment.entered starts it.
	Segment string
	// Field is the customer date field of a yearly trigger (first_order_at,
	// created_at); Date is a fixed MM-DD; StoreAnniversary uses the
	// configured store anniversary date.
	Field            string
	Date             string
	StoreAnniversary bool
	Line             int
}

// Reentry says whether a customer may enter again.
type Reentry struct {
	// Never is true when a customer enters at most once (the default).
	Never bool
	// After is the least time between two entries when Never is false.
	After time.Duration
}

// EventMatch is an event that ends an enrollment or counts as its goal.
type EventMatch struct {
	Event string
	// Filter is a rule on the event's properties.
	Filter string
	// Same lists properties that must equal the same key of the
	// enrollment's context (the cart_token of the abandoned cart).
	Same []string
	Line int
}

// Goal is an event within a window after entry.
type Goal struct {
	EventMatch
	Within time.Duration
}

// StepKind is what a step does.
type StepKind string

// Step kinds.
const (
	StepSend          StepKind = "send"
	StepWait          StepKind = "wait"
	StepWaitFor       StepKind = "wait_for"
	StepIf            StepKind = "if"
	StepSplit         StepKind = "split"
	StepUpdate        StepKind = "update"
	StepDeleteProfile StepKind = "delete_profile"
	StepExit          StepKind = "exit"
)

// MessageKind is marketing or transactional.
type MessageKind string

// Message kinds.
const (
	Marketing     MessageKind = "marketing"
	Transactional MessageKind = "transactional"
)

// Step is one step of a scenario.
type Step struct {
	// ID is unique in the scenario. When the file gives none it is derived
	// from the step's position ("s2", "s3.then.1").
	ID   string
	Kind StepKind
	Line int

	// Send.
	Template string
	Message  MessageKind
	Values   map[string]string

	// Wait: a duration, or until a local time of day and optional weekdays
	// in the customer's time zone.
	Duration time.Duration
	Until    *TimeOfDay
	Weekdays []time.Weekday

	// WaitFor: an event with an optional filter and a timeout, and the
	// branches for each outcome.
	WaitEvent EventMatch
	Timeout   time.Duration
	OnEvent   []*Step
	OnTimeout []*Step

	// If.
	Rule string
	Then []*Step
	Else []*Step

	// Split.
	Variants []*Variant

	// Update.
	Attributes  map[string]any
	Preferences map[string]any
	AddTags     []string
	RemoveTags  []string

	// Exit.
	Reason string

	// Next is the id of the step that follows, filled by Compile; empty
	// means the enrollment completes.
	Next string
}

// Variant is one arm of a split.
type Variant struct {
	Name   string
	Weight int
	Steps  []*Step
	Line   int
}

// TimeOfDay is a local wall-clock time.
type TimeOfDay struct{ Hour, Minute int }

// String formats t as HH:MM.
func (t TimeOfDay) String() string { return fmt.Sprintf("%02d:%02d", t.Hour, t.Minute) }

// ParseDuration reads a duration: Go's form ("90m", "1h30m") or a whole
// number of days or weeks ("3d", "2w").
func ParseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if n := len(s); n > 1 && (s[n-1] == 'd' || s[n-1] == 'w') {
		v, err := strconv.Atoi(s[:n-1])
		if err != nil {
			return 0, fmt.Errorf("duration %q: want a number of days (3d) or weeks (2w), or Go's form (36h)", s)
		}
		unit := 24 * time.Hour
		if s[n-1] == 'w' {
			unit *= 7
		}
		return time.Duration(v) * unit, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("duration %q: want 3d, 2w, 36h or 90m", s)
	}
	return d, nil
}

// FormatDuration writes d as days when it is a whole number of days.
func FormatDuration(d time.Duration) string {
	if d > 0 && d%(24*time.Hour) == 0 {
		return strconv.Itoa(int(d/(24*time.Hour))) + "d"
	}
	return d.String()
}

// Children returns the step lists nested in s, with the name of each branch.
func (s *Step) Children() []Branch {
	switch s.Kind {
	case StepWaitFor:
		return []Branch{{"on_event", s.OnEvent}, {"on_timeout", s.OnTimeout}}
	case StepIf:
		return []Branch{{"then", s.Then}, {"else", s.Else}}
	case StepSplit:
		var out []Branch
		for _, v := range s.Variants {
			out = append(out, Branch{v.Name, v.Steps})
		}
		return out
	}
	return nil
}

// Branch is a named list of steps nested in a step.
type Branch struct {
	Name  string
	Steps []*Step
}

// Walk calls fn for every step of list and their nested steps, depth first.
func Walk(list []*Step, fn func(*Step)) {
	for _, s := range list {
		fn(s)
		for _, b := range s.Children() {
			Walk(b.Steps, fn)
		}
	}
}

// Control is the first variant of the scenario's first split step (empty
// without one): the default control of its A/B test.
func (s *Scenario) Control() string {
	ctl := ""
	Walk(s.Steps, func(st *Step) {
		if ctl == "" && st.Kind == StepSplit && len(st.Variants) > 0 {
			ctl = st.Variants[0].Name
		}
	})
	return ctl
}
