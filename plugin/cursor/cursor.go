// Package cursor makes and reads the opaque cursors of paginated lists: a
// cursor is the base64url (unpadded) text of a position that only the list
// that made it understands. It owns the encoding and the ErrInvalid
// sentinel, and imports only the standard library.
package cursor

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// ErrInvalid is wrapped by every error about a cursor a list did not make;
// the GraphQL edge shows it to the caller as BAD_USER_INPUT.
var ErrInvalid = errors.New("invalid cursor")

// Encode joins parts with sep and encodes them into an opaque cursor.
func Encode(sep string, parts ...string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strings.Join(parts, sep)))
}

// Decode reads a cursor made by Encode with the same sep into exactly n
// parts.
func Decode(c, sep string, n int) ([]string, error) {
	raw, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return nil, fmt.Errorf("%w %q", ErrInvalid, c)
	}
	parts := strings.SplitN(string(raw), sep, n)
	if len(parts) != n {
		return nil, fmt.Errorf("%w %q", ErrInvalid, c)
	}
	return parts, nil
}

// EncodeID encodes a row id after a prefix that names the list ("c:" for
// customers); an empty prefix is allowed.
func EncodeID(prefix string, id int64) string {
	return base64.RawURLEncoding.EncodeToString([]byte(prefix + strconv.FormatInt(id, 10)))
}

// DecodeID reads a cursor made by EncodeID with the same prefix.
func DecodeID(prefix, c string) (int64, error) {
	raw, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil || !strings.HasPrefix(string(raw), prefix) {
		return 0, fmt.Errorf("%w %q", ErrInvalid, c)
	}
	id, err := strconv.ParseInt(string(raw[len(prefix):]), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%w %q", ErrInvalid, c)
	}
	return id, nil
}
