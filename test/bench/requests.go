package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/verdict-authz/verdict/test/worldgen"
)

// question is one decision request in verdict's shape; OPA gets the same
// object as its input.
type question struct {
	Tenant   string    `json:"tenant"`
	Member   string    `json:"member,omitempty"`
	Action   string    `json:"action"`
	Resource *resource `json:"resource,omitempty"`
}

type resource struct {
	FRN   string `json:"frn,omitempty"`
	Owner string `json:"owner,omitempty"`
}

func questions(rs []worldgen.Request) []question {
	out := make([]question, len(rs))
	for i, r := range rs {
		q := question{Tenant: r.Tenant, Member: r.Member, Action: r.Action}
		if r.FRN != "" {
			q.Resource = &resource{FRN: r.FRN}
		}
		out[i] = q
	}
	return out
}

// sampleQuestions is the agreement sample: uniform and Zipf questions with
// a few edge cases mixed in (unknown tenant and member, anonymous, owner).
func sampleQuestions(w *worldgen.World, n int, zipfS float64) []question {
	half := n / 2
	qs := append(questions(w.Requests(21, half)), questions(w.ZipfRequests(22, n-half, zipfS))...)
	for i := range qs {
		q := &qs[i]
		switch {
		case i%97 == 5:
			q.Tenant = "no-such-tenant"
		case i%53 == 7:
			q.Member = "no-such-member"
		case i%61 == 11:
			q.Member = ""
		case i%37 == 13 && q.Resource != nil:
			q.Resource.Owner = q.Member
		}
	}
	// Random questions rarely hit the one object a Deny names: replace a
	// few with questions that do.
	probes := denyProbes(w, max(1, n/50))
	for i, p := range probes {
		qs[(i*50+17)%len(qs)] = p
	}
	return qs
}

// denyProbes asks, for Deny statements of the world, about the object they
// name, by a member holding the policy directly, for an action they match.
func denyProbes(w *worldgen.World, n int) []question {
	var out []question
	tenants := make([]string, 0, len(w.Tenants))
	for code := range w.Tenants {
		tenants = append(tenants, code)
	}
	sort.Strings(tenants)
	for _, code := range tenants {
		t := w.Tenants[code]
		members, _ := t["members"].(map[string]any)
		policies, _ := t["access_policies"].(map[string]any)
		names := make([]string, 0, len(members))
		for name := range members {
			names = append(names, name)
		}
		sort.Strings(names)
		for _, name := range names {
			m, _ := members[name].(map[string]any)
			if m["is_admin"] == true {
				continue
			}
			own, _ := m["policies"].([]any)
			for _, p := range own {
				pol, _ := policies[p.(string)].(map[string]any)
				stmts, _ := pol["Statement"].([]any)
				for _, st := range stmts {
					s, _ := st.(map[string]any)
					frn, ok := s["Resource"].(string)
					if s["Effect"] != "Deny" || !ok {
						continue
					}
					actions, _ := s["Action"].([]any)
					if len(actions) == 0 {
						continue
					}
					action := actions[0].(string)
					if strings.HasSuffix(action, ":*") {
						action = strings.TrimSuffix(action, "*") + "list"
					}
					out = append(out, question{Tenant: code, Member: name, Action: action, Resource: &resource{FRN: frn}})
					if len(out) == n {
						return out
					}
				}
			}
		}
	}
	return out
}

