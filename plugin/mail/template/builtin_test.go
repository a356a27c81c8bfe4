package template_test

import (
	"io/fs"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/refrain-dev/refrain/plugin/mail/template"
	"github.com/refrain-dev/refrain/scenarios/library/templates"
)

// The templates of DOMAIN.md's program library, and the step values each needs.
var builtins = map[string][]string{
	"subscription-confirm":    {"confirm_url"},
	"welcome":                 nil,
	"welcome-resend":          nil,
	"welcome-discount-survey": {"discount_code", "survey_url"},
	"welcome-survey-reminder": {"survey_url"},
	"survey-thanks-code":      {"discount_code"},
	"new-customer-offer":      {"discount_code"},
	"customer-anniversary":    {"discount_code"},
	"store-anniversary":       {"discount_code"},
	"contest-announce":        {"closes_on", "contest_url"},
	"contest-reminder":        {"closes_on", "contest_url"},
	"cart-reminder-1h":        nil,
	"cart-reminder-24h":       nil,
	"cart-reminder-72h":       {"discount_code"},
	"registered-not-returned": {"password_reset_url"},
	"win-back":                {"discount_code"},
	"sunset-survey":           {"survey_url"},
	"sunset-last-call":        {"keep_url"},
}

func builtinData(values []string) template.Data {
	d := template.Data{
		Customer: template.Customer{
			ID: "c1", Email: "ada@example.com", FirstName: "Ada", LastName: "Lovelace", Locale: "fr-CA",
			Attributes: map[string]any{}, Preferences: map[string]any{},
		},
		Lifecycle: template.Lifecycle{Stage: "NEW_CUSTOMER", OrdersCount: 1, TotalSpent: template.Money(4200, "EUR")},
		Cart: template.Cart{
			Items: []template.Item{
				{Title: "Stoneware mug", Quantity: 2, Price: template.Money(2400, "EUR")},
				{Title: "Linen tea towel", Quantity: 1, Price: template.Money(1250, "EUR")},
			},
			Total:       template.Money(3650, "EUR"),
			RecoveryURL: "https://shop.example/cart/recover/abc",
		},
		Order:          template.Order{Number: "1042", Total: template.Money(3650, "EUR")},
		Values:         map[string]string{},
		Store:          template.Store{Name: "Atelier Shop", URL: "https://shop.example"},
		UnsubscribeURL: "https://shop.example/u/tok-123",
		PreferencesURL: "https://shop.example/p/tok-123",
	}
	for _, v := range values {
		d.Values[v] = "VALUE-" + v
	}
	return d
}

func TestBuiltinTemplates(t *testing.T) {
	_, err := fs.Stat(templates.FS, "_layout/en/layout.html")
	require.NoError(t, err, "the layouts are embedded")

	e, err := template.New(nil)
	require.NoError(t, err)
	require.NoError(t, e.Load(templates.FS))

	var names []string
	for name := range builtins {
		names = append(names, name)
	}
	require.ElementsMatch(t, names, e.Names())

	for _, name := range e.Names() {
		locales := e.Locales(name)
		require.Contains(t, locales, "en", name)
		require.Contains(t, locales, "fr", name)
		require.Equal(t, builtins[name], nilIfEmpty(e.RequiredValues(name)), name)

		for _, locale := range locales {
			t.Run(name+"/"+locale, func(t *testing.T) {
				data := builtinData(e.RequiredValues(name))
				if name == "subscription-confirm" {
					data.UnsubscribeURL, data.PreferencesURL = "", "" // transactional
				}
				out, err := e.Render(name, locale, data)
				require.NoError(t, err)
				require.Equal(t, locale, out.Locale)
				require.NotEmpty(t, out.Subject)
				require.NotContains(t, out.Subject, "\n")
				require.Contains(t, out.HTML, `<html lang="`+locale+`">`)
				require.Contains(t, out.HTML, "Ada")
				require.Contains(t, out.Text, "Ada")
				for _, body := range []string{out.Subject, out.HTML, out.Text} {
					require.NotContains(t, body, "<no value>")
					require.NotContains(t, body, "ZgotmplZ", "a URL html/template refused")
				}
				for _, v := range e.RequiredValues(name) {
					require.Contains(t, out.HTML+out.Subject, "VALUE-"+v, "value %s is shown", v)
					require.Contains(t, out.Text+out.Subject, "VALUE-"+v, "value %s is in the text part", v)
				}
				if name == "subscription-confirm" {
					require.NotContains(t, out.HTML, "/u/")
				} else {
					require.Contains(t, out.HTML, `href="https://shop.example/u/tok-123"`, "marketing mail shows the unsubscribe link")
					require.Contains(t, out.Text, "https://shop.example/u/tok-123")
				}
				if strings.HasPrefix(name, "cart-reminder-") {
					for _, part := range []string{out.HTML, out.Text} {
						require.Contains(t, part, "Stoneware mug")
						require.Contains(t, part, "Linen tea towel")
						require.Contains(t, part, "€36.50")
						require.Contains(t, part, "https://shop.example/cart/recover/abc")
					}
				}
			})
		}
	}
	require.Equal(t, []string{"en", "es", "fr"}, e.Locales("welcome"))
}

// TestBuiltinLibraryComplete: every library mail exists in every library
// language, so no customer of those languages gets a series that falls
// back to another one part way, and each translation is a translation
// (its subject and body differ from the English).
func TestBuiltinLibraryComplete(t *testing.T) {
	e, err := template.New(nil)
	require.NoError(t, err)
	require.NoError(t, e.Load(templates.FS))
	for _, name := range e.Names() {
		data := builtinData(e.RequiredValues(name))
		en, err := e.Render(name, "en", data)
		require.NoError(t, err)
		for _, locale := range []string{"fr", "es", "es-MX", "fr-CA"} {
			out, err := e.Render(name, locale, data)
			require.NoError(t, err)
			require.Equal(t, locale[:2], out.Locale, "%s in %s falls back to %s", name, locale, out.Locale)
			require.NotEqual(t, en.Subject, out.Subject, "%s/%s: the subject is not translated", name, locale)
			require.NotEqual(t, en.Text, out.Text, "%s/%s: the text is not translated", name, locale)
		}
	}
}

func TestBuiltinOptionalIncentive(t *testing.T) {
	e, err := template.New(nil)
	require.NoError(t, err)
	require.NoError(t, e.Load(templates.FS))

	data := builtinData([]string{"survey_url"})
	out, err := e.Render("sunset-survey", "en", data)
	require.NoError(t, err)
	require.NotContains(t, out.Text, "thank-you for answering")

	data.Values["discount_code"] = "STAY30"
	out, err = e.Render("sunset-survey", "en", data)
	require.NoError(t, err)
	require.Contains(t, out.HTML, "<strong>STAY30</strong>")
	require.Contains(t, out.Text, "As a thank-you for answering: STAY30")
}

func nilIfEmpty(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	return s
}
