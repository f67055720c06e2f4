package decision

import (
	"fmt"

	"github.com/open-policy-agent/opa/v1/ast"
)

// resultKeys are the keys the engine's results are read by, built once so
// that reading a decision allocates no key terms.
var resultKeys = func() map[string]*ast.Term {
	m := map[string]*ast.Term{}
	for _, k := range []string{"allow", "status", "visibility", "fields", "reasons", "layer", "code", "effect",
		"message", "policy", "statement", "resource_group", "soajs_code", "acl_source", "kind", "filter", "exclude"} {
		m[k] = ast.StringTerm(k)
	}
	return m
}()

func keyTerm(name string) *ast.Term {
	if t, ok := resultKeys[name]; ok {
		return t
	}
	return ast.StringTerm(name)
}

// decisionFromAST reads the engine's decision object, rendering the
// messages of its reasons from mf (see messageFacts.render).
func decisionFromAST(v ast.Value, mf *messageFacts) (*Decision, error) {
	obj, ok := v.(ast.Object)
	if !ok {
		return nil, fmt.Errorf("decision is %T, not an object", v)
	}
	d := &Decision{}
	var err error
	if d.Allow, err = boolField(obj, "allow"); err != nil {
		return nil, err
	}
	if d.Status, err = intField(obj, "status"); err != nil {
		return nil, err
	}
	if d.Visibility, err = stringField(obj, "visibility"); err != nil {
		return nil, err
	}
	fields, ok := obj.Get(keyTerm("fields")).Value.(*ast.Array)
	if !ok {
		return nil, fmt.Errorf("decision.fields is not an array")
	}
	d.Fields = make([]string, 0, fields.Len())
	for i := 0; i < fields.Len(); i++ {
		s, ok := fields.Elem(i).Value.(ast.String)
		if !ok {
			return nil, fmt.Errorf("decision.fields[%d] is not a string", i)
		}
		d.Fields = append(d.Fields, string(s))
	}
	reasons, ok := obj.Get(keyTerm("reasons")).Value.(*ast.Array)
	if !ok {
		return nil, fmt.Errorf("decision.reasons is not an array")
	}
	if d.Reasons, err = reasonsFromAST(reasons, mf); err != nil {
		return nil, fmt.Errorf("decision.%w", err)
	}
	if d.Allow && d.Status != 200 {
		return nil, fmt.Errorf("decision allows with status %d", d.Status)
	}
	return d, nil
}

// reasonsFromAST reads a list of reasons, rendering the messages Rego left
// to Go from mf.
func reasonsFromAST(reasons *ast.Array, mf *messageFacts) ([]Reason, error) {
	out := make([]Reason, reasons.Len())
	for i := range out {
		if err := reasonFromAST(&out[i], reasons.Elem(i).Value, mf); err != nil {
			return nil, fmt.Errorf("reasons[%d]: %w", i, err)
		}
	}
	return out, nil
}

// reasonFromAST reads one reason into r. A reason without a message gets
// the one mf renders for it.
func reasonFromAST(r *Reason, v ast.Value, mf *messageFacts) error {
	obj, ok := v.(ast.Object)
	if !ok {
		return fmt.Errorf("not an object")
	}
	if err := reasonFields(r, obj); err != nil {
		return err
	}
	var err error
	if obj.Get(keyTerm("message")) != nil {
		r.Message, err = stringField(obj, "message")
		return err
	}
	args := reasonArgs{Reason: r}
	if obj.Get(keyTerm("acl_source")) != nil {
		if args.aclSource, err = stringField(obj, "acl_source"); err != nil {
			return err
		}
	}
	r.Message, err = mf.render(args)
	return err
}

// reasonFields reads every field of a reason but its message.
func reasonFields(r *Reason, obj ast.Object) error {
	var err error
	if r.Layer, err = stringField(obj, "layer"); err != nil {
		return err
	}
	if r.Code, err = stringField(obj, "code"); err != nil {
		return err
	}
	if r.Effect, err = stringField(obj, "effect"); err != nil {
		return err
	}
	if t := obj.Get(keyTerm("policy")); t != nil {
		if r.Policy, err = stringField(obj, "policy"); err != nil {
			return err
		}
	}
	if t := obj.Get(keyTerm("statement")); t != nil {
		n, err := intField(obj, "statement")
		if err != nil {
			return err
		}
		r.Statement = &n
	}
	if t := obj.Get(keyTerm("resource_group")); t != nil {
		if r.ResourceGroup, err = stringField(obj, "resource_group"); err != nil {
			return err
		}
	}
	if t := obj.Get(keyTerm("soajs_code")); t != nil {
		if r.SoajsCode, err = intField(obj, "soajs_code"); err != nil {
			return err
		}
	}
	return nil
}

func stringField(obj ast.Object, key string) (string, error) {
	t := obj.Get(keyTerm(key))
	if t == nil {
		return "", fmt.Errorf("%s is missing", key)
	}
	s, ok := t.Value.(ast.String)
	if !ok {
		return "", fmt.Errorf("%s is not a string", key)
	}
	return string(s), nil
}

func boolField(obj ast.Object, key string) (bool, error) {
	t := obj.Get(keyTerm(key))
	if t == nil {
		return false, fmt.Errorf("%s is missing", key)
	}
	b, ok := t.Value.(ast.Boolean)
	if !ok {
		return false, fmt.Errorf("%s is not a boolean", key)
	}
	return bool(b), nil
}

func intField(obj ast.Object, key string) (int, error) {
	t := obj.Get(keyTerm(key))
	if t == nil {
		return 0, fmt.Errorf("%s is missing", key)
	}
	n, ok := t.Value.(ast.Number)
	if !ok {
		return 0, fmt.Errorf("%s is not a number", key)
	}
	i, ok := n.Int()
	if !ok {
		return 0, fmt.Errorf("%s is not an integer", key)
	}
	return i, nil
}

// DecidingReason is the code of the decision's first deny, or of its first
// grant: the one reason a proxy passes on in a header.
func (d *Decision) DecidingReason() string {
	for _, r := range d.Reasons {
		if r.Effect == "deny" {
			return r.Code
		}
	}
	if len(d.Reasons) > 0 {
		return d.Reasons[0].Code
	}
	return ""
}
