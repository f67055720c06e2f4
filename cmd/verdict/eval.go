package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/spf13/cobra"

	"github.com/verdict-authz/verdict/decision"
	"github.com/verdict-authz/verdict/loader"
)

func newEvalCommand() *cobra.Command {
	var (
		bundleArgs []string
		explain    bool
	)
	cmd := &cobra.Command{
		Use:   "eval [FILE|-]",
		Short: "Make one decision from a request document (a file, or stdin when FILE is - or absent)",
		Long: "eval loads the bundles (the embedded demo when no --bundle is given), reads one\n" +
			"decision request as POST /v1/decide takes it, and prints the decision as JSON.\n" +
			"With --explain it prints which layer, policy and statement decided instead.\n" +
			"It exits 0 when the decision allows, 2 when it denies and 1 on an error.",
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var in io.Reader = cmd.InOrStdin()
			if len(args) == 1 && args[0] != "-" {
				f, err := os.Open(args[0])
				if err != nil {
					return err
				}
				defer f.Close()
				in = f
			}
			raw, err := io.ReadAll(in)
			if err != nil {
				return fmt.Errorf("read request: %w", err)
			}
			var req decision.Request
			dec := json.NewDecoder(bytes.NewReader(raw))
			dec.DisallowUnknownFields()
			dec.UseNumber()
			if err := dec.Decode(&req); err != nil {
				return fmt.Errorf("read request: %w", err)
			}
			sources, err := bundleSources(bundleArgs)
			if err != nil {
				return err
			}
			quiet := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: slog.LevelWarn}))
			engine := decision.NewEngine(quiet)
			ld, err := loader.New(engine, quiet)
			if err != nil {
				return err
			}
			if _, err := ld.LoadAll(cmd.Context(), sources); err != nil {
				return fmt.Errorf("load bundles:\n%w", err)
			}
			d, err := engine.Decide(cmd.Context(), &req)
			if err != nil {
				var inErr *decision.InputError
				if errors.As(err, &inErr) {
					return fmt.Errorf("bad request: %w", err)
				}
				return err
			}
			out := cmd.OutOrStdout()
			if explain {
				fmt.Fprint(out, engine.Current().Explain(d))
			} else {
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				if err := enc.Encode(d); err != nil {
					return err
				}
			}
			if !d.Allow {
				return &exitError{code: 2}
			}
			return nil
		},
	}
	cmd.Flags().StringArrayVar(&bundleArgs, "bundle", nil, "bundle directory or .tar.gz, as PATH or NAME=PATH (repeatable)")
	cmd.Flags().BoolVar(&explain, "explain", false, "print which layer, policy and statement decided, for a person")
	return cmd
}
