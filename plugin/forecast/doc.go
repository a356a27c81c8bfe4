// Package forecast projects the marketing load of a period day by day:
// the sends of scheduled campaigns, waiting enrollments and yearly
// programs, weighed by the pressure policy, and the sends expected from
// new entries.
//
// It reads set-based, a few queries run side by side (one read of the
// customers with a flag per campaign audience and yearly program, the
// recipients of started campaigns, the waiting enrollments, the recent
// messages and earlier deferrals), reduces each customer to a compact key
// of what decides their plan (time zone, campaigns, enrollments with their
// step and due time, yearly dates, recent sends, earlier deferrals) and
// runs the pressure policy once per distinct key, multiplying its counts by
// the customers sharing it. Customers with equal keys get equal plans, so
// the grouping is exact (Forecaster.PerCustomer turns it off; the tests
// compare both). What the projection assumes: a wait_for step runs to its
// timeout, an if takes its then branch, a split its first variant, and new
// entries (at the last four weeks' rates) are counted but not weighed by
// the policy.
//
// It reads campaigns, scenarios and the pressure policy; it must not import
// the assembly, graph or an edge, and campaign must not import it (the
// campaign service takes its Warnings as a function).
package forecast
