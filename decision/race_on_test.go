//go:build race

package decision_test

// raceEnabled: the race detector instruments allocations too, so
// allocation budgets do not apply.
const raceEnabled = true
