package decision

import (
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/verdict-authz/verdict/loader/route"
)

// Reason messages are rendered here, in Go, from what Rego decided: the
// engine's rules return the reasons of the common layers (tenant, route,
// package, IAM and the engine's own error.internal) as structured values -
// layer, code, effect and the arguments only Rego knows (policy,
// statement, resource_group, soajs_code, acl_source) - and Go writes the
// human-readable message from the code, those arguments and the request.
// A sprintf in Rego costs the evaluator tens of allocations per reason;
// this costs one or two.
//
// Reasons whose message Rego does give are kept as they are: the
// extension rules' (bundle authors write them), and the rare state and
// delegation reasons, whose messages need facts only Rego derives. A
// reason Rego returns without a message and with a code this file does not
// know is an error, and so a deny (error.internal): a message is never
// made up.

// messageFacts are the request's facts the messages name, as the engine's
// rules saw them in input.
type messageFacts struct {
	tenant   string // input.tenant
	member   string // input.member
	action   string // input.action
	resource *Resource
	// keyPackage and packageRoute are the package layer's: the key's
	// package and the route whose API it judged (nil when it judged none).
	keyPackage   string
	packageRoute *route.Match
}

// messageFactsOf are the facts of req as gather built them into f.
func messageFactsOf(req *Request, f *facts) messageFacts {
	return messageFacts{
		tenant:       f.tenantCode,
		member:       req.Member,
		action:       f.action,
		resource:     req.Resource,
		keyPackage:   f.keyPackage,
		packageRoute: f.packageRoute,
	}
}

// reasonArgs are a reason's arguments besides its code: the Reason fields
// Rego fills and acl_source, which names the ACL the package layer judged
// by and is not part of the answer.
type reasonArgs struct {
	*Reason
	aclSource string
}

// soajsMessages are SOAJS's own messages for its error codes.
var soajsMessages = map[int]string{
	130: "Unknown service.",
	132: "A valid key is needed to access any API.",
	154: "Access denied: The service is not available in your current package.",
	157: "You do not belong to a group with access to this System.",
	158: "You need to be logged in to access this System.",
	159: "System api access is restricted. api is not in provision.",
	160: "You do not belong to a group with access to this system API.",
	161: "You need to be logged in to access this API.",
}

// errIncompleteMessage is error.internal's message when a layer of the
// rules could not reach an outcome.
const errIncompleteMessage = "The decision could not be made: a fact the rules need is missing or malformed."

// render writes the message of a reason Rego returned without one.
func (mf *messageFacts) render(a reasonArgs) (string, error) {
	r := a.Reason
	switch r.Code {
	case "tenant.unknown":
		if mf.tenant == "" {
			return "The request names no tenant.", nil
		}
		return "Unknown tenant " + strconv.Quote(mf.tenant) + ".", nil
	case "key.invalid", "route.unknown", "package.service_denied", "package.group_denied",
		"package.login_required", "package.api_restricted", "package.api_group_denied",
		"package.api_login_required":
		if m, ok := soajsMessages[r.SoajsCode]; ok {
			return m, nil
		}
	case "package.allow":
		if p := mf.packageRoute; p != nil && a.aclSource != "" {
			return fmt.Sprintf("The %s ACL of package %s allows %s %s on service %s.", a.aclSource, mf.keyPackage, p.Method, p.Template, p.Service), nil
		}
	case "iam.anonymous":
		return "Authentication is required: the request names no member.", nil
	case "iam.unknown_member":
		return "Member " + strconv.Quote(mf.member) + " is not a member of tenant " + strconv.Quote(mf.tenant) + ".", nil
	case "iam.admin":
		return "Member " + strconv.Quote(mf.member) + " is an admin: access policies are not evaluated.", nil
	case "iam.no_allow":
		name, resource := mf.actionParts()
		return "User: frn:finmars:users:member:" + mf.member + " is not authorized to perform: " + name +
			" on resource: " + resource + " because no access policy allows the '" + name + "' action.", nil
	case "iam.explicit_deny":
		if r.Statement != nil {
			name, resource := mf.actionParts()
			if frn := mf.frn(); frn != "" {
				resource = frn
			}
			return "User: frn:finmars:users:member:" + mf.member + " is not authorized to perform: " + name +
				" on resource: " + resource + " with an explicit deny in access policy " + strconv.Quote(r.Policy) +
				", statement " + strconv.Itoa(*r.Statement) + ".", nil
		}
	case "iam.allow":
		if r.Statement != nil {
			return "Access policy " + strconv.Quote(r.Policy) + ", statement " + strconv.Itoa(*r.Statement) + ", allows " + mf.action + ".", nil
		}
	case "resource.owner":
		return "Member " + strconv.Quote(mf.member) + " owns the object.", nil
	case "resource.any":
		if mf.frn() == "" {
			return "The request names no object; the statement covers the action.", nil
		}
		return "The statement covers every object.", nil
	case "resource.object":
		return "The statement names the object " + mf.frn() + ".", nil
	case "resource.group":
		if r.ResourceGroup != "" {
			return "The object is in resource group " + strconv.Quote(r.ResourceGroup) + ".", nil
		}
	case "resource.public":
		return mf.frn() + " is a reference to an object the member may not read: only its public fields (id, user_code, public_name) are visible.", nil
	case "resource.not_covered":
		name, _ := mf.actionParts()
		return "User: frn:finmars:users:member:" + mf.member + " is not authorized to perform: " + name +
			" on resource: " + mf.frn() + " because no access policy that allows the '" + name + "' action covers this object.", nil
	case "error.internal":
		if r.Layer == "engine" {
			return errIncompleteMessage, nil
		}
	}
	return "", fmt.Errorf("reason %s (layer %s) has no message and none can be rendered for it", r.Code, r.Layer)
}

