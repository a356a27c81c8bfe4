// Package engine runs scenarios: it stores their versions, enrolls
// customers when a trigger fires, and advances enrollments step by step.
// Enrollment state lives in the database (next_run_at), so waiting costs
// nothing; workers on every replica claim due enrollments in batches under
// a lease (FOR UPDATE SKIP LOCKED on PostgreSQL), and each step commits
// with its step_runs row, so a step runs at most once even when a replica
// dies in the middle. The clock is a dependency: the simulator and the
// tests run the same engine on a virtual one.
package engine

import (
	"time"

	"github.com/uptrace/bun"
)

// Status is a scenario's status.
type Status string

// Scenario statuses.
const (
	StatusActive   Status = "ACTIVE"
	StatusPaused   Status = "PAUSED"
	StatusArchived Status = "ARCHIVED"
)

// Valid reports whether s is a known status.
func (s Status) Valid() bool {
	return s == StatusActive || s == StatusPaused || s == StatusArchived
}

// State is an enrollment's state.
type State string

// Enrollment states.
const (
	// StateActive is running or waiting for next_run_at.
	StateActive State = "active"
	// StateHoldout was kept out of the steps for measuring uplift; its goal
	// is still recorded.
	StateHoldout State = "holdout"
	// StateCompleted ran its last step.
	StateCompleted State = "completed"
	// StateExited left early: exit_when, an exit_on event, an exit step,
	// a paused or archived scenario, or by hand.
	StateExited State = "exited"
)

// Scenario is a stored scenario.
type Scenario struct {
	bun.BaseModel `bun:"table:scenarios"`
	ID            string    `bun:"id,pk"`
	Status        Status    `bun:"status,notnull"`
	Version       int       `bun:"version,notnull"`
	Origin        string    `bun:"origin,notnull"`
	CreatedAt     time.Time `bun:"created_at,notnull"`
	UpdatedAt     time.Time `bun:"updated_at,notnull"`
}

// Version is one saved definition of a scenario.
type Version struct {
	bun.BaseModel `bun:"table:scenario_versions"`
	ScenarioID    string    `bun:"scenario_id,pk"`
	Version       int       `bun:"version,pk"`
	Definition    string    `bun:"definition,notnull"`
	CreatedAt     time.Time `bun:"created_at,notnull"`
}

// Enrollment is one customer in one scenario.
type Enrollment struct {
	bun.BaseModel `bun:"table:enrollments"`
	ID            int64          `bun:"id,pk,autoincrement"`
	ScenarioID    string         `bun:"scenario_id,notnull"`
	Version       int            `bun:"version,notnull"`
	CustomerPK    int64          `bun:"customer_id,notnull"`
	EntryKey      string         `bun:"entry_key,notnull"`
	State         State          `bun:"state,notnull"`
	Step          string         `bun:"step,notnull"`
	StepStartedAt time.Time      `bun:"step_started_at,notnull"`
	NextRunAt     *time.Time     `bun:"next_run_at"`
	LockedBy      *string        `bun:"locked_by"`
	LockedUntil   *time.Time     `bun:"locked_until"`
	Variant       *string        `bun:"variant"`
	Holdout       bool           `bun:"holdout,notnull"`
	Context       map[string]any `bun:"context,notnull,type:jsonb"`
	EnteredAt     time.Time      `bun:"entered_at,notnull"`
	FinishedAt    *time.Time     `bun:"finished_at"`
	ExitReason    *string        `bun:"exit_reason"`
	GoalAt        *time.Time     `bun:"goal_at"`
	UpdatedAt     time.Time      `bun:"updated_at,notnull"`
}

// StepRun records that a step of an enrollment ran; (enrollment, step,
// occurrence) is unique.
type StepRun struct {
	bun.BaseModel `bun:"table:step_runs"`
	ID            int64      `bun:"id,pk,autoincrement"`
	EnrollmentID  int64      `bun:"enrollment_id,notnull"`
	ScenarioID    string     `bun:"scenario_id,notnull"`
	Step          string     `bun:"step,notnull"`
	Occurrence    int        `bun:"occurrence,notnull"`
	Kind          string     `bun:"kind,notnull"`
	Outcome       string     `bun:"outcome,notnull"`
	MessageID     *string    `bun:"message_id"`
	Worker        *string    `bun:"worker"`
	DueAt         *time.Time `bun:"due_at"`
	RanAt         time.Time  `bun:"ran_at,notnull"`
}

// cursor is a leased position: how far the event follower has read, or
// the last day a sweep ran.
type cursor struct {
	bun.BaseModel `bun:"table:scenario_cursors"`
	Name          string     `bun:"name,pk"`
	Position      int64      `bun:"position,notnull"`
	LockedBy      *string    `bun:"locked_by"`
	LockedUntil   *time.Time `bun:"locked_until"`
	UpdatedAt     time.Time  `bun:"updated_at,notnull"`
}
