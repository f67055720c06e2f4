package decision_test

import (
	"context"
	"io/fs"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/verdict-authz/verdict/bundles"
	"github.com/verdict-authz/verdict/decision"
	"github.com/verdict-authz/verdict/loader"
	"github.com/verdict-authz/verdict/loader/loadertest"
)

// demoKeyApp2 is the key of tnt1's app2, whose ACL lets it call example03.
const demoKeyApp2 = "4ea5db4c70b6168aeede6a8a56cb46246ca38b1b4f801f090d5821bd76b339e34b8ddb9ac2cb7ffee220cf3e463ac9cdf3902e91720c8f56684d7d88287affc0092eeb37648e7bde4f565f509b1b384127022bc2c1c1581f4ba50e28564d1c5c"

// demoWithKeyExpiring is the demo bundle with tnt1's app2 key expiring at
// expires.
func demoWithKeyExpiring(t *testing.T, expires time.Time) fs.FS {
	t.Helper()
	demo := bundles.Demo()
	out := fstest.MapFS{}
	err := fs.WalkDir(demo, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(demo, path)
		out[path] = &fstest.MapFile{Data: b, Mode: 0o644}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	const tnt1 = "verdict/tenants/tnt1/data.yaml"
	plain := "- key: " + demoKeyApp2
	data := string(out[tnt1].Data)
	if !strings.Contains(data, plain) {
		t.Fatalf("%s no longer lists app2's key as %q", tnt1, plain)
	}
	data = strings.Replace(data, plain, `- {key: `+demoKeyApp2+`, expires: "`+expires.UTC().Format(time.RFC3339Nano)+`"}`, 1)
	out[tnt1] = &fstest.MapFile{Data: []byte(data), Mode: 0o644}
	return out
}

// A cached decision never outlives a time-bound fact it read: an answer
// that used a key is not reused once the key has expired, however long the
// TTL, through Decide and through DecideJSON (a body answered byte for
// byte). A decision that read no such fact keeps the TTL. Regression: the
// allow of a key that had just expired was answered from the cache until
// the TTL ran out.
func TestCachedDecisionEndsWhenAKeyItReadExpires(t *testing.T) {
	start := time.Now()
	keyExpires := start.Add(time.Hour)
	obs := &bodyObserver{}
	engine, _ := loadertest.Load(t, []loader.Source{{Name: "demo", FS: demoWithKeyExpiring(t, keyExpires)}},
		decision.WithObserver(obs), decision.WithDecisionCache(decision.CacheOptions{Size: 1000, TTL: 24 * time.Hour}))
	clock := start
	decision.SetCacheClock(engine.Current(), func() time.Time { return clock })

	const (
		keyBody   = `{"key":"` + demoKeyApp2 + `","request":{"method":"GET","path":"/buildName"}}`
		plainBody = `{"tenant":"bank","member":"user_a","action":"finmars:Portfolio:list"}`
	)
	ctx := context.Background()
	ask := func(body string) decision.CacheResult {
		t.Helper()
		d, err := engine.Decide(ctx, mustParse(t, body))
		if err != nil {
			t.Fatal(err)
		}
		if !d.Allow {
			t.Fatalf("%s: not allowed: %+v", body, d.Reasons)
		}
		return obs.cache[len(obs.cache)-1]
	}
	askJSON := func(body string) decision.CacheResult {
		t.Helper()
		d, err := engine.DecideJSON(ctx, []byte(body), parseBody)
		if err != nil {
			t.Fatal(err)
		}
		if !d.Allow {
			t.Fatalf("%s: not allowed: %+v", body, d.Reasons)
		}
		return obs.cache[len(obs.cache)-1]
	}
	for _, body := range []string{keyBody, plainBody} {
		if got := ask(body); got != decision.CacheMiss {
			t.Fatalf("%s: first decision %q, want a miss", body, got)
		}
		if got := ask(body); got != decision.CacheHit {
			t.Fatalf("%s: second decision %q, want a hit", body, got)
		}
	}
	jsonBody := strings.Replace(keyBody, `"key"`, ` "key"`, 1) // other bytes, same request
	if got := askJSON(jsonBody); got != decision.CacheHit {
		t.Fatalf("a body of a cached request: %q, want a hit", got)
	}
	wrapped := strings.Replace(keyBody, `"key"`, `"context":{"n":1},"key"`, 1) // a new request
	if got := askJSON(wrapped); got != decision.CacheMiss {
		t.Fatalf("a new body: %q, want a miss", got)
	}
	if got := askJSON(wrapped); got != decision.CacheHit {
		t.Fatalf("the body again: %q, want a hit", got)
	}

	clock = keyExpires.Add(-time.Nanosecond)
	if got := ask(keyBody); got != decision.CacheHit {
		t.Errorf("just before the key expires: %q, want a hit", got)
	}
	// The engine's clock has not reached the key's expiry: Rego allows
	// again, so each miss below is an evaluation, not a deny.
	clock = keyExpires
	if got := ask(keyBody); got != decision.CacheMiss {
		t.Errorf("once the key has expired: %q, want a miss", got)
	}
	clock = keyExpires.Add(time.Minute)
	if got := askJSON(wrapped); got != decision.CacheMiss {
		t.Errorf("a body once the key has expired: %q, want a miss", got)
	}
	if got := ask(plainBody); got != decision.CacheHit {
		t.Errorf("a decision without a key after the key's expiry: %q, want a hit (its TTL runs)", got)
	}
}
