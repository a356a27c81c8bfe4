// Package template renders Refrain's messages: Go templates (html/template
// for the HTML body, text/template for the subject and the text body) in one
// set per locale, inside a shared layout, checked when loaded so that a
// mistake fails at start-up and never when a message is sent.
//
// A template set lives in a file tree:
//
//	<name>/<locale>/subject.txt   the subject line (text/template)
//	<name>/<locale>/body.html     the HTML body (html/template)
//	<name>/<locale>/body.txt      the text body (text/template, optional)
//	_layout/<locale>/layout.html  the HTML shell; {{template "content" .}} places the body
//	_layout/<locale>/layout.txt   the text shell (optional)
//
// Dot is a Data. The functions money ({{money 1250 "EUR"}}) and default
// ({{default "there" .Customer.FirstName}}) are available besides Go's
// built-ins. Reading a step value as {{.Values.discount_code}} makes it
// required (see Engine.RequiredValues); {{index .Values "x"}} reads an
// optional one. Customer attributes and preferences are read with index.
//
// A locale resolves from the most to the least specific: fr-CA, then fr,
// then the engine's default locale; the layout resolves the same way.
package template

import (
	"bytes"
	"errors"
	"fmt"
	htmltemplate "html/template"
	"io/fs"
	"log/slog"
	"maps"
	"os"
	"path"
	"reflect"
	"slices"
	"strings"
	"sync"
	texttemplate "text/template"
	"text/template/parse"
	"unicode"
)

// ErrNotFound reports a template name, or a locale of it, that the engine
// does not have.
var ErrNotFound = errors.New("template not found")

// layoutDir is the folder of the layouts, beside the template folders.
const layoutDir = "_layout"

// Opts configures an Engine; the zero value and nil mean the defaults.
type Opts struct {
	// DefaultLocale is the last locale tried when rendering. Default "en".
	DefaultLocale string
	// Logger receives load notices. Nil discards them.
	Logger *slog.Logger
}

// Rendered is a rendered message.
type Rendered struct {
	// Subject is one line, surrounding space trimmed.
	Subject string
	// HTML is the HTML body inside the layout.
	HTML string
	// Text is the text body inside the text layout, empty when the
	// template has none.
	Text string
	// Locale is the locale of the template set used, after fallback.
	Locale string
}

// Engine holds the template sets by name and locale. It is safe for
// concurrent use; loading replaces sets atomically, so a failed load leaves
// the engine as it was.
type Engine struct {
	defaultLocale string
	logger        *slog.Logger

	mu       sync.RWMutex
	sources  map[string]map[string]source // name → locale → source
	layouts  map[string]source            // locale → layout (subject unused)
	compiled map[string]map[string]*compiled
}

// source is the text of one template set, and where it came from.
type source struct {
	subject, html, text string
	origin              string // "welcome/en", "db:welcome/en"
}

type compiled struct {
	subject   *texttemplate.Template
	html      *htmltemplate.Template
	htmlEntry string
	text      *texttemplate.Template
	textEntry string
	values    []string
	reads     map[string]bool
}

// New returns an empty engine.
func New(opts *Opts) (*Engine, error) {
	var o Opts
	if opts != nil {
		o = *opts
	}
	if o.DefaultLocale == "" {
		o.DefaultLocale = "en"
	}
	def, err := normaliseLocale(o.DefaultLocale)
	if err != nil {
		return nil, fmt.Errorf("template options: DefaultLocale: %w", err)
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return &Engine{
		defaultLocale: def,
		logger:        o.Logger,
		sources:       map[string]map[string]source{},
		layouts:       map[string]source{},
		compiled:      map[string]map[string]*compiled{},
	}, nil
}

// Load adds the template sets and layouts of fsys (laid out as the package
// documentation says), replacing those of the same name and locale. Every
// template is checked before any is installed.
func (e *Engine) Load(fsys fs.FS) error {
	sets, layouts, err := readFS(fsys, "")
	if err != nil {
		return fmt.Errorf("load templates: %w", err)
	}
	if err := e.install(sets, layouts); err != nil {
		return fmt.Errorf("load templates: %w", err)
	}
	return nil
}

// LoadDir loads the templates of a directory on disk, as Load does: a
// configured directory adds templates to the built-ins or overrides them.
func (e *Engine) LoadDir(dir string) error {
	info, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("load templates from %s: %w", dir, err)
	}
	if !info.IsDir() {
		return fmt.Errorf("load templates from %s: not a directory", dir)
	}
	sets, layouts, err := readFS(os.DirFS(dir), dir+string(os.PathSeparator))
	if err != nil {
		return fmt.Errorf("load templates from %s: %w", dir, err)
	}
	if err := e.install(sets, layouts); err != nil {
		return fmt.Errorf("load templates from %s: %w", dir, err)
	}
	return nil
}

