package acl

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// ActionPattern is a parsed statement action such as "finmars:Portfolio:*".
type ActionPattern struct {
	// Raw is the pattern as written in the bundle.
	Raw string
	// Glob is the lower-cased pattern in glob.match form with ":" as the
	// delimiter: a last part of exactly "*" becomes "**" so that it matches
	// any remaining parts.
	Glob string
	// IndexKey is the lower-cased run of literal parts before the first part
	// that holds a "*". A decision for a:b:c looks up the keys "a:b:c",
	// "a:b", "a" and "" to find every pattern that could match it.
	IndexKey string
}

const maxActionParts = 3

func isActionChar(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' ||
		r == '_' || r == '-' || r == '.' || r == '*'
}

// ParseActionPattern validates and parses a statement action: 1 to 3
// non-empty ":"-separated parts of letters, digits, "_", "-", "." and "*".
func ParseActionPattern(s string) (ActionPattern, error) {
	if err := checkActionParts(s); err != nil {
		return ActionPattern{}, err
	}
	parts := strings.Split(s, ":")
	literal := make([]string, 0, len(parts))
	for _, p := range parts {
		if strings.Contains(p, "*") {
			break
		}
		literal = append(literal, strings.ToLower(p))
	}
	// A run of stars is one star: "*" matches within its part only, so the
	// glob must never see "**" except for a last part of exactly "*".
	for i, p := range parts {
		for strings.Contains(p, "**") {
			p = strings.ReplaceAll(p, "**", "*")
		}
		parts[i] = strings.ToLower(p)
	}
	glob := strings.Join(parts, ":")
	if parts[len(parts)-1] == "*" {
		glob += "*"
	}
	return ActionPattern{Raw: s, Glob: glob, IndexKey: strings.Join(literal, ":")}, nil
}

// checkActionParts checks the shape of an action or action pattern (see
// ParseActionPattern), allocating only for an error: a request's action is
// checked on every decision.
func checkActionParts(s string) error {
	if n := strings.Count(s, ":") + 1; n > maxActionParts {
		return fmt.Errorf("action pattern %q has %d parts; at most %d are allowed", s, n, maxActionParts)
	}
	for rest, more := s, true; more; {
		var p string
		p, rest, more = strings.Cut(rest, ":")
		if p == "" {
			return fmt.Errorf("action pattern %q has an empty part", s)
		}
		for _, r := range p {
			if !isActionChar(r) {
				return fmt.Errorf("action pattern %q has the character %q; only letters, digits, _ - . and * are allowed", s, r)
			}
		}
	}
	return nil
}

// ValidateAction checks an action named by a request or a route: like a
// pattern, but without wildcards.
func ValidateAction(s string) error {
	if strings.Contains(s, "*") {
		return fmt.Errorf("action %q must not contain *", s)
	}
	return checkActionParts(s)
}

// ActionIndexKeys returns the keys under which patterns that may match the
// (lower-cased) action are indexed, most specific first.
func ActionIndexKeys(actionLower string, buf []string) []string {
	buf = append(buf[:0], actionLower)
	for i := len(actionLower) - 1; i >= 0; i-- {
		if actionLower[i] == ':' {
			buf = append(buf, actionLower[:i])
		}
	}
	return append(buf, "")
}

// ResourceKind says what a statement resource names.
type ResourceKind string

const (
	// ResourceKindAny is "*": every object.
	ResourceKindAny ResourceKind = "any"
	// ResourceKindObject is an object FRN, possibly with "*" in its user code.
	ResourceKindObject ResourceKind = "object"
	// ResourceKindGroup is frn:finmars:iam:resourcegroup:<code>.
	ResourceKindGroup ResourceKind = "group"
)

// ResourcePattern is a parsed statement resource.
type ResourcePattern struct {
	Raw  string
	Kind ResourceKind
	// Pattern is the lower-cased FRN (ResourceKindObject) or group code
	// (ResourceGroup), in glob.match form without delimiters.
	Pattern string
	// Literal is true when Pattern holds no "*".
	Literal bool
}

// FRN is a parsed Finmars resource name: frn:finmars:<app>:<model>:<user_code>.
type FRN struct {
	App, Model, UserCode string
}

const frnPrefix = "frn:finmars:"

