package storefront

import (
	"bytes"
	"encoding/json"
	"errors"
)

// Text is a JSON scalar read as its text: a string's content, a number's
// digits exactly as written (no float round trip, so 706405506930370084 and
// 414.95 survive), "true"/"false", or "" for null. Platforms write ids and
// amounts sometimes as strings and sometimes as numbers; adapters decode them
// into Text and convert once.
type Text string

// UnmarshalJSON accepts any JSON scalar; objects and arrays are an error.
func (t *Text) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return errors.New("empty JSON value")
	}
	switch b[0] {
	case 'n':
		*t = ""
		return nil
	case '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*t = Text(s)
		return nil
	case '{', '[':
		return errors.New("want a string or number, got an object or array")
	}
	// A number or a boolean: validate, then keep the literal text.
	if !json.Valid(b) {
		return errors.New("invalid JSON scalar")
	}
	*t = Text(b)
	return nil
}

// String returns the text.
func (t Text) String() string { return string(t) }

// DecodeJSON unmarshals body into v and reports failures as *ParseError: a
// type mismatch names its JSON field, anything else names "body".
func DecodeJSON(body []byte, v any) error {
	err := json.Unmarshal(body, v)
	if err == nil {
		return nil
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) && te.Field != "" {
		return &ParseError{Field: te.Field, Err: err}
	}
	return &ParseError{Field: "body", Err: err}
}
