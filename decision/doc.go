// Package decision is verdict's decision engine: it translates a request's
// route into an action, gathers the tenant's facts from one store snapshot,
// builds the Rego input directly as an ast.Value and evaluates the prepared
// engine query. Any error on the way is a deny (error.internal), never an
// allow.
package decision
