package state

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
)

// maxNameBytes keeps file names well below the usual 255-byte limit.
const maxNameBytes = 200

// hashedPrefix starts the name of an entry whose key is too long to spell
// out. escapeKeyPart never writes "+" (it escapes it as %2B), so a hashed
// name is never the spelled-out name of another key.
const hashedPrefix = "+sha256-"

// fileName is the file name of the entry with the key parts. It is
// injective: two different keys of the same length never share a file.
//
// Each part is escaped (escapeKeyPart) and the parts are joined with ","
// (which escaping never leaves in a part). A name longer than maxNameBytes
// is hashedPrefix followed by the SHA-256 of the spelled-out name.
func fileName(parts ...string) string {
	esc := make([]string, len(parts))
	for i, p := range parts {
		esc[i] = escapeKeyPart(p)
	}
	name := strings.Join(esc, ",")
	if len(name) > maxNameBytes {
		sum := sha256.Sum256([]byte(name))
		name = hashedPrefix + hex.EncodeToString(sum[:])
	}
	return name + ".json"
}

// escapeKeyPart spells s with ASCII letters, digits, "-", "_", "~" and "."
// (except as its first byte, so that no entry is a hidden file, "." or
// ".."), every other byte as %XX (upper-case hex). Every byte is escaped or
// kept by itself, so the escaping is injective and never produces ",", "+"
// or "/".
func escapeKeyPart(s string) string {
	const hexDigits = "0123456789ABCDEF"
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if keptInFileName(c) && (c != '.' || i > 0) {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hexDigits[c>>4])
		b.WriteByte(hexDigits[c&0xF])
	}
	return b.String()
}

func keptInFileName(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return c == '-' || c == '_' || c == '~' || c == '.'
}