// Add adds or replaces one template set, such as one stored in the
// database. text may be empty; subject and html may not.
func (e *Engine) Add(name, locale, subject, html, text string) error {
	set := Set{Name: name, Locale: locale, Subject: subject, HTML: html, Text: text}
	loc, src, err := set.source()
	if err != nil {
		return fmt.Errorf("add %w", err)
	}
	if err := e.install(map[string]map[string]source{name: {loc: src}}, nil); err != nil {
		return fmt.Errorf("add %w", err)
	}
	return nil
}

// Set is one template set given as text, for AddSets and Check.
type Set struct {
	Name, Locale, Subject, HTML, Text string
}

// AddSets adds or replaces several template sets at once (the templates
// stored in the database, at start): every set is checked before any is
// installed, and everything is compiled once.
func (e *Engine) AddSets(sets []Set) error {
	srcs := map[string]map[string]source{}
	for _, set := range sets {
		loc, src, err := set.source()
		if err != nil {
			return err
		}
		if srcs[set.Name] == nil {
			srcs[set.Name] = map[string]source{}
		}
		srcs[set.Name][loc] = src
	}
	if len(srcs) == 0 {
		return nil
	}
	if err := e.install(srcs, nil); err != nil {
		return fmt.Errorf("add templates: %w", err)
	}
	return nil
}

// Check compiles and checks one template set within the current layouts
// without installing it: what Add would refuse, Check returns, naming the
// template and line.
func (e *Engine) Check(set Set) error {
	loc, src, err := set.source()
	if err != nil {
		return err
	}
	e.mu.RLock()
	layout, _ := e.layoutFor(e.layouts, loc)
	e.mu.RUnlock()
	if _, err := compile(src, layout); err != nil {
		return fmt.Errorf("template %q (%s): %w", set.Name, loc, err)
	}
	return nil
}

func (set Set) source() (string, source, error) {
	if err := checkName(set.Name); err != nil {
		return "", source{}, fmt.Errorf("template %q: %w", set.Name, err)
	}
	loc, err := normaliseLocale(set.Locale)
	if err != nil {
		return "", source{}, fmt.Errorf("template %q: %w", set.Name, err)
	}
	src := source{subject: set.Subject, html: set.HTML, text: set.Text, origin: "db:" + set.Name + "/" + loc}
	if err := src.complete(); err != nil {
		return "", source{}, fmt.Errorf("template %q (%s): %w", set.Name, loc, err)
	}
	return loc, src, nil
}

// Render renders template name for locale (with fallback) and data.
func (e *Engine) Render(name, locale string, data Data) (Rendered, error) {
	e.mu.RLock()
	locales, ok := e.compiled[name]
	e.mu.RUnlock()
	if !ok {
		return Rendered{}, fmt.Errorf("render template %q: %w", name, ErrNotFound)
	}
	var c *compiled
	var used string
	for _, candidate := range e.chain(locale) {
		if c = locales[candidate]; c != nil {
			used = candidate
			break
		}
	}
	if c == nil {
		return Rendered{}, fmt.Errorf("render template %q for locale %q: %w", name, locale, ErrNotFound)
	}
	if data.Values == nil {
		data.Values = map[string]string{}
	}
	out, err := c.render(data)
	if err != nil {
		return Rendered{}, fmt.Errorf("render template %q (%s): %w", name, used, err)
	}
	out.Locale = used
	return out, nil
}

