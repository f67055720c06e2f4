package telemetry

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"unicode"

	"github.com/verdict-authz/verdict/decision"
)

// MaskedValue replaces a masked value in a decision log line.
const MaskedValue = "***"

// DefaultDecisionLogMask are the masks `verdict run` applies unless told
// not to (besides MaskContextSecrets): the request's key.
var DefaultDecisionLogMask = []string{"/input/key"}

// secretNameParts are the words that make a context key a secret's name
// wherever they occur in it (compared in lower case, without "-" and "_"):
// long enough not to occur inside other words.
var secretNameParts = []string{"authorization", "apikey", "cookie", "credential", "passphrase", "password", "passwd",
	"privatekey", "secret", "sessid", "session", "signature", "token"}

// secretNameTokens are the short words that make a context key a secret's
// name when one of the key's words (nameWords) is exactly one of them, so
// that "pin" masks "pin" and "card_pin" but not "shipping", and "sig"
// "X-Sig" but not "design".
var secretNameTokens = []string{"jwt", "otp", "pass", "pin", "pwd", "refresh", "sid", "sig", "totp"}

// IsSecretName reports whether a context key names a secret: in lower
// case and without "-" and "_", it contains authorization, apikey, cookie,
// credential, passphrase, password, passwd, privatekey, secret, sessid,
// session, signature or token ("Authorization", "X-Api-Key", "db_password",
// "refreshToken", "PHPSESSID"); or one of its words (split at "-", "_",
// ".", spaces and case changes) is jwt, otp, pass, pin, pwd, refresh, sid,
// sig or totp ("x-jwt-assertion", "otp_code", "userPwd", "refresh").
func IsSecretName(key string) bool {
	norm := strings.NewReplacer("-", "", "_", "").Replace(strings.ToLower(key))
	for _, part := range secretNameParts {
		if strings.Contains(norm, part) {
			return true
		}
	}
	for _, word := range nameWords(key) {
		if slices.Contains(secretNameTokens, strings.ToLower(word)) {
			return true
		}
	}
	return false
}

// nameWords splits a key into its words: at every character that is not
// a letter or digit, between a lower-case letter or digit and an upper-case
// letter ("userPwd": user, Pwd), and before the last capital of a run of
// capitals followed by a lower-case letter ("JWTAssertion": JWT,
// Assertion).
func nameWords(key string) []string {
	var words []string
	runes := []rune(key)
	start := -1
	for i, r := range runes {
		if !unicode.IsLetter(r) && !unicode.IsDigit(r) {
			if start >= 0 {
				words = append(words, string(runes[start:i]))
				start = -1
			}
			continue
		}
		if start < 0 {
			start = i
			continue
		}
		prev := runes[i-1]
		lowerToUpper := unicode.IsUpper(r) && (unicode.IsLower(prev) || unicode.IsDigit(prev))
		acronymEnd := unicode.IsUpper(r) && unicode.IsUpper(prev) && i+1 < len(runes) && unicode.IsLower(runes[i+1])
		if lowerToUpper || acronymEnd {
			words = append(words, string(runes[start:i]))
			start = i
		}
	}
	if start >= 0 {
		words = append(words, string(runes[start:]))
	}
	return words
}

// looksLikeToken reports whether a string is a credential by its shape: a
// "Bearer " or "Basic " authorization value, or a JWT (three base64url
// parts, the first starting with "eyJ", a JSON object's encoding).
func looksLikeToken(s string) bool {
	lower := strings.ToLower(strings.TrimSpace(s))
	if strings.HasPrefix(lower, "bearer ") || strings.HasPrefix(lower, "basic ") {
		return true
	}
	if !strings.HasPrefix(s, "eyJ") || strings.Count(s, ".") != 2 {
		return false
	}
	for _, c := range s {
		if !(c == '.' || c == '-' || c == '_' || c == '=' || '0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z') {
			return false
		}
	}
	return true
}

