package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/verdict-authz/verdict/decision"
	"github.com/verdict-authz/verdict/decision/access"
	"github.com/verdict-authz/verdict/loader"
)

// Default bounds of verdict diff.
const (
	defaultMaxQuestions = 100000
	defaultExamples     = 5
)

func newDiffCommand() *cobra.Command {
	var (
		bundleArgs    []string
		candidateArgs []string
		requestsFile  string
		maxQuestions  int
		examples      int
		format        string
	)
	cmd := &cobra.Command{
		Use:   "diff --bundle OLD... --candidate NEW... [--requests FILE]",
		Short: "Show which decisions a new bundle version would change",
		Long: "diff loads the bundles given with --bundle (the embedded demo when none) and, beside\n" +
			"them, the same set with each --candidate in place of the bundle of its name, asks both\n" +
			"the same decision questions and reports the answers that differ.\n\n" +
			"A candidate replaces the --bundle of the same name (NAME=PATH, or the name taken from\n" +
			"its path); a lone candidate replaces a lone --bundle whatever its name; a candidate\n" +
			"whose name is no bundle's is added.\n\n" +
			"Without --requests the questions are generated from both versions' vocabulary: every\n" +
			"member × action × (no object, each object of each resource group, an object the member\n" +
			"owns), for every application key of a tenant that applies the package layer, at most\n" +
			"--max-questions of them (a sample spread over all of them beyond that). With --requests\n" +
			"FILE (- for stdin) they are read from FILE, one JSON a line: POST /v1/decide bodies or\n" +
			"lines of verdict's --decision-log. A malformed line is reported with its number and\n" +
			"skipped.\n\n" +
			"It exits 0 when no answer changed, 1 when one did and 2 on an error (bundles that do not\n" +
			"load, an unreadable file, or no question at all).",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			err := runDiff(cmd, bundleArgs, candidateArgs, requestsFile, maxQuestions, examples, format)
			var exit *exitError
			if err != nil && !errors.As(err, &exit) {
				fmt.Fprintln(cmd.ErrOrStderr(), "verdict diff:", err)
				return &exitError{code: 2}
			}
			return err
		},
	}
	cmd.Flags().StringArrayVar(&bundleArgs, "bundle", nil, "the current bundles: directory or .tar.gz, as PATH or NAME=PATH (repeatable; the embedded demo when none)")
	cmd.Flags().StringArrayVar(&candidateArgs, "candidate", nil, "a new version of a bundle, as PATH or NAME=PATH (repeatable, at least one)")
	cmd.Flags().StringVar(&requestsFile, "requests", "", "ask the questions in this file (- for stdin): /v1/decide bodies or --decision-log lines, one a line")
	cmd.Flags().IntVar(&maxQuestions, "max-questions", defaultMaxQuestions, "at most this many generated questions (0: all)")
	cmd.Flags().IntVar(&examples, "examples", defaultExamples, "examples shown for each tenant, action and kind of change")
	cmd.Flags().StringVar(&format, "format", "text", "output: text or json")
	_ = cmd.MarkFlagRequired("candidate")
	return cmd
}

func runDiff(cmd *cobra.Command, bundleArgs, candidateArgs []string, requestsFile string, maxQuestions, examples int, format string) error {
	if format != "text" && format != "json" {
		return fmt.Errorf("--format %q: use text or json", format)
	}
	if maxQuestions < 0 || examples < 0 {
		return errors.New("--max-questions and --examples must not be negative")
	}
	current, err := bundleSources(bundleArgs)
	if err != nil {
		return err
	}
	candidate, err := candidateSources(current, candidateArgs)
	if err != nil {
		return err
	}
	old, err := loadPinned(cmd, current)
	if err != nil {
		return fmt.Errorf("--bundle: %w", err)
	}
	cand, err := loadPinned(cmd, candidate)
	if err != nil {
		return fmt.Errorf("--candidate: %w", err)
	}
	ctx := cmd.Context()
	report := access.NewReport(old, cand, examples)
	stderr := cmd.ErrOrStderr()
	if requestsFile == "" {
		qs, err := access.GenerateQuestions(old, cand, maxQuestions)
		if err != nil {
			return err
		}
		report.Generated, report.Possible = true, qs.Possible
		bar := newProgressBar(stderr, "questions")
		var askErr error
		qs.All(func(q *decision.Request) bool {
			if _, _, _, askErr = report.Ask(ctx, old, cand, q); askErr != nil {
				return false
			}
			bar.Set(report.Questions, qs.Count)
			return true
		})
		bar.Done()
		if askErr != nil {
			return askErr
		}
	} else {
		var in io.Reader = cmd.InOrStdin()
		inName := "stdin"
		if requestsFile != "-" {
			inName = requestsFile
			f, err := os.Open(requestsFile)
			if err != nil {
				return fmt.Errorf("--requests: %w", err)
			}
			defer f.Close()
			in = f
		}
		err := access.ReadRequests(in, func(line int, q *decision.Request) error {
			if _, _, _, err := report.Ask(ctx, old, cand, q); err != nil {
				return fmt.Errorf("line %d: %w", line, err)
			}
			return nil
		}, func(e *access.LineError) {
			report.Malformed++
			fmt.Fprintf(stderr, "verdict diff: %s line %d: skipped: %v\n", inName, e.Line, e.Err)
		})
		if err != nil {
			return fmt.Errorf("--requests %s: %w", requestsFile, err)
		}
	}
	if report.Questions == 0 {
		return errors.New("no question was asked: nothing to compare")
	}
	report.Sort()
	out := cmd.OutOrStdout()
	if format == "json" {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		if err := enc.Encode(report); err != nil {
			return err
		}
	} else {
		printDiff(out, report)
	}
	if report.Differences() > 0 {
		return &exitError{code: 1}
	}
	return nil
}

