package main

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/verdict-authz/verdict/decision"
	"github.com/verdict-authz/verdict/decision/access"
	"github.com/verdict-authz/verdict/loader"
)

func newAccessCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "access",
		Short: "Review access: who can perform an action, what a member can do",
		Long: "access asks the decision engine, for every member of a tenant (who-can) or every\n" +
			"action of its vocabulary (what-can), the question /v1/decide would be asked, and\n" +
			"lists the allowed ones with Rego's reasons. It loads the bundles given with --bundle\n" +
			"(the embedded demo when none), as `verdict eval` does.",
	}
	cmd.AddCommand(newWhoCanCommand(), newWhatCanCommand())
	return cmd
}

// accessFlags are the flags who-can and what-can share.
type accessFlags struct {
	bundles []string
	tenant  string
	frn     string
	key     string
	format  string
}

func (f *accessFlags) add(cmd *cobra.Command) {
	cmd.Flags().StringArrayVar(&f.bundles, "bundle", nil, "bundle directory or .tar.gz, as PATH or NAME=PATH (repeatable; the embedded demo when none)")
	cmd.Flags().StringVar(&f.tenant, "tenant", "", "the tenant to review (required)")
	cmd.Flags().StringVar(&f.frn, "frn", "", "ask about this object (an object FRN); without it, about no object")
	cmd.Flags().StringVar(&f.key, "key", "", "application key the questions carry (tenants that apply the package layer need one)")
	cmd.Flags().StringVar(&f.format, "format", "table", "output: table, json or csv")
	_ = cmd.MarkFlagRequired("tenant")
}

func newWhoCanCommand() *cobra.Command {
	var f accessFlags
	var action string
	cmd := &cobra.Command{
		Use:   "who-can --tenant T --action A",
		Short: "List every member of the tenant allowed the action, with the reasons",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runAccessReview(cmd, f, access.WhoCan, access.Query{Tenant: f.tenant, Action: action, FRN: f.frn, Key: f.key}, "member")
		},
	}
	f.add(cmd)
	cmd.Flags().StringVar(&action, "action", "", "the action, e.g. finmars:Portfolio:list (required)")
	_ = cmd.MarkFlagRequired("action")
	return cmd
}

func newWhatCanCommand() *cobra.Command {
	var f accessFlags
	var member string
	cmd := &cobra.Command{
		Use:   "what-can --tenant T --member M",
		Short: "List every action of the tenant's vocabulary the member is allowed, with the reasons",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runAccessReview(cmd, f, access.WhatCan, access.Query{Tenant: f.tenant, Member: member, FRN: f.frn, Key: f.key}, "action")
		},
	}
	f.add(cmd)
	cmd.Flags().StringVar(&member, "member", "", "the member (required)")
	_ = cmd.MarkFlagRequired("member")
	return cmd
}

type reviewFunc func(context.Context, *decision.Pinned, access.Query, access.Progress) (*access.Page, error)

// runAccessReview loads the bundles, runs the review page by page (with a
// progress bar on a terminal) and prints every grant.
func runAccessReview(cmd *cobra.Command, f accessFlags, run reviewFunc, q access.Query, subject string) error {
	if f.format != "table" && f.format != "json" && f.format != "csv" {
		return fmt.Errorf("--format %q: use table, json or csv", f.format)
	}
	sources, err := bundleSources(f.bundles)
	if err != nil {
		return err
	}
	pinned, err := loadPinned(cmd, sources)
	if err != nil {
		return err
	}
	bar := newProgressBar(cmd.ErrOrStderr(), subject+"s")
	defer bar.Done()
	q.Limit = access.MaxLimit
	var all *access.Page
	for {
		offset := 0
		if all != nil {
			offset = all.Asked
		}
		page, err := run(cmd.Context(), pinned, q, func(done, total int) { bar.Set(offset+done, offset+total) })
		if err != nil {
			return err
		}
		if all == nil {
			all = page
		} else {
			all.Grants = append(all.Grants, page.Grants...)
			all.Asked += page.Asked
		}
		if page.NextCursor == "" {
			break
		}
		q.Cursor = page.NextCursor
	}
	all.NextCursor = ""
	bar.Done()
	return printGrants(cmd.OutOrStdout(), f.format, subject, all)
}

// loadPinned loads the bundles into a new engine and pins its generation.
func loadPinned(cmd *cobra.Command, sources []loader.Source) (*decision.Pinned, error) {
	quiet := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	engine := decision.NewEngine(quiet)
	ld, err := loader.New(engine, quiet)
	if err != nil {
		return nil, err
	}
	defer ld.Close()
	if _, err := ld.LoadAll(cmd.Context(), sources); err != nil {
		return nil, fmt.Errorf("load bundles:\n%w", err)
	}
	return engine.Pin()
}

// printGrants prints a review's grants as a table, JSON (the page, with
// every grant) or CSV (one line per grant).
func printGrants(w io.Writer, format, subject string, page *access.Page) error {
	name := func(g access.Grant) string {
		if subject == "member" {
			return g.Member
		}
		return g.Action
	}
	switch format {
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(page)
	case "csv":
		cw := csv.NewWriter(w)
		_ = cw.Write([]string{"tenant", subject, "visibility", "reasons"})
		for _, g := range page.Grants {
			_ = cw.Write([]string{page.Tenant, name(g), g.Visibility, reasonsText(g.Reasons)})
		}
		cw.Flush()
		return cw.Error()
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "%s\tVISIBILITY\tREASONS\n", strings.ToUpper(subject))
	for _, g := range page.Grants {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", name(g), g.Visibility, reasonsText(g.Reasons))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "%d of %d %ss allowed\n", len(page.Grants), page.Asked, subject)
	return err
}

// reasonsText is a decision's reasons on one line: each code with what it
// names, e.g. "iam.allow banking-full#0; resource.any banking-full#0".
func reasonsText(reasons []decision.Reason) string {
	parts := make([]string, len(reasons))
	for i, r := range reasons {
		s := r.Code
		if r.Policy != "" {
			s += " " + r.Policy
			if r.Statement != nil {
				s += "#" + strconv.Itoa(*r.Statement)
			}
		}
		if r.ResourceGroup != "" {
			s += " group=" + r.ResourceGroup
		}
		if r.SoajsCode != 0 {
			s += " soajs=" + strconv.Itoa(r.SoajsCode)
		}
		parts[i] = s
	}
	return strings.Join(parts, "; ")
}
