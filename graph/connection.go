package graph

import "github.com/refrain-dev/refrain/graph/model"

// maxPage is the largest page a connection serves.
const maxPage = 500

// pageSize reads a connection's first argument: 20 when absent, else 1 to
// maxPage.
func pageSize(first *int) (int, error) {
	if first == nil {
		return 20, nil
	}
	if *first < 1 || *first > maxPage {
		return 0, errBadInput("first must be between 1 and 500", "first")
	}
	return *first, nil
}

// connect builds the nodes, edges and page info of a Relay connection over
// one page of nodes: every list resolver shapes its answer with it, so
// nodes and edges are never null and the end cursor is the last edge's.
func connect[N, E any](nodes []N, hasNext bool, cursorOf func(N) string, edge func(cursor string, node N) E) ([]N, []E, *model.PageInfo) {
	if nodes == nil {
		nodes = []N{}
	}
	edges := make([]E, len(nodes))
	info := &model.PageInfo{HasNextPage: hasNext}
	for i, n := range nodes {
		c := cursorOf(n)
		edges[i] = edge(c, n)
		if i == len(nodes)-1 {
			info.EndCursor = &c
		}
	}
	return nodes, edges, info
}
