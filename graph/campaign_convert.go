package graph

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/refrain-dev/refrain/graph/model"
	"github.com/refrain-dev/refrain/plugin/campaign"
	"github.com/refrain-dev/refrain/plugin/pressure"
	"github.com/refrain-dev/refrain/plugin/ptr"
)

// campaignInput converts the GraphQL input; a bad duration or value comes
// back as a user error naming its field.
func campaignInput(in model.CampaignInput) (campaign.Input, *model.UserError) {
	out := campaign.Input{Name: in.Name, Objective: in.Objective, Program: in.Program, Audience: in.Segment,
		Template: in.Template, Priority: in.Priority, ScheduledAt: in.ScheduledAt, RecipientTZ: in.SendInRecipientTimeZone}
	if in.Values != nil {
		vals, err := campaignValues(in.Values)
		if err != nil {
			return out, userError(err.Error(), model.UserErrorCodeInvalid, "input", "values")
		}
		out.Values = vals
	}
	if p := in.Pressure; p != nil {
		o := &pressure.Override{Cap: p.Cap}
		if p.WindowDays != nil {
			d := time.Duration(*p.WindowDays) * 24 * time.Hour
			o.Window = &d
		}
		for _, f := range []struct {
			name string
			raw  *string
			dst  **time.Duration
		}{{"minGap", p.MinGap, &o.MinGap}, {"maxDelay", p.MaxDelay, &o.MaxDelay}} {
			if f.raw == nil {
				continue
			}
			d, err := pressure.ParseDuration(*f.raw)
			if err != nil {
				return out, userError(err.Error(), model.UserErrorCodeInvalid, "input", "pressure", f.name)
			}
			*f.dst = &d
		}
		if p.QuietHours != nil {
			q, err := pressure.ParseQuietHours(*p.QuietHours)
			if err != nil {
				return out, userError(err.Error(), model.UserErrorCodeInvalid, "input", "pressure", "quietHours")
			}
			o.Quiet = &q
		}
		if p.OnCapped != nil {
			oc := pressure.OnCapped(strings.ToLower(string(*p.OnCapped)))
			o.OnCapped = &oc
		}
		out.Pressure = o
	}
	if ab := in.AbTest; ab != nil {
		d, err := pressure.ParseDuration(ab.DecideAfter)
		if err != nil {
			return out, userError(err.Error(), model.UserErrorCodeInvalid, "input", "abTest", "decideAfter")
		}
		t := &campaign.ABTest{TestShare: ab.TestShare, DecideAfter: d, WinnerMetric: campaign.MetricOpenRate}
		if ab.WinnerMetric != nil {
			t.WinnerMetric = string(*ab.WinnerMetric)
		}
		for i, v := range ab.Variants {
			cv := campaign.Variant{Name: v.Name, Template: ptr.Deref(v.Template)}
			if v.Values != nil {
				vals, err := campaignValues(v.Values)
				if err != nil {
					return out, userError(err.Error(), model.UserErrorCodeInvalid, "input", "abTest", "variants", strconv.Itoa(i), "values")
				}
				cv.Values = vals
			}
			t.Variants = append(t.Variants, cv)
		}
		out.ABTest = t
	}
	return out, nil
}

func campaignValues(m map[string]any) (map[string]string, error) {
	out := make(map[string]string, len(m))
	for k, v := range m {
		switch x := v.(type) {
		case string:
			out[k] = x
		case bool, float64, int, int64:
			out[k] = fmt.Sprint(x)
		default:
			return nil, fmt.Errorf("value %q: want a string, number or boolean", k)
		}
	}
	return out, nil
}

func anyValues(m map[string]string) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// campaignPayload turns a service error into user errors where the user
// can fix it, and returns other errors.
func campaignPayload(c *campaign.Campaign, warnings []string, err error) (*model.CampaignPayload, error) {
	p := &model.CampaignPayload{Campaign: c, Warnings: warnings, UserErrors: []*model.UserError{}}
	if p.Warnings == nil {
		p.Warnings = []string{}
	}
	var ie *campaign.InputError
	var te *campaign.TransitionError
	switch {
	case err == nil:
	case errors.As(err, &ie):
		p.Campaign = nil
		p.UserErrors = append(p.UserErrors, userError(err.Error(), model.UserErrorCodeInvalid, append([]string{"input"}, strings.Split(ie.Field, ".")...)...))
	case errors.As(err, &te):
		p.Campaign = nil
		p.UserErrors = append(p.UserErrors, userError(err.Error(), model.UserErrorCodeInvalid, "id"))
	case errors.Is(err, campaign.ErrNotFound):
		p.Campaign = nil
		p.UserErrors = append(p.UserErrors, userError("no such campaign", model.UserErrorCodeNotFound, "id"))
	default:
		return nil, err
	}
	return p, nil
}

func fmtDuration(d time.Duration) string {
	switch {
	case d > 0 && d%(24*time.Hour) == 0:
		return strconv.Itoa(int(d/(24*time.Hour))) + "d"
	case d%time.Hour == 0:
		return strconv.Itoa(int(d/time.Hour)) + "h"
	}
	return d.String()
}

func pressureRules(r pressure.Rules) *model.PressureRules {
	return &model.PressureRules{Cap: r.Cap, WindowDays: int(r.Window / (24 * time.Hour)), MinGap: fmtDuration(r.MinGap),
		QuietHours: r.Quiet.String(), OnCapped: model.OnCapped(strings.ToUpper(string(r.OnCapped))), MaxDelay: fmtDuration(r.MaxDelay)}
}
