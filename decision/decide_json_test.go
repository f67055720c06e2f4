package decision_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/verdict-authz/verdict/decision"
)

// bodyObserver records what the engine reports for each decision.
type bodyObserver struct {
	reqs  []decision.Request
	cache []decision.CacheResult
}

func (o *bodyObserver) ObserveDecision(_ context.Context, req *decision.Request, _ *decision.Decision, info decision.DecisionInfo) {
	o.reqs = append(o.reqs, *req)
	o.cache = append(o.cache, info.Cache)
}

var errNotJSON = errors.New("not a request")

func parseBody(b []byte) (*decision.Request, error) {
	var r decision.Request
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, errNotJSON
	}
	return &r, nil
}

// TestDecideJSONAnswersRepeatedBodiesFromTheCache: a body answered before is
// answered again without being parsed, with the same answer as Decide, its
// own decision_id, the request reported to the observer, and an encoding
// identical to json.Marshal's.
func TestDecideJSONAnswersRepeatedBodiesFromTheCache(t *testing.T) {
	bodies := []string{
		`{"tenant":"bank","member":"user_a","request":{"method":"GET","path":"/api/v1/portfolios/portfolio/7/"},"resource":{"frn":"frn:finmars:portfolios:portfolio:bonds-portfolio"}}`,
		`{"tenant":"bank","member":"user_a","action":"finmars:Currency:destroy"}`,
		`{"tenant":"nope","action":"finmars:Portfolio:list"}`,
		`{"key":"` + demoKeyTnt2 + `","member":"goldie","request":{"service":"example04","method":"GET","path":"/users/7"}}`,
		`{"tenant":"bank","member":"user_a","action":"finmars:Portfolio:list","context":{"ip":"10.0.0.1","n":[1,2]}}`,
	}
	ctx := context.Background()
	plain := demoEngine(t)
	for _, body := range bodies {
		t.Run(body, func(t *testing.T) {
			obs := &bodyObserver{}
			cached := demoEngine(t, decision.WithObserver(obs), decision.WithDecisionCache(decision.CacheOptions{Size: 100, TTL: time.Hour}))
			want, err := plain.Decide(ctx, mustParse(t, body))
			if err != nil {
				t.Fatal(err)
			}
			parses := 0
			counting := func(b []byte) (*decision.Request, error) { parses++; return parseBody(b) }
			var ids []string
			for i := 0; i < 3; i++ {
				got, err := cached.DecideJSON(ctx, []byte(body), counting)
				if err != nil {
					t.Fatal(err)
				}
				ids = append(ids, got.DecisionID)
				if !sameAnswer(got, want) {
					t.Fatalf("answer %d differs from Decide's:\n%+v\n%+v", i, got, want)
				}
				enc, err := got.AppendJSON([]byte("prefix"))
				if err != nil {
					t.Fatal(err)
				}
				std, _ := json.Marshal(got)
				if !bytes.Equal(enc, append([]byte("prefix"), std...)) {
					t.Fatalf("AppendJSON of answer %d:\n%s\njson.Marshal:\n%s", i, enc, std)
				}
			}
			if parses != 1 {
				t.Errorf("the body was parsed %d times, want once", parses)
			}
			if ids[0] == ids[1] || ids[1] == ids[2] {
				t.Errorf("decision ids repeat: %v", ids)
			}
			if len(obs.cache) != 3 || obs.cache[0] != decision.CacheMiss || obs.cache[1] != decision.CacheHit || obs.cache[2] != decision.CacheHit {
				t.Errorf("observer saw cache results %v, want miss, hit, hit", obs.cache)
			}
			for i, r := range obs.reqs {
				if r.Tenant != obs.reqs[0].Tenant || r.Member != obs.reqs[0].Member || r.Action != obs.reqs[0].Action {
					t.Errorf("observer request %d = %+v, want %+v", i, r, obs.reqs[0])
				}
			}
		})
	}
}

func TestDecideJSONErrors(t *testing.T) {
	ctx := context.Background()
	for _, cacheOn := range []bool{false, true} {
		var opts []decision.EngineOption
		if cacheOn {
			opts = append(opts, decision.WithDecisionCache(decision.CacheOptions{Size: 100, TTL: time.Hour}))
		}
		engine := demoEngine(t, opts...)
		for i := 0; i < 2; i++ { // a bad body stays bad: it is never cached
			if _, err := engine.DecideJSON(ctx, []byte(`{"tenant":`), parseBody); !errors.Is(err, errNotJSON) {
				t.Errorf("cache %v: malformed body: err = %v, want the parser's", cacheOn, err)
			}
			_, err := engine.DecideJSON(ctx, []byte(`{"tenant":"bank"}`), parseBody)
			var inErr *decision.InputError
			if !errors.As(err, &inErr) {
				t.Errorf("cache %v: a request naming neither action nor request: err = %v, want an InputError", cacheOn, err)
			}
		}
	}
}

func mustParse(t *testing.T, body string) *decision.Request {
	t.Helper()
	r, err := parseBody([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// sameAnswer compares two decisions but for their decision_id.
func sameAnswer(a, b *decision.Decision) bool {
	x, y := *a, *b
	x.DecisionID, y.DecisionID = "", ""
	ja, _ := json.Marshal(&x)
	jb, _ := json.Marshal(&y)
	return bytes.Equal(ja, jb)
}
