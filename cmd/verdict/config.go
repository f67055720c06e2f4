package main

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strings"

	"github.com/agnivade/levenshtein"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"go.yaml.in/yaml/v3"
)

// The configuration of `verdict run` comes in three layers over the flags'
// defaults: the YAML file of --config, whose keys are the flags' names; the
// environment, one VERDICT_<FLAG> variable per flag; and the command line.
// A flag given on the command line wins over its variable, which wins over
// the file. The layers are applied generically to every flag of the
// command's FlagSet through flag.Value, so a flag added to verdict run has
// its variable and its key without more code.

// EnvConfig names the variable holding the --config file when the flag is
// not given.
const EnvConfig = "VERDICT_CONFIG"

// configFlag is the flag naming the configuration file; it is not itself a
// key of the file.
const configFlag = "config"

// envName is the environment variable of a flag: VERDICT_, then the flag's
// name in upper case with every - as _ (decision-cache-size:
// VERDICT_DECISION_CACHE_SIZE).
func envName(flag string) string {
	return "VERDICT_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// source says which layer a flag's value came from.
type source string

const (
	sourceDefault source = "default"
	sourceFile    source = "file"
	sourceEnv     source = "env"
	sourceFlag    source = "flag"
)

// setting is one flag's effective value and where it came from.
type setting struct {
	Name   string
	Source source
	// Origin details Source: the variable for env, FILE:LINE for file.
	Origin string
	flag   *pflag.Flag
}

// runConfig resolves a command's flags from the environment and the
// --config file (bindRunConfig) and remembers where each value came from.
type runConfig struct {
	// path is the configuration file ("" when none), from --config or
	// VERDICT_CONFIG.
	path       string
	pathSource source
	settings   []setting
}

// bindRunConfig gives cmd a --config flag and makes it resolve, before it
// runs, each of its flags that is also a flag of verdict run and was not
// given on the command line: from VERDICT_<FLAG>, else from the file, else
// the default. Every key of the file must be a flag of verdict run, even
// when cmd has no such flag (the file is verdict run's configuration, which
// other commands read the flags they share from).
func bindRunConfig(cmd *cobra.Command) *runConfig {
	rc := &runConfig{}
	cmd.Flags().StringVar(&rc.path, configFlag, "", "YAML file of verdict run's flags, each under its own name (also "+EnvConfig+"); flags and VERDICT_<FLAG> variables win over it")
	next := cmd.PreRunE
	cmd.PreRunE = func(cmd *cobra.Command, args []string) error {
		if err := rc.resolve(cmd.Flags(), os.LookupEnv); err != nil {
			return err
		}
		if next != nil {
			return next(cmd, args)
		}
		return nil
	}
	return rc
}

// runFlags is verdict run's FlagSet, the vocabulary of the configuration
// file and of the VERDICT_<FLAG> variables.
func runFlags() *pflag.FlagSet {
	f := pflag.NewFlagSet("run", pflag.ContinueOnError)
	registerRunFlags(f, &runOptions{})
	return f
}

// resolve applies the environment (read with lookup) and the configuration
// file to the flags of fs not given on the command line, and records the
// source of every flag fs shares with verdict run.
func (rc *runConfig) resolve(fs *pflag.FlagSet, lookup func(string) (string, bool)) error {
	run := runFlags()
	rc.pathSource = sourceDefault
	if f := fs.Lookup(configFlag); f != nil && f.Changed {
		rc.pathSource = sourceFlag
	} else if v, ok := lookup(EnvConfig); ok && v != "" {
		rc.path, rc.pathSource = v, sourceEnv
	}
	var file *configFile
	if rc.path != "" {
		var err error
		if file, err = readConfigFile(rc.path, run); err != nil {
			return err
		}
	}
	rc.settings = rc.settings[:0]
	var errs []error
	fs.VisitAll(func(f *pflag.Flag) {
		if f.Name == configFlag || run.Lookup(f.Name) == nil {
			return
		}
		s := setting{Name: f.Name, Source: sourceDefault, flag: f}
		switch {
		case f.Changed:
			s.Source = sourceFlag
		default:
			name := envName(f.Name)
			if v, ok := lookup(name); ok && v != "" {
				if err := setFromEnv(f, v); err != nil {
					errs = append(errs, fmt.Errorf("%s: %w", name, err))
				}
				s.Source, s.Origin = sourceEnv, name
			} else if e, ok := file.value(f.Name); ok {
				if err := setFromYAML(f, e.value); err != nil {
					errs = append(errs, &configError{Path: file.path, Line: e.key.Line, Key: f.Name, Err: err})
				}
				s.Source, s.Origin = sourceFile, fmt.Sprintf("%s:%d", file.path, e.key.Line)
			}
		}
		rc.settings = append(rc.settings, s)
	})
	return errors.Join(errs...)
}

// setFromEnv sets f from its variable (an empty variable counts as unset).
// A list flag (pflag.SliceValue) takes comma-separated values, read as one
// CSV record as pflag reads a string slice: a value holding a comma is
// quoted ("a,b"). Any other flag takes the text its flag.Value parses.
func setFromEnv(f *pflag.Flag, v string) error {
	list, ok := f.Value.(pflag.SliceValue)
	if !ok {
		return f.Value.Set(v)
	}
	items, err := csv.NewReader(strings.NewReader(v)).Read()
	if err != nil {
		return fmt.Errorf("want comma-separated values (quote one holding a comma): %w", err)
	}
	return list.Replace(items)
}

// setFromYAML sets f from its value in the file: a scalar for a flag of one
// value, a list (or one scalar, a list of one) for a list flag.
func setFromYAML(f *pflag.Flag, n *yaml.Node) error {
	list, isList := f.Value.(pflag.SliceValue)
	switch n.Kind {
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			return errors.New(`has no value (write "" for an empty one)`)
		}
		if isList {
			return list.Replace([]string{n.Value})
		}
		return f.Value.Set(n.Value)
	case yaml.SequenceNode:
		if !isList {
			return fmt.Errorf("takes one %s, not a list", f.Value.Type())
		}
		items := make([]string, 0, len(n.Content))
		for _, item := range n.Content {
			if item.Kind != yaml.ScalarNode || item.Tag == "!!null" {
				return fmt.Errorf("line %d: list items are single values", item.Line)
			}
			items = append(items, item.Value)
		}
		return list.Replace(items)
	case yaml.AliasNode:
		return setFromYAML(f, n.Alias)
	}
	if isList {
		return errors.New("takes a list of values")
	}
	return fmt.Errorf("takes one %s", f.Value.Type())
}