// candidateSources is current with each candidate in place of the bundle
// of its name (see the diff command's help).
func candidateSources(current []loader.Source, args []string) ([]loader.Source, error) {
	out := append([]loader.Source(nil), current...)
	for _, a := range args {
		src, err := loader.ParseSource(a)
		if err != nil {
			return nil, fmt.Errorf("--candidate: %w", err)
		}
		named := src.Location != a // given as NAME=PATH
		i := -1
		for j := range out {
			if out[j].Name == src.Name {
				i = j
			}
		}
		if i < 0 && !named && len(current) == 1 && len(args) == 1 {
			i = 0
			src.Name = current[0].Name
		}
		if i < 0 {
			out = append(out, src)
		} else {
			out[i] = src
		}
	}
	return out, nil
}

// printDiff prints a report for a person: the counts, then each group
// with its examples and both answers' reasons.
func printDiff(w io.Writer, r *access.Report) {
	fmt.Fprintf(w, "revisions     %s → %s\n", revisionsText(r.OldRevision), revisionsText(r.NewRevision))
	fmt.Fprintf(w, "questions     %d", r.Questions)
	if r.Generated && r.Possible > int64(r.Questions) {
		fmt.Fprintf(w, " (a sample of %d; raise --max-questions to ask more)", r.Possible)
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "unchanged     %d\n", r.Unchanged)
	fmt.Fprintf(w, "allow → deny  %d\n", r.AllowToDeny)
	fmt.Fprintf(w, "deny → allow  %d\n", r.DenyToAllow)
	fmt.Fprintf(w, "changed       %d (same allow or deny; status, visibility or deciding reasons differ)\n", r.Changed)
	if r.Malformed > 0 {
		fmt.Fprintf(w, "malformed     %d line(s) skipped\n", r.Malformed)
	}
	for _, g := range r.Groups {
		fmt.Fprintf(w, "\n%s  tenant %s  action %s  (%d)\n", changeTitle(g.Change), g.Tenant, g.Action, g.Count)
		for _, d := range g.Examples {
			fmt.Fprintf(w, "  %s\n", questionText(d.Question))
			fmt.Fprintf(w, "    old: %s\n", answerText(d.Old))
			fmt.Fprintf(w, "    new: %s\n", answerText(d.New))
		}
		if more := g.Count - len(g.Examples); more > 0 {
			fmt.Fprintf(w, "  … and %d more\n", more)
		}
	}
}

func changeTitle(c access.Change) string {
	switch c {
	case access.AllowToDeny:
		return "allow → deny"
	case access.DenyToAllow:
		return "deny → allow"
	}
	return "changed"
}

// questionText names a question's member, object and key.
func questionText(q *decision.Request) string {
	parts := []string{"member=" + q.Member}
	if q.Member == "" {
		parts[0] = "anonymous"
	}
	if q.Request != nil {
		parts = append(parts, q.Request.Method+" "+q.Request.Path)
	}
	if res := q.Resource; res != nil {
		if res.FRN != "" {
			parts = append(parts, "frn="+res.FRN)
		}
		if res.Owner != "" {
			parts = append(parts, "owner="+res.Owner)
		}
	}
	if q.Key != "" {
		parts = append(parts, "key="+shortKey(q.Key))
	}
	if q.Application != "" {
		parts = append(parts, "application="+q.Application)
	}
	return strings.Join(parts, " ")
}

func shortKey(k string) string {
	if len(k) > 8 {
		return k[:8] + "…"
	}
	return k
}

func answerText(a access.Answer) string {
	verdict := "deny"
	if a.Allow {
		verdict = "allow"
	}
	return fmt.Sprintf("%s %d  %s", verdict, a.Status, reasonsText(a.Reasons))
}

// revisionsText lists bundle revisions as "name@revision", by name.
func revisionsText(revs map[string]string) string {
	names := make([]string, 0, len(revs))
	for name := range revs {
		names = append(names, name)
	}
	sort.Strings(names)
	for i, name := range names {
		names[i] = name + "@" + revs[name]
	}
	return strings.Join(names, " ")
}
