package main

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"slices"
	"sort"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/tester"
	"github.com/spf13/cobra"

	"github.com/verdict-authz/verdict/decision"
	"github.com/verdict-authz/verdict/loader"
)

func newTestCommand() *cobra.Command {
	var (
		verbose  bool
		stateDir string
	)
	cmd := &cobra.Command{
		Use:   "test [PATH...]",
		Short: "Run bundles' Rego tests and decision fixtures (*_test.yaml); the demo bundle when no PATH",
		Long: "test loads the bundles together as `verdict run` would, runs every test_ rule of\n" +
			"their *_test.rego modules with OPA's tester, then every case of their decision\n" +
			"fixtures (files named *_test.yaml, *_test.yml or *_test.json anywhere in a bundle\n" +
			"directory):\n\n" +
			"  cases:\n" +
			"    - name: asset manager A reads her portfolio\n" +
			"      input: {tenant: bank, member: user_a, action: \"finmars:Portfolio:retrieve\",\n" +
			"              resource: {frn: \"frn:finmars:portfolios:portfolio:bonds-portfolio\"}}\n" +
			"      expect: {allow: true, status: 200, reasons: [iam.allow, resource.group]}\n\n" +
			"expect.reasons lists the reason codes in order; any expect field left out is not\n" +
			"checked. It prints each case and a summary and exits 1 when anything fails.\n\n" +
			"With --state-dir DIR the bundles are loaded with the services registered, and the\n" +
			"delegations requested and consented to, at run time that `verdict run --state-dir\n" +
			"DIR` restores; DIR is only read (it must exist).",
		RunE: func(cmd *cobra.Command, args []string) error {
			sources, err := bundleSources(args)
			if err != nil {
				return err
			}
			failed, err := runBundleTests(cmd.Context(), cmd.OutOrStdout(), sources, stateDir, verbose)
			if err != nil {
				return err
			}
			if failed > 0 {
				return &exitError{code: 1}
			}
			return nil
		},
	}
	cmd.Flags().BoolVarP(&verbose, "verbose", "v", false, "print passing cases too, and Rego print() output")
	cmd.Flags().StringVar(&stateDir, "state-dir", "", "load the bundles with the run-time registrations and delegations kept in `DIR`, a verdict run --state-dir (read only; must exist)")
	return cmd
}

func runBundleTests(ctx context.Context, out io.Writer, sources []loader.Source, stateDir string, verbose bool) (failed int, err error) {
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	engine := decision.NewEngine(quiet)
	ld, err := loader.New(engine, quiet)
	if err != nil {
		return 0, err
	}
	defer ld.Close()
	var rs *runtimeState
	if stateDir != "" {
		// Like verdict run: the state before the bundles, which may refer to
		// registered services.
		if rs, err = readRuntimeState(ctx, ld, stateDir); err != nil {
			return 0, err
		}
	}
	bundles, err := loader.ReadAll(sources)
	if err != nil {
		return 0, fmt.Errorf("load bundles:\n%w", err)
	}
	if err := requireVerdictData(bundles); err != nil {
		return 0, err
	}
	asm, err := loader.AssembleWith(ctx, bundles, rs.registered())
	if err != nil {
		return 0, fmt.Errorf("load bundles:\n%w", err)
	}
	passed := 0
	p, f, err := runRegoTests(ctx, out, bundles, asm, verbose)
	if err != nil {
		return 0, err
	}
	passed, failed = passed+p, failed+f

	if _, err := ld.LoadAll(ctx, sources); err != nil {
		return 0, fmt.Errorf("load bundles:\n%w", err)
	}
	for _, src := range sources {
		p, f, err := runFixtures(ctx, out, engine, src, verbose)
		if err != nil {
			return 0, err
		}
		passed, failed = passed+p, failed+f
	}
	if passed+failed == 0 {
		where := make([]string, len(sources))
		for i, src := range sources {
			where[i] = src.Location
		}
		return 0, fmt.Errorf("no test found in %s: verdict looked for test_ rules in *_test.rego modules and for decision fixtures "+
			"named *_test.yaml, *_test.yml or *_test.json anywhere in each bundle directory (fixtures inside a .tar.gz are not read)",
			strings.Join(where, ", "))
	}
	fmt.Fprintf(out, "%d passed, %d failed\n", passed, failed)
	return failed, nil
}

