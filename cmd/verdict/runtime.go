package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/spf13/pflag"

	"github.com/verdict-authz/verdict/loader"
	"github.com/verdict-authz/verdict/loader/state"
)

// runtimeOptions are the flags of run-time registration and delegation.
type runtimeOptions struct {
	adminTokenFile  string
	stateQuarantine bool
}

func addRuntimeFlags(f *pflag.FlagSet, o *runtimeOptions) {
	f.BoolVar(&o.stateQuarantine, "state-quarantine", false, "move --state-dir entries that cannot be read or restored to <state-dir>/quarantine/ and start without them (what they held is lost: a consent they withdrew applies again); without it verdict run refuses to start with such an entry")
	f.StringVar(&o.adminTokenFile, "admin-token-file", "", "file holding the bearer token that the write endpoints (PUT /v1/services/*, delegation requests and consents) require; without it they are open to whoever reaches --addr")
}

// setupRuntime restores the run-time registrations, delegation requests and
// consents from --state-dir (before the bundles load, which may refer to
// registered services) and reads the admin token.
func setupRuntime(ctx context.Context, ld *loader.Loader, stateDir string, db stateDBOptions, o runtimeOptions, log *slog.Logger) ([]byte, error) {
	fleet, err := setupFleet(ctx, ld, stateDir, db, log)
	if err != nil {
		return nil, err
	}
	switch {
	case fleet:
		// --state-dir, if given, holds the local copy of the fleet's state.
	case stateDir != "":
		err := ld.OpenState(ctx, stateDir, loader.StateOptions{Quarantine: o.stateQuarantine})
		var unusable *loader.UnusableStateError
		if errors.As(err, &unusable) {
			return nil, fmt.Errorf("--state-dir: %w, or start once with --state-quarantine to move them to %s and go on without them (what they held is lost)",
				err, filepath.Join(unusable.Dir, state.QuarantineDir))
		}
		if err != nil {
			return nil, fmt.Errorf("--state-dir: %w", err)
		}
	default:
		log.Warn("no --state-dir: services registered and delegations given at run time are kept in memory only and lost at a restart")
	}
	if o.adminTokenFile == "" {
		log.Warn("no --admin-token-file: the write endpoints (service registration, delegation requests and consents) are open to every caller that reaches the listen address")
		return nil, nil
	}
	token, err := readAdminToken(o.adminTokenFile)
	if err != nil {
		return nil, fmt.Errorf("--admin-token-file: %w", err)
	}
	return token, nil
}

// readAdminToken reads a token file; surrounding white space (a trailing
// newline) is not part of the token.
func readAdminToken(path string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	token := bytes.TrimSpace(data)
	if len(token) == 0 {
		return nil, errors.New(path + " is empty")
	}
	return token, nil
}
