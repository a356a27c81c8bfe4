package graph

import (
	"context"
	"errors"
	"time"

	"github.com/uptrace/bun"

	"github.com/refrain-dev/refrain/graph/model"
	"github.com/refrain-dev/refrain/plugin/customer"
	"github.com/refrain-dev/refrain/plugin/segment"
)

// segmentErrors turns a rule error into a userError with its line and
// column, and a missing segment into NOT_FOUND.
func segmentErrors(err error, field []string) ([]*model.SegmentError, error) {
	var re *segment.Error
	switch {
	case errors.As(err, &re):
		line, col := re.Line, re.Column
		return []*model.SegmentError{{Field: field, Message: re.Error(), Code: model.UserErrorCodeInvalid, Line: &line, Column: &col}}, nil
	case errors.Is(err, segment.ErrNotFound):
		return []*model.SegmentError{{Field: field, Message: err.Error(), Code: model.UserErrorCodeNotFound}}, nil
	case errors.Is(err, segment.ErrInvalid):
		return []*model.SegmentError{{Field: []string{"input", "name"}, Message: err.Error(), Code: model.UserErrorCodeInvalid}}, nil
	}
	return nil, err
}

func previewSegment(ctx context.Context, db *bun.DB, now time.Time, rule string, sample *int) (*model.SegmentPreview, error) {
	r, err := segment.Parse(rule)
	if err != nil {
		return nil, err
	}
	n := 10
	if sample != nil {
		n = min(max(*sample, 0), 100)
	}
	count, err := r.Count(ctx, db, now)
	if err != nil {
		return nil, err
	}
	var ids []int64
	if n > 0 {
		if err := r.Query(db, now).Column("c.id").OrderExpr("c.id").Limit(int64(n)).Scan(ctx, &ids); err != nil {
			return nil, err
		}
	}
	out := &model.SegmentPreview{Count: count, Sample: []*customer.Customer{}}
	if len(ids) > 0 {
		if err := db.NewSelect().Model(&out.Sample).Where("id IN (?)", bun.List(ids)).Order("id").Scan(ctx); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func segmentMembers(ctx context.Context, db *bun.DB, id int64, first *int, after *string) (*model.SegmentMemberConnection, error) {
	n := 20
	if first != nil {
		n = min(max(*first, 0), 500)
	}
	var from int64
	if after != nil && *after != "" {
		v, err := customer.DecodeCursor(*after)
		if err != nil {
			return nil, err
		}
		from = v
	}
	ms, err := segment.Members(ctx, db, id, n+1, from)
	if err != nil {
		return nil, err
	}
	more := len(ms) > n
	if more {
		ms = ms[:n]
	}
	conn := &model.SegmentMemberConnection{}
	conn.Nodes, conn.Edges, conn.PageInfo = connect(ms, more,
		func(m *segment.Member) string { return customer.EncodeCursor(m.CustomerPK) },
		func(c string, m *segment.Member) *model.SegmentMemberEdge {
			return &model.SegmentMemberEdge{Cursor: c, Node: m}
		})
	return conn, nil
}