// configError is a problem with one key of the configuration file.
type configError struct {
	Path string
	Line int
	Key  string
	Err  error
}

func (e *configError) Error() string {
	return fmt.Sprintf("%s:%d: %s: %v", e.Path, e.Line, e.Key, e.Err)
}

func (e *configError) Unwrap() error { return e.Err }

// configFile is a parsed configuration file: a YAML mapping from flag names
// to values.
type configFile struct {
	path   string
	values map[string]configEntry
}

// configEntry is one key of the file and its value.
type configEntry struct {
	key, value *yaml.Node
}

// value is the file's node for a flag (false when the file has none or
// there is no file).
func (c *configFile) value(name string) (configEntry, bool) {
	if c == nil {
		return configEntry{}, false
	}
	e, ok := c.values[name]
	return e, ok
}

// readConfigFile parses path and checks that every key is a flag of run,
// given once. Every problem names the file and line.
func readConfigFile(path string, run *pflag.FlagSet) (*configFile, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--config: %w", err)
	}
	c := &configFile{path: path, values: map[string]configEntry{}}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return c, nil // an empty file sets nothing
		}
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	var more yaml.Node
	if err := dec.Decode(&more); !errors.Is(err, io.EOF) {
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		return nil, fmt.Errorf("%s:%d: a second YAML document; the configuration is one mapping", path, more.Line)
	}
	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}
	if root.Kind == yaml.ScalarNode && root.Tag == "!!null" {
		return c, nil // only comments
	}
	if root.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("%s:%d: want a mapping of flag names to values, e.g. addr: 127.0.0.1:8181", path, root.Line)
	}
	var errs []error
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		key := k.Value
		switch {
		case k.Kind != yaml.ScalarNode:
			errs = append(errs, fmt.Errorf("%s:%d: a key must be a flag name", path, k.Line))
		case key == configFlag:
			errs = append(errs, &configError{Path: path, Line: k.Line, Key: key, Err: errors.New("a configuration file cannot name another one")})
		case run.Lookup(key) == nil:
			errs = append(errs, &configError{Path: path, Line: k.Line, Key: key, Err: fmt.Errorf("unknown key: not a flag of verdict run%s", suggestFlag(key, run))})
		case c.values[key].key != nil:
			errs = append(errs, &configError{Path: path, Line: k.Line, Key: key, Err: fmt.Errorf("given twice (first on line %d)", c.values[key].key.Line)})
		default:
			c.values[key] = configEntry{key: k, value: v}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return c, nil
}

