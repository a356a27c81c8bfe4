package template_test

import (
	"os"
	"path/filepath"
	"sync"
	"testing"
	"testing/fstest"

	"github.com/stretchr/testify/require"

	"github.com/refrain-dev/refrain/plugin/mail/template"
)

func file(s string) *fstest.MapFile { return &fstest.MapFile{Data: []byte(s)} }

func baseFS() fstest.MapFS {
	return fstest.MapFS{
		"_layout/en/layout.html": file(`<html lang="en"><body>{{template "content" .}}{{if .UnsubscribeURL}}<a href="{{.UnsubscribeURL}}">Unsubscribe</a>{{end}}</body></html>`),
		"_layout/en/layout.txt":  file("{{template \"content\" .}}\n--\n{{if .UnsubscribeURL}}Unsubscribe: {{.UnsubscribeURL}}{{end}}"),
		"_layout/fr/layout.html": file(`<html lang="fr"><body>{{template "content" .}}{{if .UnsubscribeURL}}<a href="{{.UnsubscribeURL}}">Se désinscrire</a>{{end}}</body></html>`),
		"offer/en/subject.txt":   file("Hello {{default \"there\" .Customer.FirstName}}\n"),
		"offer/en/body.html":     file(`<p>Code <b>{{.Values.discount_code}}</b> for {{.Customer.Email}}</p>{{range .Cart.Items}}<li>{{.Title}} {{.Price}}</li>{{end}}`),
		"offer/en/body.txt":      file("Code {{.Values.discount_code}}\n\n\n\n{{money 1250 \"EUR\"}}"),
		"offer/fr/subject.txt":   file("Bonjour {{.Customer.FirstName}}"),
		"offer/fr/body.html":     file(`<p>Code {{.Values.discount_code}}</p>`),
		"offer/fr/body.txt":      file("Code {{.Values.discount_code}}"),
		"plain/en/subject.txt":   file("Plain"),
		"plain/en/body.html":     file(`<p>{{with index .Values "maybe"}}Maybe {{.}}{{else}}Nothing{{end}}</p>`),
	}
}

func newEngine(t *testing.T) *template.Engine {
	t.Helper()
	e, err := template.New(nil)
	require.NoError(t, err)
	require.NoError(t, e.Load(baseFS()))
	return e
}

func sample() template.Data {
	return template.Data{
		Customer:       template.Customer{Email: "ada@example.com", FirstName: "Ada"},
		Cart:           template.Cart{Items: []template.Item{{Title: "Mug <big>", Quantity: 2, Price: "€9.00"}}},
		Values:         map[string]string{"discount_code": "HELLO10"},
		UnsubscribeURL: "https://shop.example/u/tok",
	}
}

func TestRenderWithLayoutAndEscaping(t *testing.T) {
	e := newEngine(t)
	out, err := e.Render("offer", "en", sample())
	require.NoError(t, err)
	require.Equal(t, template.Rendered{
		Subject: "Hello Ada",
		HTML:    `<html lang="en"><body><p>Code <b>HELLO10</b> for ada@example.com</p><li>Mug &lt;big&gt; €9.00</li><a href="https://shop.example/u/tok">Unsubscribe</a></body></html>`,
		Text:    "Code HELLO10\n\n€12.50\n--\nUnsubscribe: https://shop.example/u/tok\n",
		Locale:  "en",
	}, out)

	d := sample()
	d.Customer.FirstName = ""
	out, err = e.Render("offer", "en", d)
	require.NoError(t, err)
	require.Equal(t, "Hello there", out.Subject)
}

func TestLocaleFallback(t *testing.T) {
	e := newEngine(t)
	cases := []struct{ locale, want, lang string }{
		{"fr-CA", "fr", `lang="fr"`},
		{"fr_FR", "fr", `lang="fr"`},
		{"FR", "fr", `lang="fr"`},
		{"de-AT", "en", `lang="en"`},
		{"", "en", `lang="en"`},
		{"not a locale!", "en", `lang="en"`},
	}
	for _, tc := range cases {
		out, err := e.Render("offer", tc.locale, sample())
		require.NoError(t, err, tc.locale)
		require.Equal(t, tc.want, out.Locale, tc.locale)
		require.Contains(t, out.HTML, tc.lang, tc.locale)
	}
	// The fr set has no text layout: the body alone.
	out, err := e.Render("offer", "fr", sample())
	require.NoError(t, err)
	require.Equal(t, "Code HELLO10\n", out.Text)

	_, err = e.Render("missing", "en", sample())
	require.ErrorIs(t, err, template.ErrNotFound)
}

func TestNamesHasRequiredValues(t *testing.T) {
	e := newEngine(t)
	require.Equal(t, []string{"offer", "plain"}, e.Names())
	require.True(t, e.Has("offer"))
	require.False(t, e.Has("nope"))
	require.Equal(t, []string{"en", "fr"}, e.Locales("offer"))
	require.Equal(t, []string{"discount_code"}, e.RequiredValues("offer"))
	require.Empty(t, e.RequiredValues("plain"), "index reads an optional value")
}

