package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime/debug"
	"time"

	"github.com/open-policy-agent/opa/v1/bundle"
	"github.com/open-policy-agent/opa/v1/keys"
	"github.com/spf13/pflag"

	"github.com/verdict-authz/verdict/loader"
)

// liveOptions are the flags of live bundles: watching files, polling
// remote bundles, verifying signatures and the change pipeline.
type liveOptions struct {
	watch             bool
	debounce          time.Duration
	disabled          []string
	pollInterval      time.Duration
	verificationKey   string
	verificationKeyID string
	verificationAlg   string
	verificationScope string
}

func addLiveFlags(f *pflag.FlagSet, o *liveOptions) {
	f.BoolVar(&o.watch, "watch", false, "reload bundle directories and tarballs when their files change; a bundle that fails (even at start) leaves the last good one serving and /health/ready at 503")
	f.DurationVar(&o.debounce, "debounce", loader.DefaultDebounce, "with --watch, collapse a bundle's file events within this window into one reload")
	f.StringArrayVar(&o.disabled, "disable-processor", nil, "turn off a change-pipeline processor by name (repeatable; see GET /v1/processors)")
	f.DurationVar(&o.pollInterval, "poll-interval", loader.DefaultPollInterval, "how often to poll remote (http/https) bundles for a new version; 0 polls only at start")
	f.StringVar(&o.verificationKey, "bundle-verification-key", "", "PEM public key (or HMAC secret) file: bundles must carry a valid OPA signature (.signatures.json)")
	f.StringVar(&o.verificationKeyID, "bundle-verification-key-id", "default", "the key ID that signatures name")
	f.StringVar(&o.verificationAlg, "bundle-verification-alg", "RS256", "the signing algorithm of --bundle-verification-key")
	f.StringVar(&o.verificationScope, "bundle-verification-scope", "", "the scope signatures must carry")
}

// loadBundles loads the sources and keeps them live: remote bundles are
// restored from the state directory (or downloaded) and polled, local ones
// are watched with --watch. Without --watch any failure at start is fatal;
// with --watch the server starts anyway with what could be loaded and is
// not ready until every bundle loads.
func loadBundles(ctx context.Context, ld *loader.Loader, sources []loader.Source, o runOptions, log *slog.Logger) (map[string]string, error) {
	if err := ld.Pipeline().Disable(o.live.disabled...); err != nil {
		return nil, fmt.Errorf("--disable-processor: %w", err)
	}
	if o.live.verificationKey != "" {
		vc, err := verificationConfig(o.live)
		if err != nil {
			return nil, err
		}
		for i := range sources {
			if sources[i].FS == nil {
				sources[i].Verification = vc
			}
		}
	}
	// A Remote reports itself to the loader, which hands it every version of
	// its bundle that is installed (at start, by a poll, or by a retry after
	// another change) to persist as the last good copy.
	remotes := map[string]*loader.Remote{}
	for i, src := range sources {
		if !src.IsRemote() {
			continue
		}
		r := loader.NewRemote(ld, src, loader.RemoteOptions{Interval: o.live.pollInterval, StateDir: o.stateDir, Log: log})
		remotes[src.Name] = r
		if restored, ok := r.Restore(); ok {
			log.Info("remote bundle restored from the state directory", "bundle", src.Name, "etag", restored.ETag)
			sources[i] = restored
			continue
		}
		fetchCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
		got, _, err := r.Fetch(fetchCtx)
		cancel()
		if err != nil {
			if !o.live.watch {
				return nil, fmt.Errorf("bundle %s: download: %w", src.Name, err)
			}
			log.Error("remote bundle could not be downloaded; polling goes on", "bundle", src.Name, "error", err)
			ld.ReportDownloadError(src, err)
			continue
		}
		sources[i] = got
	}
	var revisions map[string]string
	var watcher *loader.Watcher
	if o.live.watch {
		// Watch before the first read: an edit made while the bundles are
		// read, compiled and stored (seconds for a large one) is then an
		// event, which the kernel holds until the watcher runs below and
		// which reloads that bundle; a watcher made after the load would
		// never see it. An event for a file the load read already ends as
		// an unchanged reload.
		w, err := loader.NewWatcher(ld, sources, loader.WatchOptions{Debounce: o.live.debounce, Log: log})
		if err != nil {
			return nil, err
		}
		watcher = w
		gen, err := ld.LoadAvailable(ctx, sources)
		if err != nil {
			log.Error("some bundles could not be loaded; serving the rest, not ready until they are fixed", "error", err)
		}
		if gen != nil {
			revisions = gen.Revisions
		}
	} else {
		gen, err := ld.LoadAll(ctx, sources)
		if err != nil {
			return nil, err
		}
		revisions = gen.Revisions
	}
	// Reading the bundles decoded every data file into short-lived maps,
	// several times the size of what stays loaded: give that memory back to
	// the OS now rather than carry it as resident memory (one collection,
	// once, before the server is ready).
	debug.FreeOSMemory()
	for _, r := range remotes {
		if o.live.pollInterval > 0 {
			go r.Run(ctx)
		}
	}
	if watcher != nil {
		go func() {
			if err := watcher.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
				log.Error("bundle watcher stopped", "error", err)
			}
		}()
		log.Info("watching bundles", "debounce", o.live.debounce)
	}
	return revisions, nil
}

func verificationConfig(o liveOptions) (*bundle.VerificationConfig, error) {
	key, err := os.ReadFile(o.verificationKey)
	if err != nil {
		return nil, fmt.Errorf("--bundle-verification-key: %w", err)
	}
	// Not keys.NewKeyConfig: it stats its argument as a path first, which
	// fails for a PEM text holding a run of over 255 characters without "/".
	kc := &keys.Config{Key: string(key), Algorithm: o.verificationAlg, Scope: o.verificationScope}
	return bundle.NewVerificationConfig(map[string]*bundle.KeyConfig{o.verificationKeyID: kc}, o.verificationKeyID, o.verificationScope, nil), nil
}
