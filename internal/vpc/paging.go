package vpc

import (
	"encoding/base64"
	"net/url"
	"sort"

	"github.com/berthdev/berth/internal/protocol"
)

// Describe paging: MaxResults (5 to 1000) and an opaque NextToken naming
// the last id of the previous page. Items must be sorted by id.

const (
	minPageSize = 5
	maxPageSize = 1000
)

// paging reads MaxResults and NextToken. idsParam names the request's id
// list; EC2 does not page a call that names ids.
func paging(p url.Values, idsParam string, ids []string) (limit int, after string, err error) {
	n, ok, err := protocol.QueryInt(p, "MaxResults", minPageSize, maxPageSize)
	if err != nil {
		return 0, "", err
	}
	tok := p.Get("NextToken")
	if (ok || tok != "") && len(ids) > 0 {
		return 0, "", errCombination("The parameter %s cannot be used with the parameter MaxResults or NextToken", idsParam)
	}
	if tok != "" {
		b, derr := base64.RawURLEncoding.DecodeString(tok)
		if derr != nil || len(b) == 0 {
			return 0, "", apiErr(codeInvalidNextToken, "The token '%s' is invalid.", tok)
		}
		after = string(b)
	}
	if ok {
		limit = int(n)
	}
	return limit, after, nil
}

// page cuts the page after the id after, at most limit items (0: all), and
// returns the token of the next page ("" on the last).
func page[T any](sorted []T, id func(*T) string, limit int, after string) ([]T, string) {
	start := 0
	if after != "" {
		start = sort.Search(len(sorted), func(i int) bool { return id(&sorted[i]) > after })
	}
	rest := sorted[start:]
	if limit == 0 || len(rest) <= limit {
		return rest, ""
	}
	out := rest[:limit]
	return out, base64.RawURLEncoding.EncodeToString([]byte(id(&out[limit-1])))
}
