package ecs

import (
	"encoding/base64"
	"sort"
)

// page cuts one page out of items sorted by key: the items after the key the
// token names, at most max of them (default and ceiling 100, as ECS pages), and
// the token for the next page ("" when this is the last).
func page[T any](items []T, key func(T) string, token string, max *int, ceiling int) ([]T, string, error) {
	limit := ceiling
	if max != nil {
		if *max < 1 || *max > ceiling {
			return nil, "", invalidParam("maxResults must be between 1 and %d.", ceiling)
		}
		limit = *max
	}
	start := 0
	if token != "" {
		after, err := base64.RawURLEncoding.DecodeString(token)
		if err != nil {
			return nil, "", invalidParam("Invalid nextToken.")
		}
		start = sort.Search(len(items), func(i int) bool { return key(items[i]) > string(after) })
	}
	end := start + limit
	if end >= len(items) {
		return items[start:], "", nil
	}
	return items[start:end], base64.RawURLEncoding.EncodeToString([]byte(key(items[end-1]))), nil
}
