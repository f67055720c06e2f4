package httpapi_test

import (
	"net/http"
	"strings"
	"testing"
)

// Names in the admin paths (and the group in a delegation request's body)
// are checked before anything is looked up or written: a name that is not
// valid UTF-8, holds a control character or "/", or is longer than 128
// bytes is refused with 400 naming the field, so that every name stored is
// the one that comes back after a restart.
func TestAdminNamesAreChecked(t *testing.T) {
	h := runtimeAPI(t, "")
	const perms = "/v1/tenants/fineract/applications/rhythm/permissions"
	long := strings.Repeat("x", 201)
	bad := []string{"%00", "a%0Ab", "a%0D", "%FF", "%C3", "a%C2%85b", "x%2Fy", long}
	type request struct{ method, path, body, field string }
	var requests []request
	for _, name := range bad {
		requests = append(requests,
			request{http.MethodPut, "/v1/services/" + name, requisitionDoc, "name"},
			request{http.MethodGet, "/v1/services/" + name, "", "name"},
			request{http.MethodPost, "/v1/tenants/" + name + "/applications/rhythm/permissions", `{"group": "portfolio__v1__khepri", "operations": ["READ"]}`, "tenant"},
			request{http.MethodPost, "/v1/tenants/fineract/applications/" + name + "/permissions", `{"group": "portfolio__v1__khepri", "operations": ["READ"]}`, "application"},
			request{http.MethodGet, "/v1/tenants/" + name + "/applications/rhythm/permissions", "", "tenant"},
			request{http.MethodGet, perms + "/" + name, "", "group"},
			request{http.MethodPut, perms + "/portfolio__v1__khepri/users/" + name + "/enabled", "true", "member"},
			request{http.MethodGet, perms + "/portfolio__v1__khepri/users/" + name + "/enabled", "", "member"},
		)
	}
	for _, group := range []string{`a\u0000b`, `a\nb`} {
		requests = append(requests, request{http.MethodPost, perms, `{"group": "` + group + `", "operations": ["READ"]}`, "group"})
	}
	requests = append(requests, request{http.MethodPut, "/v1/services/a%20b", requisitionDoc, "name"},
		request{http.MethodPut, "/v1/services/a*", requisitionDoc, "name"})
	for _, r := range requests {
		a := call(t, h, r.method, r.path, r.body, "")
		var e struct{ Code, Field, Message string }
		a.decode(t, &e)
		if a.code != http.StatusBadRequest || e.Field != r.field {
			t.Errorf("%s %s: %d %s, want 400 naming %q", r.method, r.path, a.code, a.body, r.field)
		}
	}
	// The service list holds none of them.
	if a := call(t, h, http.MethodGet, "/v1/services", "", ""); strings.Contains(a.body, "xxxxxxxx") || strings.Contains(a.body, `\u0000`) {
		t.Errorf("a refused name was registered: %s", a.body)
	}
	// Names of any script are fine.
	if a := call(t, h, http.MethodPut, "/v1/services/r%C3%A9quisition", requisitionDoc, ""); a.code != http.StatusOK {
		t.Errorf("réquisition: %d %s", a.code, a.body)
	}
}
