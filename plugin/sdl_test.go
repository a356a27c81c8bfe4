package plugin_test

import "strings"

// fieldsOf returns the field lines of every definition or extension of a
// type in an SDL, descriptions and blank lines left out.
func fieldsOf(sdl, typ string) []string {
	var out []string
	lines := strings.Split(sdl, "\n")
	in, inDesc := false, false
	for _, l := range lines {
		t := strings.TrimSpace(l)
		if !in {
			if (strings.HasPrefix(t, "type "+typ+" ") || strings.HasPrefix(t, "extend type "+typ+" ") ||
				t == "type "+typ+" {" || t == "extend type "+typ+" {") && strings.HasSuffix(t, "{") {
				in = true
			}
			continue
		}
		switch {
		case t == "}":
			in = false
		case strings.HasPrefix(t, `"""`):
			if !(len(t) > 3 && strings.HasSuffix(t, `"""`)) {
				inDesc = !inDesc
			}
		case inDesc || t == "" || strings.HasPrefix(t, `"`) || strings.HasPrefix(t, "#"):
		default:
			out = append(out, t)
		}
	}
	return out
}
