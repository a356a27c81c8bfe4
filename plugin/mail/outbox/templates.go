package outbox

import (
	"context"
	"fmt"
	"time"

	"github.com/uptrace/bun"

	"github.com/refrain-dev/refrain/plugin/mail/template"
)

// LoadStoredTemplates adds every template stored in the database to engine,
// over the built-in and file templates of the same name and locale.
func LoadStoredTemplates(ctx context.Context, db bun.IDB, engine *template.Engine) error {
	ts, err := ListStoredTemplates(ctx, db)
	if err != nil {
		return err
	}
	sets := make([]template.Set, 0, len(ts))
	for _, t := range ts {
		sets = append(sets, template.Set{Name: t.Name, Locale: t.Locale, Subject: t.Subject, HTML: t.HTML, Text: t.Text})
	}
	if err := engine.AddSets(sets); err != nil {
		return fmt.Errorf("load stored templates: %w", err)
	}
	return nil
}

// ListStoredTemplates returns the templates stored in the database by name and locale.
func ListStoredTemplates(ctx context.Context, db bun.IDB) ([]*StoredTemplate, error) {
	var ts []*StoredTemplate
	if err := db.NewSelect().Model(&ts).Order("name ASC", "locale ASC").Scan(ctx); err != nil {
		return nil, fmt.Errorf("list stored templates: %w", err)
	}
	return ts, nil
}

// TemplateError is a template refused when saved: Err names the template,
// the file and the line.
type TemplateError struct{ Err error }

// Error returns the check's message.
func (e *TemplateError) Error() string { return e.Err.Error() }

// Unwrap returns the check's error.
func (e *TemplateError) Unwrap() error { return e.Err }

// UpsertTemplate checks a template set and stores it, then installs it in
// engine. A set that does not compile or reads an unknown field is refused
// with a *TemplateError and nothing is stored.
func UpsertTemplate(ctx context.Context, db bun.IDB, engine *template.Engine, now time.Time, set template.Set) (*StoredTemplate, error) {
	if err := engine.Check(set); err != nil {
		return nil, &TemplateError{Err: err}
	}
	t := &StoredTemplate{Name: set.Name, Locale: set.Locale, Subject: set.Subject, HTML: set.HTML, Text: set.Text,
		CreatedAt: now, UpdatedAt: now}
	_, err := db.NewInsert().Model(t).
		On("CONFLICT (name, locale) DO UPDATE").
		Set("subject = EXCLUDED.subject").Set("html = EXCLUDED.html").Set("text = EXCLUDED.text").
		Set("updated_at = EXCLUDED.updated_at").
		Returning("id, created_at").Exec(ctx)
	if err != nil {
		return nil, fmt.Errorf("store template %q (%s): %w", set.Name, set.Locale, err)
	}
	if err := engine.Add(set.Name, set.Locale, set.Subject, set.HTML, set.Text); err != nil {
		return nil, &TemplateError{Err: err}
	}
	return t, nil
}

// TemplatesVersion summarises the stored templates (count and last change),
// so that replicas notice another replica's upsert and reload.
func TemplatesVersion(ctx context.Context, db bun.IDB) (string, error) {
	var row struct {
		N    int        `bun:"n"`
		Last *time.Time `bun:"last"`
	}
	if err := db.NewSelect().Model((*StoredTemplate)(nil)).ColumnExpr("count(*) AS n, max(updated_at) AS last").Scan(ctx, &row); err != nil {
		return "", fmt.Errorf("read stored templates version: %w", err)
	}
	last := ""
	if row.Last != nil {
		last = row.Last.UTC().Format(time.RFC3339Nano)
	}
	return fmt.Sprintf("%d/%s", row.N, last), nil
}