// maskSecrets returns a copy of v with the values under secret names and
// the token-shaped strings replaced by MaskedValue (v is left alone). ok is
// false when v holds a value that is not plain JSON.
func maskSecrets(v any) (out any, ok bool) {
	switch v := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(v))
		for k, child := range v {
			switch {
			case child == nil:
				m[k] = nil
			case IsSecretName(k):
				m[k] = MaskedValue
			default:
				if m[k], ok = maskSecrets(child); !ok {
					return v, false
				}
			}
		}
		return m, true
	case []any:
		l := make([]any, len(v))
		for i, child := range v {
			if l[i], ok = maskSecrets(child); !ok {
				return v, false
			}
		}
		return l, true
	case string:
		if looksLikeToken(v) {
			return MaskedValue, true
		}
		return v, true
	case nil, bool, float64, json.Number:
		return v, true
	}
	return v, false
}

// maskPath is a parsed JSON pointer below a top-level key of the line.
type maskPath []string

var maskRoots = []string{"input", "result", "reasons", "revisions"}

// parseMasks parses JSON pointers and groups them by top-level key.
func parseMasks(paths []string) (map[string][]maskPath, error) {
	if len(paths) == 0 {
		return nil, nil
	}
	out := make(map[string][]maskPath)
	for _, p := range paths {
		segs, err := parsePointer(p)
		if err != nil {
			return nil, fmt.Errorf("decision log mask %q: %w", p, err)
		}
		root := segs[0]
		ok := false
		for _, r := range maskRoots {
			ok = ok || r == root
		}
		if !ok {
			return nil, fmt.Errorf("decision log mask %q: must start with /%s", p, strings.Join(maskRoots, ", /"))
		}
		out[root] = append(out[root], maskPath(segs[1:]))
	}
	return out, nil
}

// parsePointer splits an RFC 6901 JSON pointer into unescaped segments.
func parsePointer(p string) ([]string, error) {
	if !strings.HasPrefix(p, "/") {
		return nil, errors.New("a JSON pointer starts with /")
	}
	segs := strings.Split(p[1:], "/")
	for i, s := range segs {
		if s == "" {
			return nil, errors.New("empty segment")
		}
		segs[i] = strings.ReplaceAll(strings.ReplaceAll(s, "~1", "/"), "~0", "~")
	}
	return segs, nil
}

// applyMasks masks the line. Input paths are applied to the line's own
// copy of the request where its shape allows (copying only what lies on
// the path); the rest, and masks of other fields, replace the field with a
// JSON rendering of it in which the masked values are MaskedValue.
func (l *DecisionLog) applyMasks(line *logLine, req *decision.Request) error {
	if l.maskSecrets && req.Context != nil {
		masked, ok := maskSecrets(req.Context)
		if !ok {
			// A library caller's context that is not plain JSON.
			generic, err := toGeneric(req.Context)
			if err != nil {
				return fmt.Errorf("mask /input/context: %w", err)
			}
			masked, _ = maskSecrets(generic)
		}
		req.Context = masked
	}
	for root, paths := range l.masks {
		if root == "input" {
			var generic []maskPath
			for _, p := range paths {
				if !maskRequest(req, p) {
					generic = append(generic, p)
				}
			}
			if len(generic) == 0 {
				continue
			}
			paths = generic
		}
		var field *any
		switch root {
		case "input":
			field = &line.Input
		case "result":
			field = &line.Result
		case "reasons":
			field = &line.Reasons
		case "revisions":
			field = &line.Revisions
		}
		doc, err := toGeneric(*field)
		if err != nil {
			return fmt.Errorf("mask /%s: %w", root, err)
		}
		for _, p := range paths {
			doc, _ = p.apply(doc)
		}
		raw, err := json.Marshal(doc)
		if err != nil {
			return fmt.Errorf("mask /%s: %w", root, err)
		}
		*field = json.RawMessage(raw)
	}
	return nil
}