// ParseFRN parses "frn:finmars:" plus three non-empty parts (the last may
// contain ":"). The prefix is matched ignoring case. An FRN is printable
// ASCII without spaces: FRNs compare ignoring case, and ASCII is where
// every reader folds case alike (a dotless "ı" or a Kelvin sign "K" would
// fold one way in Go and another in a service), and a trailing space or a
// NUL would make an FRN that a service trims name another object here.
func ParseFRN(s string) (FRN, error) {
	if i := notFRNByte(s); i >= 0 {
		return FRN{}, fmt.Errorf("FRN %q holds %s at byte %d; an FRN is printable ASCII without spaces", s, describeByte(s, i), i)
	}
	if len(s) < len(frnPrefix) || !strings.EqualFold(s[:len(frnPrefix)], frnPrefix) {
		return FRN{}, fmt.Errorf("FRN %q must start with %q", s, frnPrefix)
	}
	app, rest, ok := strings.Cut(s[len(frnPrefix):], ":")
	model, userCode, ok2 := strings.Cut(rest, ":")
	if !ok || !ok2 || app == "" || model == "" || userCode == "" {
		return FRN{}, fmt.Errorf("FRN %q must have the form frn:finmars:<app>:<model>:<user_code>", s)
	}
	return FRN{App: app, Model: model, UserCode: userCode}, nil
}

// notFRNByte is the index of the first byte of s that is not printable
// ASCII (0x21-0x7E), or -1.
func notFRNByte(s string) int {
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] >= 0x7f {
			return i
		}
	}
	return -1
}

// describeByte names the character at s[i] for an error message.
func describeByte(s string, i int) string {
	switch c := s[i]; {
	case c == ' ':
		return "a space"
	case c < ' ' || c == 0x7f:
		return fmt.Sprintf("the control character %#02x", c)
	}
	r, _ := utf8.DecodeRuneInString(s[i:])
	if r == utf8.RuneError {
		return fmt.Sprintf("the byte %#02x (not UTF-8)", s[i])
	}
	return fmt.Sprintf("the non-ASCII character %q", r)
}

// ValidateRequestFRN checks the FRN of a request's object: an FRN (ParseFRN)
// that names one object, so it holds no "*" and names no resource group.
func ValidateRequestFRN(s string) error {
	frn, err := ParseFRN(s)
	switch {
	case err != nil:
		return err
	case strings.Contains(s, "*"):
		return fmt.Errorf("FRN %q holds *: a request names one object, not a pattern", s)
	case frn.IsResourceGroup():
		return errors.New("names a resource group; a request names an object")
	}
	return nil
}

// ValidateGroupCode checks a resource group code as a request names it:
// printable ASCII without spaces or "*", as in the group's FRN.
func ValidateGroupCode(code string) error {
	switch i := notFRNByte(code); {
	case code == "":
		return errors.New("must not be empty")
	case i >= 0:
		return fmt.Errorf("resource group code %q holds %s at byte %d; a code is printable ASCII without spaces", code, describeByte(code, i), i)
	case strings.Contains(code, "*"):
		return fmt.Errorf("resource group code %q holds *: a request names groups, not patterns", code)
	}
	return nil
}

// IsResourceGroup reports whether the FRN names a resource group.
func (f FRN) IsResourceGroup() bool {
	return strings.EqualFold(f.App, "iam") && strings.EqualFold(f.Model, "resourcegroup")
}

var errWildcardOutsideUserCode = errors.New("* is allowed only in the user code (the last part) of an FRN")

// ParseResourcePattern parses a statement resource: "*", an object FRN or a
// resource-group FRN.
func ParseResourcePattern(s string) (ResourcePattern, error) {
	if s == "*" {
		return ResourcePattern{Raw: s, Kind: ResourceKindAny, Pattern: "*"}, nil
	}
	frn, err := ParseFRN(s)
	if err != nil {
		return ResourcePattern{}, err
	}
	if strings.Contains(frn.App, "*") || strings.Contains(frn.Model, "*") {
		return ResourcePattern{}, fmt.Errorf("FRN %q: %w", s, errWildcardOutsideUserCode)
	}
	if frn.IsResourceGroup() {
		code := strings.ToLower(frn.UserCode)
		if !strings.Contains(code, "*") {
			return ResourcePattern{Raw: s, Kind: ResourceKindGroup, Pattern: code, Literal: true}, nil
		}
		return ResourcePattern{Raw: s, Kind: ResourceKindGroup, Pattern: globEscaper.Replace(code)}, nil
	}
	lower := strings.ToLower(s)
	if !strings.Contains(lower, "*") {
		return ResourcePattern{Raw: s, Kind: ResourceKindObject, Pattern: lower, Literal: true}, nil
	}
	return ResourcePattern{Raw: s, Kind: ResourceKindObject, Pattern: globEscaper.Replace(lower)}, nil
}

// globEscaper escapes every glob meta character but "*", so that a user code
// such as "a[1]*" matches literally up to its wildcard.
var globEscaper = strings.NewReplacer(`\`, `\\`, `?`, `\?`, `[`, `\[`, `]`, `\]`, `{`, `\{`, `}`, `\}`)