func TestMissingValueFailsAtRender(t *testing.T) {
	e := newEngine(t)
	d := sample()
	d.Values = nil
	_, err := e.Render("offer", "en", d)
	require.ErrorContains(t, err, `render template "offer" (en)`)
	require.ErrorContains(t, err, "discount_code")

	out, err := e.Render("plain", "en", template.Data{})
	require.NoError(t, err)
	require.Equal(t, "<p>Nothing</p>", out.HTML[len(out.HTML)-len("<p>Nothing</p>")-len("</body></html>"):len(out.HTML)-len("</body></html>")])
}

func TestLoadErrorsNameTheFileAndLine(t *testing.T) {
	cases := []struct {
		name  string
		files fstest.MapFS
		want  []string
	}{
		{
			name: "unknown field in a branch a sample render would skip",
			files: fstest.MapFS{
				"bad/en/subject.txt": file("Hi"),
				"bad/en/body.html":   file("<p>ok</p>\n{{if not .Customer.Email}}\n<p>{{.Customer.Nickname}}</p>{{end}}"),
			},
			want: []string{`template "bad" (en)`, "bad/en/body.html:3", `unknown field "Nickname" in .Customer`},
		},
		{
			name: "unknown top-level field in the subject",
			files: fstest.MapFS{
				"bad/en/subject.txt": file("Hi {{.Shop.Name}}"),
				"bad/en/body.html":   file("<p>ok</p>"),
			},
			want: []string{"bad/en/subject.txt:1", `unknown field "Shop" in the template data`},
		},
		{
			name: "unknown field inside a range",
			files: fstest.MapFS{
				"bad/en/subject.txt": file("Hi"),
				"bad/en/body.html":   file("<p>ok</p>"),
				"bad/en/body.txt":    file("Items:\n{{range .Cart.Items}}\n{{.Name}}\n{{end}}"),
			},
			want: []string{"bad/en/body.txt:3", `unknown field "Name" in .Cart.Items[]`},
		},
		{
			name: "parse error",
			files: fstest.MapFS{
				"bad/en/subject.txt": file("Hi"),
				"bad/en/body.html":   file("<p>ok</p>\n\n{{if .Customer.Email}}unclosed"),
			},
			want: []string{"bad/en/body.html:3", "unexpected EOF"},
		},
		{
			name: "unknown function",
			files: fstest.MapFS{
				"bad/en/subject.txt": file("Hi {{shout .Customer.FirstName}}"),
				"bad/en/body.html":   file("<p>ok</p>"),
			},
			want: []string{"bad/en/subject.txt:1", `function "shout" not defined`},
		},
		{
			name: "attribute read as a field",
			files: fstest.MapFS{
				"bad/en/subject.txt": file("Hi"),
				"bad/en/body.html":   file(`<p>{{.Customer.Preferences.diet}}</p>`),
			},
			want: []string{"bad/en/body.html:1", `write {{index .Customer.Preferences "diet"}}`},
		},
		{
			name: "wrong function argument found by the check render",
			files: fstest.MapFS{
				"bad/en/subject.txt": file("Hi"),
				"bad/en/body.html":   file(`<p>{{money .Customer.Email "EUR"}}</p>`),
			},
			want: []string{"check render", "bad/en/body.html:1"},
		},
		{
			name: "missing body",
			files: fstest.MapFS{
				"bad/en/subject.txt": file("Hi"),
			},
			want: []string{"bad/en: HTML body is empty"},
		},
		{
			name: "unexpected file",
			files: fstest.MapFS{
				"bad/en/subject.txt": file("Hi"),
				"bad/en/body.htm":    file("<p>ok</p>"),
			},
			want: []string{"bad/en/body.htm: unexpected file"},
		},
		{
			name: "bad locale folder",
			files: fstest.MapFS{
				"bad/english/subject.txt": file("Hi"),
			},
			want: []string{"bad/english", "not a language tag"},
		},
		{
			name: "layout without content",
			files: fstest.MapFS{
				"_layout/en/layout.html": file("<html></html>"),
				"ok/en/subject.txt":      file("Hi"),
				"ok/en/body.html":        file("<p>ok</p>"),
			},
			want: []string{`_layout/en/layout.html: no {{template "content" .}}`},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e, err := template.New(nil)
			require.NoError(t, err)
			err = e.Load(tc.files)
			require.Error(t, err)
			for _, w := range tc.want {
				require.ErrorContains(t, err, w)
			}
			require.Empty(t, e.Names(), "a failed load installs nothing")
		})
	}
}

func TestFailedLoadKeepsWhatWasThere(t *testing.T) {
	e := newEngine(t)
	err := e.Load(fstest.MapFS{
		"offer/en/subject.txt": file("{{.Nope}}"),
		"offer/en/body.html":   file("<p>x</p>"),
		"extra/en/subject.txt": file("Extra"),
		"extra/en/body.html":   file("<p>x</p>"),
	})
	require.Error(t, err)
	require.Equal(t, []string{"offer", "plain"}, e.Names())
	out, err := e.Render("offer", "en", sample())
	require.NoError(t, err)
	require.Equal(t, "Hello Ada", out.Subject)
}

