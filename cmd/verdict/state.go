package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/verdict-authz/verdict/loader"
	"github.com/verdict-authz/verdict/loader/state"
	"github.com/verdict-authz/verdict/loader/state/pgstate"
)

// EnvStateDB names the variable that may hold the state database's DSN
// (envName("state-db"), applied by bindRunConfig like every VERDICT_<FLAG>).
const EnvStateDB = "VERDICT_STATE_DB"

// stateDBOptions are the flags of the fleet's shared state database.
type stateDBOptions struct {
	dsn             string
	dsnFile         string
	maxStaleness    time.Duration
	consistencyWait time.Duration
}

func addStateDBFlags(f *pflag.FlagSet, o *stateDBOptions) {
	f.StringVar(&o.dsn, "state-db", "", "PostgreSQL DSN of the run-time state shared by a fleet of sidecars (also "+EnvStateDB+"; prefer --state-db-file, so that the password shows in no process list)")
	f.StringVar(&o.dsnFile, "state-db-file", "", "file holding the PostgreSQL DSN of the shared run-time state (e.g. a mounted Secret)")
}

func addFleetFlags(f *pflag.FlagSet, o *stateDBOptions) {
	addStateDBFlags(f, o)
	f.DurationVar(&o.maxStaleness, "state-max-staleness", 30*time.Second, "with --state-db, how long the run-time state may go without being confirmed current before consent-based allows are denied (state.stale) and /health/ready answers 503")
	f.DurationVar(&o.consistencyWait, "state-consistency-wait", 2*time.Second, `with --state-db, how long a decision carrying "consistency": {"at_least": N} waits for revision N before it is denied (state.stale)`)
}

// resolveDSN is the DSN from --state-db-file or --state-db ("" when
// neither is given); at most one of them may be set. Each may come from the
// command line, the environment (VERDICT_STATE_DB, VERDICT_STATE_DB_FILE)
// or the --config file (bindRunConfig).
func (o *stateDBOptions) resolveDSN() (string, error) {
	if o.dsn != "" && o.dsnFile != "" {
		return "", errors.New("give the state database once: --state-db (or " + EnvStateDB + ") or --state-db-file (or VERDICT_STATE_DB_FILE), on the command line, in the environment or in the --config file")
	}
	if o.dsnFile != "" {
		data, err := os.ReadFile(o.dsnFile)
		if err != nil {
			return "", fmt.Errorf("--state-db-file: %w", err)
		}
		dsn := strings.TrimSpace(string(data))
		if dsn == "" {
			return "", fmt.Errorf("--state-db-file: %s is empty", o.dsnFile)
		}
		return dsn, nil
	}
	return o.dsn, nil
}

// openStateDB opens the state database named by the flags (nil when none).
func (o *stateDBOptions) open(ctx context.Context) (*pgstate.Store, error) {
	dsn, err := o.resolveDSN()
	if err != nil || dsn == "" {
		return nil, err
	}
	return pgstate.Open(ctx, dsn)
}

// setupFleet makes the run-time state the fleet's when a state database is
// given, and reports whether it was.
func setupFleet(ctx context.Context, ld *loader.Loader, stateDir string, o stateDBOptions, log *slog.Logger) (bool, error) {
	db, err := o.open(ctx)
	if err != nil {
		return false, fmt.Errorf("--state-db: %w", err)
	}
	if db == nil {
		return false, nil
	}
	log.Info("run-time state is shared through the database", "database", db.Description(), "state_dir", stateDir,
		"max_staleness", o.maxStaleness)
	err = ld.OpenFleet(ctx, loader.FleetOptions{DB: db, StateDir: stateDir, MaxStaleness: o.maxStaleness, ConsistencyWait: o.consistencyWait})
	if err != nil {
		db.Close()
		return false, fmt.Errorf("--state-db: %w", err)
	}
	return true, nil
}

func newStateCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "state",
		Short: "Manage the run-time state database shared by a fleet (--state-db)",
	}
	cmd.AddCommand(newStateMigrateCommand(), newStateImportCommand())
	return cmd
}

func newStateMigrateCommand() *cobra.Command {
	var o stateDBOptions
	cmd := &cobra.Command{
		Use:   "migrate",
		Short: "Create or upgrade the state database's schema (verdict run does it too)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			db, err := o.required(cmd.Context())
			if err != nil {
				return err
			}
			defer db.Close()
			from, to, err := db.Migrate(cmd.Context())
			if err != nil {
				return err
			}
			if from == to {
				fmt.Fprintf(cmd.OutOrStdout(), "%s: schema version %d is current\n", db.Description(), to)
			} else {
				fmt.Fprintf(cmd.OutOrStdout(), "%s: schema migrated from version %d to %d\n", db.Description(), from, to)
			}
			return nil
		},
	}
	addStateDBFlags(cmd.Flags(), &o)
	bindRunConfig(cmd)
	return cmd
}

func (o *stateDBOptions) required(ctx context.Context) (*pgstate.Store, error) {
	db, err := o.open(ctx)
	if err != nil {
		return nil, err
	}
	if db == nil {
		return nil, errors.New("name the database with --state-db, --state-db-file or " + EnvStateDB)
	}
	return db, nil
}

func newStateImportCommand() *cobra.Command {
	var o stateDBOptions
	var fromDir string
	cmd := &cobra.Command{
		Use:   "import --from-dir DIR",
		Short: "Move the run-time state of a --state-dir into the state database",
		Long: "Reads every registration, delegation request and consent of a state directory and writes them to\n" +
			"the state database in one transaction, as changes every sidecar applies. Entries the directory\n" +
			"cannot use are listed and the import refused. Run it once, before the sidecars use --state-db.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if fromDir == "" {
				return errors.New("--from-dir is required")
			}
			contents, err := state.Read(fromDir)
			if err != nil {
				return err
			}
			if len(contents.Problems) > 0 {
				for _, p := range contents.Problems {
					fmt.Fprintln(cmd.ErrOrStderr(), p.String())
				}
				return fmt.Errorf("%d entries of %s cannot be used; fix or remove them first", len(contents.Problems), fromDir)
			}
			db, err := o.required(cmd.Context())
			if err != nil {
				return err
			}
			defer db.Close()
			if _, _, err := db.Migrate(cmd.Context()); err != nil {
				return err
			}
			host, _ := os.Hostname()
			rev, n, err := db.Import(cmd.Context(), contents, "import:"+host)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "imported %d services and %d delegations (%d changes) from %s into %s; state revision %d\n",
				len(contents.Services), len(contents.Delegations), n, fromDir, db.Description(), rev)
			return nil
		},
	}
	cmd.Flags().StringVar(&fromDir, "from-dir", "", "the state directory to import")
	addStateDBFlags(cmd.Flags(), &o)
	bindRunConfig(cmd)
	return cmd
}