// maskRequest applies p (below /input) to req, the log line's copy of the
// request, copying whatever it changes below it. It returns false when p
// needs the generic path: it replaces a whole object, list or boolean by
// MaskedValue, or goes through a context value that is not plain JSON.
func maskRequest(req *decision.Request, p maskPath) bool {
	maskString := func(s *string) {
		if *s != "" {
			*s = MaskedValue
		}
	}
	switch p[0] {
	case "tenant", "key", "member", "application", "action":
		if len(p) == 1 {
			switch p[0] {
			case "tenant":
				maskString(&req.Tenant)
			case "key":
				maskString(&req.Key)
			case "member":
				maskString(&req.Member)
			case "application":
				maskString(&req.Application)
			case "action":
				maskString(&req.Action)
			}
		}
		return true // a string has nothing below it
	case "context":
		v, ok := p[1:].apply(req.Context)
		if ok {
			req.Context = v
		}
		return ok
	case "request":
		if len(p) == 1 || p[1] == "*" {
			return req.Request == nil
		}
		if req.Request == nil || len(p) > 2 {
			return true
		}
		hr := *req.Request
		switch p[1] {
		case "service":
			maskString(&hr.Service)
		case "method":
			maskString(&hr.Method)
		case "path":
			maskString(&hr.Path)
		}
		req.Request = &hr
		return true
	case "resource":
		if len(p) == 1 || p[1] == "*" {
			return req.Resource == nil
		}
		if req.Resource == nil {
			return true
		}
		res := *req.Resource
		switch p[1] {
		case "frn":
			if len(p) == 2 {
				maskString(&res.FRN)
			}
		case "owner":
			if len(p) == 2 {
				maskString(&res.Owner)
			}
		case "resource_groups":
			if len(p) == 2 {
				return len(res.ResourceGroups) == 0
			}
			if len(p) == 3 {
				groups := slices.Clone(res.ResourceGroups)
				for i := range groups {
					if p[2] == "*" || p[2] == strconv.Itoa(i) {
						groups[i] = MaskedValue
					}
				}
				res.ResourceGroups = groups
			}
		case "reference":
			return len(p) > 2 || !res.Reference
		}
		req.Resource = &res
		return true
	case "*":
		return false
	}
	return true // no such field
}

// toGeneric turns v into maps, slices and scalars by a JSON round trip.
func toGeneric(v any) (any, error) {
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var out any
	if err := dec.Decode(&out); err != nil {
		return nil, err
	}
	return out, nil
}

// apply returns doc with the values p reaches replaced by MaskedValue (an
// empty path masks doc itself). It copies the maps and lists it changes
// and leaves doc alone. ok is false when the path runs into a value that
// is not plain JSON (a Go struct or typed map handed in by a library
// caller), which the generic path must handle.
func (p maskPath) apply(doc any) (out any, ok bool) {
	if len(p) == 0 {
		if doc == nil {
			return nil, true // nothing there to hide
		}
		return MaskedValue, true
	}
	seg, rest := p[0], p[1:]
	switch v := doc.(type) {
	case map[string]any:
		if seg == "*" {
			m := make(map[string]any, len(v))
			for k, child := range v {
				if m[k], ok = rest.apply(child); !ok {
					return doc, false
				}
			}
			return m, true
		}
		child, found := v[seg]
		if !found {
			return doc, true
		}
		masked, ok := rest.apply(child)
		if !ok {
			return doc, false
		}
		m := maps.Clone(v)
		m[seg] = masked
		return m, true
	case []any:
		l := slices.Clone(v)
		for i := range l {
			if seg == "*" || seg == strconv.Itoa(i) {
				if l[i], ok = rest.apply(l[i]); !ok {
					return doc, false
				}
			}
		}
		return l, true
	case nil, string, bool, float64, json.Number:
		return doc, true // nothing below a scalar
	}
	return doc, false
}