// bodyFor serializes a question for a target kind.
func bodyFor(kind string, q question) []byte {
	var v any = q
	if kind == "opa" {
		v = map[string]any{"input": q}
	}
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

func bodiesFor(kind string, qs []question) [][]byte {
	out := make([][]byte, len(qs))
	for i, q := range qs {
		out[i] = bodyFor(kind, q)
	}
	return out
}

// answer is the part of a decision the comparison looks at.
type answer struct {
	Allow bool
	Code  string
}

// parseAnswer reads verdict's decision (the first deny reason's code for a
// deny, the first grant's for an allow) or the comparison policy's.
func parseAnswer(kind string, body []byte) (answer, error) {
	switch kind {
	case "verdict":
		var d struct {
			Allow   *bool `json:"allow"`
			Reasons []struct {
				Code   string `json:"code"`
				Effect string `json:"effect"`
			} `json:"reasons"`
		}
		if err := json.Unmarshal(body, &d); err != nil || d.Allow == nil {
			return answer{}, fmt.Errorf("not a decision: %.200s", body)
		}
		a := answer{Allow: *d.Allow}
		for _, r := range d.Reasons {
			if a.Allow || r.Effect == "deny" {
				a.Code = r.Code
				break
			}
		}
		return a, nil
	case "opa":
		var d struct {
			Result *struct {
				Allow bool   `json:"allow"`
				Code  string `json:"code"`
			} `json:"result"`
		}
		if err := json.Unmarshal(body, &d); err != nil || d.Result == nil {
			return answer{}, fmt.Errorf("not a decision: %.200s", body)
		}
		return answer{Allow: d.Result.Allow, Code: d.Result.Code}, nil
	}
	return answer{}, fmt.Errorf("no answer format for %s", kind)
}

// askAll asks every question once (4 at a time) and returns the answers.
func askAll(ctx context.Context, s *server, qs []question) ([]answer, error) {
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	defer client.CloseIdleConnections()
	out := make([]answer, len(qs))
	errs := make([]error, 4)
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < len(qs); i += 4 {
				if ctx.Err() != nil {
					errs[w] = ctx.Err()
					return
				}
				req, _ := http.NewRequestWithContext(ctx, "POST", "http://"+s.addr+s.t.decidePath, bytes.NewReader(bodyFor(s.t.Kind, qs[i])))
				req.Header.Set("Content-Type", "application/json")
				resp, err := client.Do(req)
				if err != nil {
					errs[w] = err
					return
				}
				body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
				resp.Body.Close()
				if err != nil || resp.StatusCode != 200 {
					errs[w] = fmt.Errorf("question %d: HTTP %d %v: %.200s", i, resp.StatusCode, err, body)
					return
				}
				if out[i], err = parseAnswer(s.t.Kind, body); err != nil {
					errs[w] = fmt.Errorf("question %d: %w", i, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, fmt.Errorf("%s: %w", s.t.Name, err)
		}
	}
	return out, nil
}

// compareAnswers lists the questions two servers answer differently.
func compareAnswers(qs []question, a, b []answer, aName, bName string) []string {
	var out []string
	for i := range qs {
		if a[i] != b[i] {
			q, _ := json.Marshal(qs[i])
			out = append(out, fmt.Sprintf("%s: %s says %v/%s, %s says %v/%s", q, aName, a[i].Allow, a[i].Code, bName, b[i].Allow, b[i].Code))
		}
	}
	return out
}

// outcomeMix summarizes the answers: the share of each code.
func outcomeMix(as []answer) string {
	counts := map[string]int{}
	allowed := 0
	for _, a := range as {
		counts[a.Code]++
		if a.Allow {
			allowed++
		}
	}
	codes := make([]string, 0, len(counts))
	for c := range counts {
		codes = append(codes, c)
	}
	sort.Slice(codes, func(i, j int) bool { return counts[codes[i]] > counts[codes[j]] })
	parts := []string{fmt.Sprintf("allowed %.1f%%", 100*float64(allowed)/float64(len(as)))}
	for _, c := range codes {
		parts = append(parts, fmt.Sprintf("%s %.1f%%", c, 100*float64(counts[c])/float64(len(as))))
	}
	return strings.Join(parts, ", ")
}

// writeWorld generates the scale's world and writes the verdict bundle and
// the OPA policy bundle under dir, unless a previous run wrote the same
// world there. It returns the world and how long generation and writing
// took.
func writeWorld(dir string, spec worldgen.Spec) (*worldgen.World, time.Duration, error) {
	began := time.Now()
	w := worldgen.Generate(spec)
	worldDir := filepath.Join(dir, "world")
	stamp := filepath.Join(dir, "world.spec")
	want, _ := json.Marshal(spec)
	if got, err := os.ReadFile(stamp); err != nil || !bytes.Equal(got, want) {
		os.RemoveAll(worldDir)
		os.Remove(stamp)
		if err := w.WriteBundle(worldDir, fmt.Sprintf("bench-%d", spec.Seed)); err != nil {
			return nil, 0, err
		}
		if err := os.WriteFile(stamp, want, 0o644); err != nil {
			return nil, 0, err
		}
	}
	policyDir := filepath.Join(dir, "opa-policy")
	if err := os.MkdirAll(filepath.Join(policyDir, "bench"), 0o755); err != nil {
		return nil, 0, err
	}
	if err := os.WriteFile(filepath.Join(policyDir, ".manifest"), []byte(`{"revision":"bench","roots":["bench"]}`), 0o644); err != nil {
		return nil, 0, err
	}
	if err := os.WriteFile(filepath.Join(policyDir, "bench", "authz.rego"), []byte(authzRego), 0o644); err != nil {
		return nil, 0, err
	}
	return w, time.Since(began), nil
}
