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

// Attrs is a set of custom attributes as platforms send them: a list of
// name/value pairs (Shopify note_attributes use "name", WooCommerce
// meta_data and Saleor metadata use "key") or a plain object (Standard
// Webhooks metadata). Scalar values are kept as text; objects, arrays and
// nulls are left out, since nothing Refrain reads from attributes is
// structured. A malformed attribute list is never a reason to refuse an
// order, so entries that do not fit are skipped rather than rejected.
type Attrs map[string]string

// UnmarshalJSON accepts a list of {name|key, value} objects or an object.
func (a *Attrs) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	out := Attrs{}
	put := func(k string, raw json.RawMessage) {
		var t Text
		if k == "" || len(raw) == 0 || json.Unmarshal(raw, &t) != nil || t == "" {
			return
		}
		out[k] = string(t)
	}
	switch {
	case len(b) == 0 || b[0] == 'n':
	case b[0] == '[':
		var list []struct {
			Name  string          `json:"name"`
			Key   string          `json:"key"`
			Value json.RawMessage `json:"value"`
		}
		if err := json.Unmarshal(b, &list); err != nil {
			return nil
		}
		for _, e := range list {
			k := e.Name
			if k == "" {
				k = e.Key
			}
			put(k, e.Value)
		}
	case b[0] == '{':
		var m map[string]json.RawMessage
		if err := json.Unmarshal(b, &m); err != nil {
			return nil
		}
		for k, v := range m {
			put(k, v)
		}
	}
	if len(out) > 0 {
		*a = out
	}
	return nil
}
