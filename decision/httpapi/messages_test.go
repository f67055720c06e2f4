package httpapi_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// Error messages are written as they are meant to be read: "<token>", not
// "\u003ctoken\u003e", and a consent body that is not true or false says
// what was sent and what to send.
func TestErrorMessagesPointAtTheFix(t *testing.T) {
	h := runtimeAPI(t, adminToken)
	a := call(t, h, http.MethodPut, "/v1/services/requisition", requisitionDoc, "")
	if a.code != http.StatusUnauthorized || !strings.Contains(a.body, "Authorization: Bearer <token>") {
		t.Errorf("401 body %s, want the text Authorization: Bearer <token>", a.body)
	}
	auth := "Bearer " + adminToken
	if a := call(t, h, http.MethodPost, khepriPerms, `{"group": "portfolio__v1__khepri", "operations": ["CHANGE"]}`, auth); a.code/100 != 2 {
		t.Fatalf("permission request: %d %s", a.code, a.body)
	}
	for _, body := range []string{"yes", `"true"`, "1", "null", ""} {
		a := call(t, h, http.MethodPut, khepriConsent, body, auth)
		var e struct{ Message string }
		a.decode(t, &e)
		want := fmt.Sprintf("the body must be the JSON value true (consent) or false (withdraw), not %q", body)
		if a.code != http.StatusBadRequest || e.Message != want {
			t.Errorf("consent body %q: %d %q, want 400 %q", body, a.code, e.Message, want)
		}
	}
	if a := call(t, h, http.MethodPut, khepriConsent, " true\n", auth); a.code != http.StatusOK {
		t.Errorf("consent body true: %d %s", a.code, a.body)
	}
}