// runRegoTests runs the test_ rules of the bundles' modules over the
// bundles' data.
func runRegoTests(ctx context.Context, out io.Writer, bundles []*loader.Bundle, asm *loader.Assembly, verbose bool) (passed, failed int, err error) {
	modules := map[string]*ast.Module{}
	for _, b := range bundles {
		for name, m := range b.Modules {
			modules[name] = m
		}
	}
	st := asm.Policy.Store()
	txn, err := st.NewTransaction(ctx)
	if err != nil {
		return 0, 0, err
	}
	defer st.Abort(ctx, txn)
	runner := tester.NewRunner().
		SetCompiler(ast.NewCompiler().WithEnablePrintStatements(true).WithDefaultRegoVersion(ast.RegoV1)).
		SetStore(st).
		SetModules(modules).
		SetDefaultRegoVersion(ast.RegoV1).
		CapturePrintOutput(true)
	ch, err := runner.RunTests(ctx, txn)
	if err != nil {
		return 0, 0, fmt.Errorf("run Rego tests: %w", err)
	}
	var results []*tester.Result
	for r := range ch {
		results = append(results, r)
	}
	sort.Slice(results, func(i, j int) bool {
		return results[i].Package+"."+results[i].Name < results[j].Package+"."+results[j].Name
	})
	for _, r := range results {
		name := strings.TrimPrefix(r.Package, "data.") + "." + r.Name
		switch {
		case r.Skip:
			fmt.Fprintf(out, "SKIP  rego  %s\n", name)
			continue
		case r.Error != nil:
			failed++
			fmt.Fprintf(out, "ERROR rego  %s: %v\n", name, r.Error)
		case r.Fail:
			failed++
			fmt.Fprintf(out, "FAIL  rego  %s\n", name)
		default:
			passed++
			if verbose {
				fmt.Fprintf(out, "PASS  rego  %s (%v)\n", name, r.Duration)
			}
		}
		if verbose && len(r.Output) > 0 {
			fmt.Fprintf(out, "      %s\n", strings.ReplaceAll(strings.TrimSpace(string(r.Output)), "\n", "\n      "))
		}
	}
	return passed, failed, nil
}

// fixtureFS opens a source's files for fixture discovery; tarballs are not
// searched.
func fixtureFS(src loader.Source) fs.FS {
	if src.FS != nil {
		return src.FS
	}
	if info, err := os.Stat(src.Location); err == nil && info.IsDir() {
		return os.DirFS(src.Location)
	}
	return nil
}

func isFixture(name string) bool {
	for _, suffix := range []string{"_test.yaml", "_test.yml", "_test.json"} {
		if strings.HasSuffix(name, suffix) {
			return true
		}
	}
	return false
}

func runFixtures(ctx context.Context, out io.Writer, engine *decision.Engine, src loader.Source, verbose bool) (passed, failed int, err error) {
	fsys := fixtureFS(src)
	if fsys == nil {
		return 0, 0, nil
	}
	var files []string
	err = fs.WalkDir(fsys, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && isFixture(d.Name()) {
			files = append(files, path)
		}
		return nil
	})
	if err != nil {
		return 0, 0, fmt.Errorf("bundle %s: find fixtures: %w", src.Name, err)
	}
	for _, file := range files {
		raw, err := fs.ReadFile(fsys, file)
		if err != nil {
			return 0, 0, err
		}
		cases, err := readFixtures(file, raw)
		if err != nil {
			// The file's cases cannot be told apart: it fails as one.
			failed++
			fmt.Fprintf(out, "FAIL  file  %s/%s\n      %v\n", src.Name, file, strings.TrimPrefix(err.Error(), file+": "))
			continue
		}
		for _, c := range cases {
			label := fmt.Sprintf("%s/%s:%d: %s", src.Name, file, c.Line, c.Name)
			var problems []string
			if c.Problem != "" {
				problems = []string{c.Problem}
			} else {
				input := c.Input
				d, err := engine.Decide(ctx, &input)
				if err != nil {
					problems = append(problems, "bad input: "+err.Error())
				} else {
					problems = checkExpectations(c, d)
				}
			}
			if len(problems) == 0 {
				passed++
				if verbose {
					fmt.Fprintf(out, "PASS  case  %s\n", label)
				}
				continue
			}
			failed++
			fmt.Fprintf(out, "FAIL  case  %s\n", label)
			for _, p := range problems {
				fmt.Fprintf(out, "      %s\n", p)
			}
		}
	}
	return passed, failed, nil
}

func checkExpectations(c fixtureCase, d *decision.Decision) []string {
	var problems []string
	e := c.Expect
	if e.Allow != nil && *e.Allow != d.Allow {
		problems = append(problems, fmt.Sprintf("allow is %v, want %v", d.Allow, *e.Allow))
	}
	if e.Status != 0 && e.Status != d.Status {
		problems = append(problems, fmt.Sprintf("status is %d, want %d", d.Status, e.Status))
	}
	if e.Visibility != "" && e.Visibility != d.Visibility {
		problems = append(problems, fmt.Sprintf("visibility is %s, want %s", d.Visibility, e.Visibility))
	}
	if e.Reasons != nil {
		got := make([]string, len(d.Reasons))
		for i, r := range d.Reasons {
			got[i] = r.Code
		}
		if !slices.Equal(got, e.Reasons) {
			problems = append(problems, fmt.Sprintf("reasons are %v, want %v", got, e.Reasons))
		}
	}
	if len(problems) > 0 {
		for _, r := range d.Reasons {
			problems = append(problems, fmt.Sprintf("  reason: [%s] %s %s: %s", r.Layer, r.Effect, r.Code, r.Message))
		}
	}
	return problems
}