// actionParts splits the action as input.facts.action does
// (route.SplitAction): finmars:Portfolio:list is named list on the
// resource finmars:Portfolio.
func (mf *messageFacts) actionParts() (name, resource string) {
	return route.SplitAction(mf.action)
}

// frn is the requested object as the request names it ("" for none).
func (mf *messageFacts) frn() string {
	if mf.resource == nil {
		return ""
	}
	return mf.resource.FRN
}

// renderDocument fills in the messages of the reasons in doc, a document
// of the engine as the Data API answers it (JSON values: objects, arrays,
// strings, json.Number): every object with a string layer, code and
// effect and no message is a reason Rego left to Go, and gets the message
// /v1/decide would give it; its acl_source, an argument only, goes.
func (mf *messageFacts) renderDocument(doc any) error {
	switch v := doc.(type) {
	case []any:
		for _, e := range v {
			if err := mf.renderDocument(e); err != nil {
				return err
			}
		}
	case map[string]any:
		if r, args, ok := reasonOfDocument(v); ok {
			msg, err := mf.render(reasonArgs{Reason: r, aclSource: args})
			if err != nil {
				return err
			}
			v["message"] = msg
			delete(v, "acl_source")
			return nil
		}
		for _, e := range v {
			if err := mf.renderDocument(e); err != nil {
				return err
			}
		}
	}
	return nil
}

// reasonOfDocument reads obj as a reason without a message: the fields
// render reads, and acl_source. ok is false for any other object.
func reasonOfDocument(obj map[string]any) (r *Reason, aclSource string, ok bool) {
	if _, has := obj["message"]; has {
		return nil, "", false
	}
	layer, isLayer := obj["layer"].(string)
	code, isCode := obj["code"].(string)
	effect, isEffect := obj["effect"].(string)
	if !isLayer || !isCode || !isEffect {
		return nil, "", false
	}
	r = &Reason{Layer: layer, Code: code, Effect: effect}
	r.Policy, _ = obj["policy"].(string)
	r.ResourceGroup, _ = obj["resource_group"].(string)
	aclSource, _ = obj["acl_source"].(string)
	if n, isNumber := obj["statement"].(json.Number); isNumber {
		if i, err := n.Int64(); err == nil {
			statement := int(i)
			r.Statement = &statement
		}
	}
	if n, isNumber := obj["soajs_code"].(json.Number); isNumber {
		if i, err := n.Int64(); err == nil {
			r.SoajsCode = int(i)
		}
	}
	return r, aclSource, true
}
