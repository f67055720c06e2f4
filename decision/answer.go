package decision

// Decision is the answer to a Request (README "HTTP API").
type Decision struct {
	DecisionID string            `json:"decision_id"`
	Allow      bool              `json:"allow"`
	Status     int               `json:"status"`
	Tenant     string            `json:"tenant"`
	Action     string            `json:"action,omitempty"`
	Visibility string            `json:"visibility"`
	Fields     []string          `json:"fields"`
	Reasons    []Reason          `json:"reasons"`
	Revision   map[string]string `json:"revision"`
	// StateRevision is the revision of the shared run-time state the
	// decision was made at (fleet mode; absent without a state database).
	StateRevision uint64 `json:"state_revision,omitempty"`

	// cached is set on a decision the decision cache keeps. A pointer
	// keeps Decision small: every answer from the cache copies it.
	cached *cachedForm
}

// Reason is one ground of a decision.
type Reason struct {
	Layer         string `json:"layer"`
	Code          string `json:"code"`
	Effect        string `json:"effect"`
	Message       string `json:"message"`
	Policy        string `json:"policy,omitempty"`
	Statement     *int   `json:"statement,omitempty"`
	ResourceGroup string `json:"resource_group,omitempty"`
	SoajsCode     int    `json:"soajs_code,omitempty"`
}