// suggestFlag is a hint naming the flag of run closest to key, or nothing.
func suggestFlag(key string, run *pflag.FlagSet) string {
	want := strings.ReplaceAll(strings.ToLower(key), "_", "-")
	best, name := -1, ""
	run.VisitAll(func(f *pflag.Flag) {
		if d := levenshtein.ComputeDistance(want, f.Name); best < 0 || d < best {
			best, name = d, f.Name
		}
	})
	if best < 0 || best > max(2, len(want)/4) {
		return ""
	}
	return fmt.Sprintf("; did you mean %q?", name)
}

// newConfigCommand is `verdict config`, whose `print` shows the effective
// configuration of verdict run.
func newConfigCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Show verdict run's configuration (flags, VERDICT_<FLAG> variables and the --config file)",
	}
	cmd.AddCommand(newConfigPrintCommand())
	return cmd
}

func newConfigPrintCommand() *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "print [--config FILE] [verdict run's flags…]",
		Short: "Print the configuration verdict run would start with, and where each value comes from; secrets masked",
		Long: "print resolves verdict run's flags as verdict run does (flags over VERDICT_<FLAG> variables\n" +
			"over the --config file over defaults) and prints every one with its source. The YAML output\n" +
			"is itself a configuration file. A DSN's or URL's password and credentials in a URL's query are\n" +
			"masked as ***. Nothing is opened or loaded: files the flags name are not read.",
		Args: cobra.NoArgs,
	}
	registerRunFlags(cmd.Flags(), &runOptions{})
	cmd.Flags().StringVar(&format, "format", "yaml", "output: yaml or json")
	rc := bindRunConfig(cmd)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		var out []byte
		var err error
		switch format {
		case "yaml":
			out, err = rc.yaml()
		case "json":
			out, err = rc.json()
		default:
			return fmt.Errorf("--format %q: want yaml or json", format)
		}
		if err != nil {
			return err
		}
		_, err = cmd.OutOrStdout().Write(out)
		return err
	}
	return cmd
}

// displayValue is a setting's value as the configuration file would hold
// it, with secrets masked: a list for a list flag, else the flag's text.
func (s setting) displayValue() any {
	if list, ok := s.flag.Value.(pflag.SliceValue); ok {
		items := slices.Clone(list.GetSlice())
		for i := range items {
			items[i] = maskSecrets(s.Name, items[i])
		}
		return items
	}
	return maskSecrets(s.Name, s.flag.Value.String())
}

// describe is a setting's source for a person: "default", "flag",
// "env VERDICT_ADDR", "file verdict.yaml:3".
func (s setting) describe() string {
	if s.Origin == "" {
		return string(s.Source)
	}
	return string(s.Source) + " " + s.Origin
}

