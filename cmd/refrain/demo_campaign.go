package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/refrain-dev/refrain/plugin"
)

// scheduleDemoCampaign schedules a campaign to the demo's customers for a
// day after now, through the GraphQL API, when this build has campaigns
// (the createCampaign mutation). It finds the mutation and its input by
// introspection, so it follows the campaign schema without a compile-time
// dependency on it. It returns the campaign's id and status, or "" and nil
// when the build has no campaigns. key is an admin key with the write scope.
func scheduleDemoCampaign(ctx context.Context, p *plugin.Plugin, key string) (id, status string, err error) {
	gql := func(query string, vars map[string]any, out any) error {
		body, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
		req := httptest.NewRequestWithContext(ctx, http.MethodPost, "/graphql", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+key)
		rec := httptest.NewRecorder()
		p.Handler().ServeHTTP(rec, req)
		var res struct {
			Data   json.RawMessage
			Errors []struct{ Message string }
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &res); err != nil {
			return fmt.Errorf("answer %d: %s", rec.Code, rec.Body.String())
		}
		if len(res.Errors) > 0 {
			return fmt.Errorf("%s", res.Errors[0].Message)
		}
		return json.Unmarshal(res.Data, out)
	}
	type typeRef struct {
		Kind, Name string
		OfType     *typeRef
	}
	named := func(t *typeRef) (string, bool) {
		required := t.Kind == "NON_NULL"
		for t.OfType != nil {
			t = t.OfType
		}
		return t.Name, required
	}
	const ref = `kind name ofType { kind name ofType { kind name ofType { kind name } } }`
	var mut struct {
		Type *struct {
			Fields []struct {
				Name string
				Args []struct {
					Name string
					Type typeRef
				}
				Type typeRef
			}
		} `json:"__type"`
	}
	if err := gql(`{ __type(name: "RefrainMutation") { fields { name args { name type { `+ref+` } } type { `+ref+` } } } }`, nil, &mut); err != nil {
		return "", "", fmt.Errorf("demo campaign: introspect mutations: %w", err)
	}
	var inputType, payloadType string
	hasSchedule := false
	for _, f := range mut.Type.Fields {
		switch f.Name {
		case "createCampaign":
			payloadType, _ = named(&f.Type)
			for _, a := range f.Args {
				if a.Name == "input" {
					inputType, _ = named(&a.Type)
				}
			}
		case "scheduleCampaign":
			hasSchedule = true
		}
	}
	if payloadType == "" {
		return "", "", nil // no campaigns in this build
	}
	if inputType == "" {
		return "", "", fmt.Errorf("demo campaign: createCampaign has no input argument")
	}
	var in struct {
		Type struct {
			InputFields []struct {
				Name         string
				Type         typeRef
				DefaultValue *string
			}
		} `json:"__type"`
	}
	if err := gql(`query($n: String!) { __type(name: $n) { inputFields { name defaultValue type { `+ref+` } } } }`, map[string]any{"n": inputType}, &in); err != nil {
		return "", "", fmt.Errorf("demo campaign: introspect %s: %w", inputType, err)
	}
	when := p.Clock().Now().UTC().Add(24 * time.Hour).Truncate(time.Hour)
	known := map[string]any{"name": "Demo: winter newsletter", "template": "win-back", "priority": 50,
		"scheduledAt": when.Format(time.RFC3339), "objective": "maintain",
		"values": map[string]any{"discount_code": "DEMO10"}}
	input := map[string]any{}
	for _, f := range in.Type.InputFields {
		if v, ok := known[f.Name]; ok {
			input[f.Name] = v
			continue
		}
		if _, required := named(&f.Type); required && f.DefaultValue == nil {
			return "", "", fmt.Errorf("demo campaign: %s needs the field %s, which the demo does not know how to fill", inputType, f.Name)
		}
	}
	var payload struct {
		Type struct{ Fields []struct{ Name string } } `json:"__type"`
	}
	if err := gql(`query($n: String!) { __type(name: $n) { fields { name } } }`, map[string]any{"n": payloadType}, &payload); err != nil {
		return "", "", fmt.Errorf("demo campaign: introspect %s: %w", payloadType, err)
	}
	sel := "id status"
	var fields []string
	for _, f := range payload.Type.Fields {
		fields = append(fields, f.Name)
	}
	joined := " " + strings.Join(fields, " ") + " "
	switch {
	case strings.Contains(joined, " campaign ") && strings.Contains(joined, " userErrors "):
		sel = "campaign { id status } userErrors { message }"
	case strings.Contains(joined, " campaign "):
		sel = "campaign { id status }"
	}
	var created struct {
		Refrain struct {
			CreateCampaign struct {
				ID, Status string
				Campaign   *struct{ ID, Status string }
				UserErrors []struct{ Message string }
			} `json:"createCampaign"`
		}
	}
	if err := gql(`mutation($in: `+inputType+`!) { refrain { createCampaign(input: $in) { `+sel+` } } }`, map[string]any{"in": input}, &created); err != nil {
		return "", "", fmt.Errorf("demo campaign: createCampaign: %w", err)
	}
	cc := created.Refrain.CreateCampaign
	if len(cc.UserErrors) > 0 {
		return "", "", fmt.Errorf("demo campaign: createCampaign refused: %s", cc.UserErrors[0].Message)
	}
	id, status = cc.ID, cc.Status
	if cc.Campaign != nil {
		id, status = cc.Campaign.ID, cc.Campaign.Status
	}
	if status == "DRAFT" && hasSchedule {
		var sched struct {
			Refrain struct {
				ScheduleCampaign json.RawMessage `json:"scheduleCampaign"`
			}
		}
		q := `mutation($id: ID!) { refrain { scheduleCampaign(id: $id) { ` + sel + ` } } }`
		if err := gql(q, map[string]any{"id": id}, &sched); err != nil {
			return id, status, fmt.Errorf("demo campaign: scheduleCampaign: %w", err)
		}
		var res struct {
			Status     string
			Campaign   *struct{ Status string }
			UserErrors []struct{ Message string }
		}
		_ = json.Unmarshal(sched.Refrain.ScheduleCampaign, &res)
		if len(res.UserErrors) > 0 {
			return id, status, fmt.Errorf("demo campaign: scheduleCampaign refused: %s", res.UserErrors[0].Message)
		}
		status = res.Status
		if res.Campaign != nil {
			status = res.Campaign.Status
		}
	}
	return id, status, nil
}