// Names returns the template names, sorted.
func (e *Engine) Names() []string {
	e.mu.RLock()
	defer e.mu.RUnlock()
	names := make([]string, 0, len(e.compiled))
	for name := range e.compiled {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

// Has reports whether a template of that name exists in some locale.
func (e *Engine) Has(name string) bool {
	e.mu.RLock()
	defer e.mu.RUnlock()
	_, ok := e.compiled[name]
	return ok
}

// Locales returns the locales template name exists in, sorted.
func (e *Engine) Locales(name string) []string {
	e.mu.RLock()
	defer e.mu.RUnlock()
	locales := make([]string, 0, len(e.compiled[name]))
	for loc := range e.compiled[name] {
		locales = append(locales, loc)
	}
	slices.Sort(locales)
	return locales
}

// RequiredValues returns the step values (Data.Values keys) that template
// name reads as {{.Values.key}} in any locale, sorted: a scenario step
// using the template must provide them.
func (e *Engine) RequiredValues(name string) []string {
	e.mu.RLock()
	defer e.mu.RUnlock()
	var values []string
	for _, c := range e.compiled[name] {
		values = append(values, c.values...)
	}
	slices.Sort(values)
	return slices.Compact(values)
}

// RecipientDependent reports whether template name, in any locale, reads
// what differs between recipients beyond their identity: their attributes,
// preferences or lifecycle (or dot itself, whose use cannot be followed).
// A batch renders such a template per recipient; others once per locale.
func (e *Engine) RecipientDependent(name string) bool {
	// The parts of Data that differ between the recipients of one campaign
	// beyond their identity (id, address, names and links, which a batch
	// leaves to the provider's substitution).
	recipientPaths := []string{"$", ".Customer.Attributes", ".Customer.Preferences", ".Lifecycle", ".Cart", ".Order"}
	e.mu.RLock()
	defer e.mu.RUnlock()
	for _, c := range e.compiled[name] {
		for read := range c.reads {
			for _, p := range recipientPaths {
				if read == p || strings.HasPrefix(read, p+".") || strings.HasPrefix(read, p+"[") {
					return true
				}
			}
		}
	}
	return false
}

// install merges new sets and layouts into copies of the sources, compiles
// everything (a layout change affects every set) and swaps on success.
func (e *Engine) install(sets map[string]map[string]source, layouts map[string]source) error {
	e.mu.Lock()
	defer e.mu.Unlock()

	sources := make(map[string]map[string]source, len(e.sources)+len(sets))
	for name, locales := range e.sources {
		sources[name] = maps.Clone(locales)
	}
	for name, locales := range sets {
		if sources[name] == nil {
			sources[name] = map[string]source{}
		}
		for loc, src := range locales {
			sources[name][loc] = src
		}
	}
	allLayouts := maps.Clone(e.layouts)
	for loc, l := range layouts {
		allLayouts[loc] = l
	}

	compiledSets := make(map[string]map[string]*compiled, len(sources))
	var errs []error
	for _, name := range sortedKeys(sources) {
		compiledSets[name] = map[string]*compiled{}
		for _, loc := range sortedKeys(sources[name]) {
			layout, _ := e.layoutFor(allLayouts, loc)
			c, err := compile(sources[name][loc], layout)
			if err != nil {
				errs = append(errs, fmt.Errorf("template %q (%s): %w", name, loc, err))
				continue
			}
			compiledSets[name][loc] = c
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	e.sources, e.layouts, e.compiled = sources, allLayouts, compiledSets
	e.logger.Debug("templates installed", slog.Int("templates", len(compiledSets)), slog.Int("layouts", len(allLayouts)))
	return nil
}

// layoutFor picks the layout for a locale, with the locale fallback.
func (e *Engine) layoutFor(layouts map[string]source, locale string) (source, bool) {
	for _, candidate := range e.chain(locale) {
		if l, ok := layouts[candidate]; ok {
			return l, true
		}
	}
	return source{}, false
}

// chain lists the locales to try for locale: itself, its parents, then the
// default ("fr-ca" → "fr-ca", "fr", "en"). An unparsable locale goes
// straight to the default.
func (e *Engine) chain(locale string) []string {
	var out []string
	if loc, err := normaliseLocale(locale); err == nil {
		for {
			out = append(out, loc)
			i := strings.LastIndexByte(loc, '-')
			if i < 0 {
				break
			}
			loc = loc[:i]
		}
	}
	if !slices.Contains(out, e.defaultLocale) {
		out = append(out, e.defaultLocale)
	}
	return out
}

func funcs() map[string]any {
	return map[string]any{
		"money": func(minor int, currency string) string { return Money(int64(minor), currency) },
		"default": func(fallback, v any) any {
			if v == nil {
				return fallback
			}
			rv := reflect.ValueOf(v)
			if rv.IsZero() {
				return fallback
			}
			return v
		},
	}
}

// compile parses and checks one template set within its layout.
func compile(src source, layout source) (*compiled, error) {
	values := map[string]bool{}
	c := &compiled{reads: map[string]bool{}}

	subjectPath := src.origin + "/subject.txt"
	subject, err := texttemplate.New(subjectPath).Option("missingkey=error").Funcs(funcs()).Parse(src.subject)
	if err != nil {
		return nil, err
	}
	c.subject = subject

	c.html, c.htmlEntry, err = compileHTML(src, layout)
	if err != nil {
		return nil, err
	}
	if src.text != "" {
		c.text, c.textEntry, err = compileText(src, layout)
		if err != nil {
			return nil, err
		}
	}

	for _, t := range subject.Templates() {
		if err := checkTree(t.Tree, values, c.reads); err != nil {
			return nil, err
		}
	}
	for _, t := range c.html.Templates() {
		if err := checkTree(t.Tree, values, c.reads); err != nil {
			return nil, err
		}
	}
	if c.text != nil {
		for _, t := range c.text.Templates() {
			if err := checkTree(t.Tree, values, c.reads); err != nil {
				return nil, err
			}
		}
	}
	for v := range values {
		c.values = append(c.values, v)
	}
	slices.Sort(c.values)

	// The check render catches what the static check cannot: wrong
	// function arguments, ranging over a string, a value of the wrong type.
	if _, err := c.render(sampleData(c.values)); err != nil {
		return nil, fmt.Errorf("check render: %w", err)
	}
	return c, nil
}

func compileHTML(src, layout source) (*htmltemplate.Template, string, error) {
	bodyPath := src.origin + "/body.html"
	body, err := htmltemplate.New(bodyPath).Option("missingkey=error").Funcs(funcs()).Parse(src.html)
	if err != nil {
		return nil, "", err
	}
	if layout.html == "" {
		return body, bodyPath, nil
	}
	layoutPath := layout.origin + "/layout.html"
	shell, err := htmltemplate.New(layoutPath).Option("missingkey=error").Funcs(funcs()).Parse(layout.html)
	if err != nil {
		return nil, "", err
	}
	var trees []*parse.Tree
	for _, t := range shell.Templates() {
		trees = append(trees, t.Tree)
	}
	if !callsTemplate("content", trees...) {
		return nil, "", fmt.Errorf("%s: no {{template \"content\" .}} for the body", layoutPath)
	}
	if err := adopt(shell, body, bodyPath); err != nil {
		return nil, "", err
	}
	return shell, layoutPath, nil
}

// adopt adds the body's tree to the layout as "content", with any template
// the body defines (a body may fill a {{block}} of the layout).
func adopt(shell, body *htmltemplate.Template, bodyPath string) error {
	for _, t := range body.Templates() {
		name := t.Name()
		if name == bodyPath {
			name = "content"
		}
		if t.Tree == nil {
			continue
		}
		if _, err := shell.AddParseTree(name, t.Tree); err != nil {
			return fmt.Errorf("%s: %w", bodyPath, err)
		}
	}
	return nil
}

func compileText(src, layout source) (*texttemplate.Template, string, error) {
	bodyPath := src.origin + "/body.txt"
	body, err := texttemplate.New(bodyPath).Option("missingkey=error").Funcs(funcs()).Parse(src.text)
	if err != nil {
		return nil, "", err
	}
	if layout.text == "" {
		return body, bodyPath, nil
	}
	layoutPath := layout.origin + "/layout.txt"
	shell, err := texttemplate.New(layoutPath).Option("missingkey=error").Funcs(funcs()).Parse(layout.text)
	if err != nil {
		return nil, "", err
	}
	var trees []*parse.Tree
	for _, t := range shell.Templates() {
		trees = append(trees, t.Tree)
	}
	if !callsTemplate("content", trees...) {
		return nil, "", fmt.Errorf("%s: no {{template \"content\" .}} for the body", layoutPath)
	}
	for _, t := range body.Templates() {
		name := t.Name()
		if name == bodyPath {
			name = "content"
		}
		if t.Tree == nil {
			continue
		}
		if _, err := shell.AddParseTree(name, t.Tree); err != nil {
			return nil, "", fmt.Errorf("%s: %w", bodyPath, err)
		}
	}
	return shell, layoutPath, nil
}

func (c *compiled) render(data Data) (Rendered, error) {
	var out Rendered
	var buf bytes.Buffer
	if err := c.subject.Execute(&buf, data); err != nil {
		return Rendered{}, err
	}
	out.Subject = FoldHeader(buf.String())
	if out.Subject == "" {
		return Rendered{}, fmt.Errorf("%s: the subject is empty", c.subject.Name())
	}

	buf.Reset()
	if err := c.html.ExecuteTemplate(&buf, c.htmlEntry, data); err != nil {
		return Rendered{}, err
	}
	out.HTML = strings.TrimSpace(buf.String())

	if c.text != nil {
		buf.Reset()
		if err := c.text.ExecuteTemplate(&buf, c.textEntry, data); err != nil {
			return Rendered{}, err
		}
		out.Text = tidyText(buf.String())
	}
	return out, nil
}

// FoldHeader folds a header value onto one line: control characters (a
// line break in a customer's name would otherwise start a new header) and
// runs of white space become one space, and the ends are trimmed.
func FoldHeader(s string) string {
	return strings.Join(strings.Fields(strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)), " ")
}

// EscapeHTMLText escapes s as html/template escapes a value in HTML text
// and quoted attributes, so that a value substituted into a rendered body
// reads as the same value rendered by the template.
func EscapeHTMLText(s string) string {
	if !strings.ContainsAny(s, "\x00\"&'+<>") {
		return s
	}
	return strings.NewReplacer("\x00", "\uFFFD", `"`, "&#34;", "&", "&amp;", "'", "&#39;", "+", "&#43;", "<", "&lt;", ">", "&gt;").Replace(s)
}

// tidyText trims trailing spaces and squeezes runs of blank lines left by
// template actions to one.
func tidyText(s string) string {
	var out []string
	blank := false
	for _, l := range strings.Split(s, "\n") {
		l = strings.TrimRight(l, " \t\r")
		if l == "" {
			if blank {
				continue
			}
			blank = true
		} else {
			blank = false
		}
		out = append(out, l)
	}
	return strings.TrimSpace(strings.Join(out, "\n")) + "\n"
}

func (s source) complete() error {
	if strings.TrimSpace(s.subject) == "" {
		return errors.New("subject is empty")
	}
	if strings.TrimSpace(s.html) == "" {
		return errors.New("HTML body is empty")
	}
	return nil
}

// readFS reads a template tree. prefix is prepended to origins so errors
// name the file on disk.
func readFS(fsys fs.FS, prefix string) (map[string]map[string]source, map[string]source, error) {
	sets := map[string]map[string]source{}
	layouts := map[string]source{}
	top, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return nil, nil, err
	}
	for _, entry := range top {
		if !entry.IsDir() {
			continue // embed.go and the like
		}
		name := entry.Name()
		if strings.HasPrefix(name, ".") {
			continue
		}
		if name != layoutDir {
			if err := checkName(name); err != nil {
				return nil, nil, fmt.Errorf("%s%s: %w", prefix, name, err)
			}
		}
		locales, err := fs.ReadDir(fsys, name)
		if err != nil {
			return nil, nil, err
		}
		for _, le := range locales {
			dir := path.Join(name, le.Name())
			if !le.IsDir() {
				return nil, nil, fmt.Errorf("%s%s: expected a locale folder", prefix, dir)
			}
			loc, err := normaliseLocale(le.Name())
			if err != nil {
				return nil, nil, fmt.Errorf("%s%s: %w", prefix, dir, err)
			}
			files, err := readFiles(fsys, dir, prefix)
			if err != nil {
				return nil, nil, err
			}
			origin := prefix + dir
			if name == layoutDir {
				l := source{html: files["layout.html"], text: files["layout.txt"], origin: origin}
				if err := onlyFiles(files, origin, "layout.html", "layout.txt"); err != nil {
					return nil, nil, err
				}
				if strings.TrimSpace(l.html) == "" {
					return nil, nil, fmt.Errorf("%s: layout.html is missing", origin)
				}
				layouts[loc] = l
				continue
			}
			if err := onlyFiles(files, origin, "subject.txt", "body.html", "body.txt"); err != nil {
				return nil, nil, err
			}
			src := source{subject: files["subject.txt"], html: files["body.html"], text: files["body.txt"], origin: origin}
			if err := src.complete(); err != nil {
				return nil, nil, fmt.Errorf("%s: %w", origin, err)
			}
			if sets[name] == nil {
				sets[name] = map[string]source{}
			}
			sets[name][loc] = src
		}
	}
	return sets, layouts, nil
}

func readFiles(fsys fs.FS, dir, prefix string) (map[string]string, error) {
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return nil, err
	}
	files := map[string]string{}
	for _, f := range entries {
		if f.IsDir() || strings.HasPrefix(f.Name(), ".") {
			continue
		}
		b, err := fs.ReadFile(fsys, path.Join(dir, f.Name()))
		if err != nil {
			return nil, fmt.Errorf("read %s%s: %w", prefix, path.Join(dir, f.Name()), err)
		}
		files[f.Name()] = string(b)
	}
	return files, nil
}

func onlyFiles(files map[string]string, origin string, allowed ...string) error {
	for name := range files {
		if !slices.Contains(allowed, name) {
			return fmt.Errorf("%s/%s: unexpected file (expected %s)", origin, name, strings.Join(allowed, ", "))
		}
	}
	return nil
}

// checkName accepts lowercase letters, digits and inner dashes ("cart-reminder-1h").
func checkName(name string) error {
	ok := name != "" && name[0] != '-' && name[len(name)-1] != '-'
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-') {
			ok = false
		}
	}
	if !ok {
		return fmt.Errorf("name %q is not lowercase letters, digits and dashes", name)
	}
	return nil
}

// normaliseLocale lowercases a language tag and writes "fr_CA" as "fr-ca".
// It accepts a 2 or 3 letter language followed by subtags of 2 to 8
// letters or digits.
func normaliseLocale(locale string) (string, error) {
	loc := strings.ToLower(strings.ReplaceAll(strings.TrimSpace(locale), "_", "-"))
	bad := fmt.Errorf("locale %q is not a language tag such as en or fr-CA", locale)
	for i, part := range strings.Split(loc, "-") {
		if i == 0 && (len(part) < 2 || len(part) > 3) || i > 0 && (len(part) < 2 || len(part) > 8) {
			return "", bad
		}
		for _, r := range part {
			if !(r >= 'a' && r <= 'z' || i > 0 && r >= '0' && r <= '9') {
				return "", bad
			}
		}
	}
	return loc, nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