// yaml renders the configuration as a configuration file, each value's
// source in a comment.
func (rc *runConfig) yaml() ([]byte, error) {
	m := &yaml.Node{Kind: yaml.MappingNode}
	for _, s := range rc.settings {
		key := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s.Name}
		var val *yaml.Node
		switch v := s.displayValue().(type) {
		case []string:
			val = &yaml.Node{Kind: yaml.SequenceNode, Style: yaml.FlowStyle}
			for _, item := range v {
				val.Content = append(val.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: item})
			}
		case string:
			val = &yaml.Node{Kind: yaml.ScalarNode, Tag: yamlTag(s.flag.Value.Type()), Value: v}
		}
		val.LineComment = s.describe()
		m.Content = append(m.Content, key, val)
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "# verdict run's effective configuration: flags over VERDICT_<FLAG> over the --config file (%s) over defaults\n", rc.describePath())
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(m); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// yamlTag is the YAML tag a flag type's text is written with, so that a
// printed bool or number reads back as one and every other value as text.
func yamlTag(flagType string) string {
	switch flagType {
	case "bool":
		return "!!bool"
	case "int", "int64", "int32", "uint", "uint64", "uint32":
		return "!!int"
	case "float64", "float32":
		return "!!float"
	}
	return "!!str"
}

// describePath names the configuration file and how it was chosen.
func (rc *runConfig) describePath() string {
	switch rc.pathSource {
	case sourceFlag:
		return rc.path + " from --config"
	case sourceEnv:
		return rc.path + " from " + EnvConfig
	}
	return "none"
}

// configJSON is one setting in `verdict config print --format json`.
type configJSON struct {
	Value  any    `json:"value"`
	Source source `json:"source"`
	Origin string `json:"origin,omitempty"`
}

// json renders the configuration as {"config": {"path","source"},
// "flags": {name: {"value","source","origin"}}}.
func (rc *runConfig) json() ([]byte, error) {
	flags := make(map[string]configJSON, len(rc.settings))
	for _, s := range rc.settings {
		flags[s.Name] = configJSON{Value: s.displayValue(), Source: s.Source, Origin: s.Origin}
	}
	out, err := json.MarshalIndent(map[string]any{
		"config": map[string]any{"path": rc.path, "source": rc.pathSource},
		"flags":  flags,
	}, "", "  ")
	return append(out, '\n'), err
}

// secretName matches the names of flags, URL query parameters and DSN
// keywords whose values are secrets.
var secretName = regexp.MustCompile(`(?i)(password|passwd|secret|token|signature|credential|api[-_]?key|^sig$|^key$)`)

// dsnPassword matches the password of a keyword/value PostgreSQL DSN
// (password=secret or password='a secret').
var dsnPassword = regexp.MustCompile(`(?i)(\bpassword\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)`)

// urlPattern matches a URL within a value, such as a bundle's NAME=URL.
var urlPattern = regexp.MustCompile(`[A-Za-z][A-Za-z0-9+.-]*://\S+`)

// maskURL hides a URL's password and the values of its query parameters
// with secret names.
func maskURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "***" // cannot tell what it holds
	}
	if _, has := u.User.Password(); has {
		u.User = url.UserPassword(u.User.Username(), "***")
	}
	if u.RawQuery != "" {
		q := u.Query()
		for k := range q {
			if secretName.MatchString(k) {
				q[k] = []string{"***"}
			}
		}
		u.RawQuery = q.Encode()
	}
	// url.URL escapes the *** it sets; show it as written.
	return strings.ReplaceAll(u.String(), "%2A%2A%2A", "***")
}

// maskSecrets hides the secrets of a flag's value for display: the whole
// value of a flag whose name says it is a secret (a file holding one is
// not: its path is shown), a URL's password and its query parameters with
// secret names, and a DSN's password=.
func maskSecrets(flag, value string) string {
	if value == "" {
		return value
	}
	if secretName.MatchString(flag) && !strings.HasSuffix(flag, "-file") {
		return "***"
	}
	value = urlPattern.ReplaceAllStringFunc(value, maskURL)
	return dsnPassword.ReplaceAllString(value, "${1}***")
}

// log says at start which configuration file was read and which flags the
// environment and the file set (their names, never their values).
func (rc *runConfig) log(log *slog.Logger) {
	if rc == nil {
		return
	}
	var fromEnv, fromFile []string
	for _, s := range rc.settings {
		switch s.Source {
		case sourceEnv:
			fromEnv = append(fromEnv, s.Origin)
		case sourceFile:
			fromFile = append(fromFile, s.Name)
		}
	}
	log.Info("configuration", "file", rc.describePath(), "from_env", fromEnv, "from_file", fromFile)
}
