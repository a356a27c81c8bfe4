package graph

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/refrain-dev/refrain/graph/model"
	"github.com/refrain-dev/refrain/plugin/customer"
	"github.com/refrain-dev/refrain/plugin/mail/consent"
	"github.com/refrain-dev/refrain/plugin/mail/outbox"
)

// messageConnection turns a page of messages into a connection.
func messageConnection(page outbox.Page) *model.MessageConnection {
	conn := &model.MessageConnection{}
	conn.Nodes, conn.Edges, conn.PageInfo = connect(page.Messages, page.HasNextPage,
		func(m *outbox.Message) string { return outbox.EncodeCursor(m.PK) },
		func(c string, m *outbox.Message) *model.MessageEdge { return &model.MessageEdge{Cursor: c, Node: m} })
	return conn
}

// suppressionConnection turns a page of suppressions into a connection.
func suppressionConnection(page outbox.SuppressionPage) *model.SuppressionConnection {
	conn := &model.SuppressionConnection{}
	conn.Nodes, conn.Edges, conn.PageInfo = connect(page.Suppressions, page.HasNextPage,
		func(s *outbox.Suppression) string { return outbox.EncodeCursor(s.ID) },
		func(c string, s *outbox.Suppression) *model.SuppressionEdge {
			return &model.SuppressionEdge{Cursor: c, Node: s}
		})
	return conn
}

// templateList describes every template the engine holds, with the
// locales stored in the database.
func (r *Resolver) templateList(ctx context.Context) ([]*model.Template, error) {
	stored, err := outbox.ListStoredTemplates(ctx, r.DB)
	if err != nil {
		return nil, err
	}
	byName := map[string][]string{}
	for _, t := range stored {
		byName[t.Name] = append(byName[t.Name], t.Locale)
	}
	engine := r.Mail.Engine()
	out := []*model.Template{}
	for _, name := range engine.Names() {
		out = append(out, templateOf(r, name, byName[name]))
	}
	return out, nil
}

func templateOf(r *Resolver, name string, storedLocales []string) *model.Template {
	engine := r.Mail.Engine()
	if storedLocales == nil {
		storedLocales = []string{}
	}
	slices.Sort(storedLocales)
	req := engine.RequiredValues(name)
	if req == nil {
		req = []string{}
	}
	return &model.Template{ID: name, Name: name, Locales: engine.Locales(name), RequiredValues: req, StoredLocales: storedLocales}
}

// stringValues flattens JSON values to the strings templates receive.
func stringValues(in map[string]any) map[string]string {
	out := make(map[string]string, len(in))
	for k, v := range in {
		if s, ok := v.(string); ok {
			out[k] = s
			continue
		}
		out[k] = fmt.Sprint(v)
	}
	return out
}

func consentStateOf(s customer.ConsentState) *model.ConsentState {
	st := model.ConsentState(strings.ToUpper(string(s)))
	return &st
}

// requestOf is who made the GraphQL request, as the HTTP edge recorded it.
func requestOf(ctx context.Context) consent.Request {
	req, _ := consent.RequestFrom(ctx)
	return req
}

// subscribeError maps a subscription failure to a user error, or returns it.
func subscribeError(err error) (*model.UserError, error) {
	var ie *consent.InputError
	switch {
	case errors.As(err, &ie):
		return userError(ie.Message, model.UserErrorCodeInvalid, "input", ie.Field), nil
	case errors.Is(err, consent.ErrRateLimited):
		return userError(consent.ErrRateLimited.Error(), model.UserErrorCodeRateLimited, "input", "email"), nil
	}
	return nil, err
}