func TestAddOverridesAndUsesTheLayout(t *testing.T) {
	e := newEngine(t)
	require.NoError(t, e.Add("offer", "en", "From the database", "<p>{{.Store.Name}}</p>", ""))
	require.NoError(t, e.Add("promo", "fr-CA", "Promo {{.Values.code}}", "<p>Promo</p>", "Promo"))

	out, err := e.Render("offer", "en-GB", template.Data{Store: template.Store{Name: "Shop"}})
	require.NoError(t, err)
	require.Equal(t, "From the database", out.Subject)
	require.Equal(t, `<html lang="en"><body><p>Shop</p></body></html>`, out.HTML)
	require.Empty(t, out.Text)

	out, err = e.Render("promo", "fr-CA", template.Data{Values: map[string]string{"code": "X"}})
	require.NoError(t, err)
	require.Equal(t, "fr-ca", out.Locale)
	require.Contains(t, out.HTML, `lang="fr"`, "fr-CA uses the fr layout")
	require.Equal(t, []string{"code"}, e.RequiredValues("promo"))

	err = e.Add("promo", "en", "Hi {{.Custmer.Email}}", "<p>x</p>", "")
	require.ErrorContains(t, err, `add template "promo" (en)`)
	require.ErrorContains(t, err, "db:promo/en/subject.txt:1")
	require.ErrorContains(t, err, `unknown field "Custmer"`)

	require.ErrorContains(t, e.Add("Bad Name", "en", "s", "h", ""), "is not lowercase letters")
	require.ErrorContains(t, e.Add("ok", "english", "s", "h", ""), "not a language tag")
	require.ErrorContains(t, e.Add("ok", "en", " ", "h", ""), "subject is empty")
}

func TestLoadDirOverridesBuiltins(t *testing.T) {
	e := newEngine(t)
	dir := t.TempDir()
	write := func(rel, content string) {
		p := filepath.Join(dir, rel)
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, []byte(content), 0o644))
	}
	write("offer/en/subject.txt", "Overridden")
	write("offer/en/body.html", "<p>over</p>")
	write("_layout/en/layout.html", `<main>{{template "content" .}}</main>`)
	write("README.md", "ignored: not a folder")
	require.NoError(t, e.LoadDir(dir))

	out, err := e.Render("offer", "en", sample())
	require.NoError(t, err)
	require.Equal(t, "Overridden", out.Subject)
	require.Equal(t, "<main><p>over</p></main>", out.HTML)
	// The new layout applies to templates loaded before it.
	out, err = e.Render("plain", "en", template.Data{})
	require.NoError(t, err)
	require.Equal(t, "<main><p>Nothing</p></main>", out.HTML)

	write("broken/en/subject.txt", "{{")
	write("broken/en/body.html", "<p></p>")
	err = e.LoadDir(dir)
	require.ErrorContains(t, err, "load templates from "+dir)
	require.ErrorContains(t, err, filepath.Join(dir, "broken/en")+"/subject.txt:1")

	require.ErrorContains(t, e.LoadDir(filepath.Join(dir, "nope")), "no such file")
}

func TestConcurrentRenderAndAdd(t *testing.T) {
	e := newEngine(t)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for range 50 {
				_, err := e.Render("offer", "fr-CA", sample())
				require.NoError(t, err)
				if i == 0 {
					require.NoError(t, e.Add("dyn", "en", "Dyn", "<p>dyn</p>", ""))
				}
			}
		})
	}
	wg.Wait()
}

func TestNewOptions(t *testing.T) {
	e, err := template.New(&template.Opts{DefaultLocale: "fr"})
	require.NoError(t, err)
	require.NoError(t, e.Load(baseFS()))
	out, err := e.Render("offer", "de", sample())
	require.NoError(t, err)
	require.Equal(t, "fr", out.Locale)

	_, err = template.New(&template.Opts{DefaultLocale: "french"})
	require.ErrorContains(t, err, "DefaultLocale")
}

func TestMoney(t *testing.T) {
	cases := []struct {
		minor    int64
		currency string
		want     string
	}{
		{1250, "EUR", "€12.50"},
		{1250, "usd", "$12.50"},
		{5, "GBP", "£0.05"},
		{0, "EUR", "€0.00"},
		{1200, "JPY", "¥1200"},
		{-500, "EUR", "-€5.00"},
		{1250, "CHF", "12.50 CHF"},
		{12345, "KWD", "12.345 KWD"},
		{1250, "", "12.50"},
		{-9223372036854775808, "EUR", "-€92233720368547758.08"},
	}
	for _, tc := range cases {
		require.Equal(t, tc.want, template.Money(tc.minor, tc.currency), "%d %s", tc.minor, tc.currency)
	}
}
