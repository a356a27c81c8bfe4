package engine

import (
	"context"
	"fmt"
	"sync"

	"github.com/uptrace/bun"

	"github.com/refrain-dev/refrain/scenarios"
)

// Current is a stored scenario with its current definition parsed.
type Current struct {
	ID      string
	Version int
	Status  Status
	Def     *scenarios.Scenario
}

// Catalog lists every stored scenario with its current definition, as the
// programs of the API. Definitions are parsed (not validated again: they
// were when saved) and kept by id and text, so a list costs one statement
// and no parsing once warm. The zero Catalog is ready to use.
type Catalog struct {
	mu     sync.Mutex
	parsed map[string]*scenarios.Scenario // id NUL definition
}

// List returns every scenario by id, with its current definition.
func (c *Catalog) List(ctx context.Context, db bun.IDB) ([]Current, error) {
	var rows []struct {
		ID         string `bun:"id"`
		Version    int    `bun:"version"`
		Status     Status `bun:"status"`
		Definition string `bun:"definition"`
	}
	if err := db.NewRaw(`SELECT s.id, s.version, s.status, v.definition FROM scenarios s
JOIN scenario_versions v ON v.scenario_id = s.id AND v.version = s.version ORDER BY s.id`).Scan(ctx, &rows); err != nil {
		return nil, fmt.Errorf("list programs: %w", err)
	}
	out := make([]Current, 0, len(rows))
	for _, row := range rows {
		sc, err := c.parse(row.ID, row.Definition)
		if err != nil {
			return nil, fmt.Errorf("read program %q: %w", row.ID, err)
		}
		out = append(out, Current{ID: row.ID, Version: row.Version, Status: row.Status, Def: sc})
	}
	return out, nil
}

func (c *Catalog) parse(id, definition string) (*scenarios.Scenario, error) {
	key := id + "\x00" + definition
	c.mu.Lock()
	sc, ok := c.parsed[key]
	c.mu.Unlock()
	if ok {
		return sc, nil
	}
	sc, err := scenarios.Parse(id, []byte(definition))
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	if c.parsed == nil {
		c.parsed = map[string]*scenarios.Scenario{}
	}
	c.parsed[key] = sc
	c.mu.Unlock()
	return sc, nil
}
