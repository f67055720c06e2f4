package client_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/verdict-authz/verdict/bundles"
	"github.com/verdict-authz/verdict/decision"
	"github.com/verdict-authz/verdict/decision/client"
	"github.com/verdict-authz/verdict/decision/httpapi"
	"github.com/verdict-authz/verdict/loader"
	"github.com/verdict-authz/verdict/loader/loadertest"
)

// startSidecar serves verdict's HTTP API over the embedded demo bundle in
// process, standing in for the `verdict run` a service talks to. It returns
// the sidecar's base URL and a function that stops it.
func startSidecar() (string, func()) {
	engine := decision.NewEngine(loadertest.Quiet)
	ld, err := loader.New(engine, loadertest.Quiet)
	if err != nil {
		log.Fatal(err)
	}
	demo := loader.Source{Name: "demo", Location: "(embedded demo bundle)", FS: bundles.Demo()}
	if _, err := ld.LoadAll(context.Background(), []loader.Source{demo}); err != nil {
		log.Fatal(err)
	}
	srv := httptest.NewServer(httpapi.New(engine, httpapi.Options{Log: loadertest.Quiet, Runtime: ld}))
	return srv.URL, func() { srv.Close(); ld.Close() }
}

// A service asks whether a member may do what an HTTP request does; the
// sidecar translates the route into an action.
func ExampleClient_Decide() {
	url, stop := startSidecar()
	defer stop()

	c := client.New(url)
	d, err := c.Decide(context.Background(), &client.Request{
		Tenant:   "bank",
		Member:   "user_a",
		Request:  &client.HTTPRequest{Method: "GET", Path: "/api/v1/portfolios/portfolio/7/"},
		Resource: &client.Resource{FRN: "frn:finmars:portfolios:portfolio:bonds-portfolio"},
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(d.Allow, d.Status, d.Action)
	// Output: true 200 finmars:Portfolio:retrieve
}

// A denial carries its reasons; Denial is the first deny, the one to show.
func ExampleDecision_Denial() {
	url, stop := startSidecar()
	defer stop()

	c := client.New(url)
	d, err := c.Decide(context.Background(), &client.Request{Tenant: "bank", Member: "intern", Action: "finmars:Portfolio:list"})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(d.Allow, d.Status, d.Denial().Code)
	// Output: false 403 iam.no_allow
}

// A batch asks several questions for one caller, answered in order on one
// snapshot of the sidecar's state.
func ExampleClient_DecideBatch() {
	url, stop := startSidecar()
	defer stop()

	c := client.New(url)
	b, err := c.DecideBatch(context.Background(), &client.BatchRequest{
		Tenant: "bank",
		Member: "user_a",
		Items: []client.BatchItem{
			{Action: "finmars:Portfolio:list"},
			{Request: &client.HTTPRequest{Method: "DELETE", Path: "/api/v1/portfolios/portfolio/3/"}},
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	for _, d := range b.Results {
		fmt.Println(d.Action, d.Allow)
	}
	// Output:
	// finmars:Portfolio:list true
	// finmars:Portfolio:destroy false
}

// A list endpoint asks for a plan and filters its query with it, instead of
// asking about every row.
func ExampleClient_Plan() {
	url, stop := startSidecar()
	defer stop()

	c := client.New(url)
	p, err := c.Plan(context.Background(), &client.PlanRequest{
		Tenant: "bank", Member: "user_a", Action: "finmars:Portfolio:list", Model: "portfolios:portfolio",
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(p.Kind, p.Filter["owner"])
	// Output: some user_a
}

// A question verdict cannot answer as asked is an *Error naming the field,
// not a decision.
func ExampleError() {
	url, stop := startSidecar()
	defer stop()

	c := client.New(url)
	_, err := c.Decide(context.Background(), &client.Request{Tenant: "bank", Action: "a:b:c:d"})
	var apiErr *client.Error
	if errors.As(err, &apiErr) {
		fmt.Println(apiErr.StatusCode, apiErr.Field)
	}
	// Output: 400 action
}

// Middleware puts verdict in front of a service's handler: a request the
// sidecar denies never reaches it.
func ExampleMiddleware() {
	url, stop := startSidecar()
	defer stop()

	portfolios := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "portfolio 7")
	})
	h := client.Middleware(portfolios, client.MiddlewareOptions{
		Client: client.New(url),
		Tenant: "bank",
		// In a service this comes from a verified token or session.
		Member: client.HeaderMember("X-Member"),
		Resource: func(*http.Request) *client.Resource {
			return &client.Resource{FRN: "frn:finmars:portfolios:portfolio:bonds-portfolio"}
		},
	})
	for _, member := range []string{"user_a", "user_b"} {
		r := httptest.NewRequest("GET", "/api/v1/portfolios/portfolio/7/", nil)
		r.Header.Set("X-Member", member)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		body, _ := io.ReadAll(w.Result().Body)
		fmt.Println(member, w.Code, strings.Contains(string(body), "portfolio 7"))
	}
	// Output:
	// user_a 200 true
	// user_b 403 false
}
