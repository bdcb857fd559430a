package ecr

import (
	"encoding/base64"
	"sort"
)

// ECR's list operations return 100 items without maxResults, and at most
// 1000 with it.
const (
	defaultPageSize = 100
	maxPageSize     = 1000
)

// page cuts one page out of items sorted by key: the items after the key the
// token names, at most max of them, and the token for the next page ("" when this is the last).
func page[T any](items []T, key func(T) string, token string, max *int) ([]T, string, error) {
	limit := defaultPageSize
	if max != nil {
		if *max < 1 || *max > maxPageSize {
			return nil, "", constraint("maxResults", "Member must have value between 1 and 1000")
		}
		limit = *max
	}
	start := 0
	if token != "" {
		after, err := base64.RawURLEncoding.DecodeString(token)
		if err != nil {
			return nil, "", invalidParam("Invalid parameter at 'nextToken' failed to satisfy constraint: 'Invalid NextToken'")
		}
		start = sort.Search(len(items), func(i int) bool { return key(items[i]) > string(after) })
	}
	end := start + limit
	if end >= len(items) {
		return items[start:], "", nil
	}
	return items[start:end], base64.RawURLEncoding.EncodeToString([]byte(key(items[end-1]))), nil
}
