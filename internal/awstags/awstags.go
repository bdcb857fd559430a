// Package awstags owns the rules AWS services share for resource tags: what
// a valid list of tags is, and how TagResource and UntagResource change one.
// Each service keeps its own Tag type (their JSON shapes differ: ECS says
// key/value, ECR Key/Value) and its own error codes; this package works on
// any of them through a function that reads a tag's key and value.
package awstags

import (
	"fmt"
	"slices"
	"strings"
)

// MaxTags is the number of tags a resource may have.
const MaxTags = 50

// Problem says what is wrong with a list of tags, "" if nothing: a key of 1
// to 128 characters, a value of at most 256, no "aws:" prefix, no key twice.
// The count is the caller's to check, as services answer it differently.
func Problem[T any](tags []T, kv func(T) (key, value string)) string {
	seen := map[string]bool{}
	for _, t := range tags {
		k, v := kv(t)
		switch {
		case k == "" || len(k) > 128:
			return "Tag keys must be between 1 and 128 characters."
		case len(v) > 256:
			return "Tag values can have up to 256 characters."
		case strings.HasPrefix(strings.ToLower(k), "aws:"):
			return "Tag keys with the prefix 'aws:' are reserved for AWS use."
		case seen[k]:
			return fmt.Sprintf("Duplicate tag key: %s.", k)
		}
		seen[k] = true
	}
	return ""
}

// Merge adds tags to have, replacing those of the same key, as TagResource does.
func Merge[T any](have, add []T, key func(T) string) []T {
	out := slices.Clone(have)
	for _, t := range add {
		if i := slices.IndexFunc(out, func(o T) bool { return key(o) == key(t) }); i >= 0 {
			out[i] = t
		} else {
			out = append(out, t)
		}
	}
	return out
}

// Remove drops the tags with the given keys, as UntagResource does.
func Remove[T any](have []T, keys []string, key func(T) string) []T {
	out := make([]T, 0, len(have))
	for _, t := range have {
		if !slices.Contains(keys, key(t)) {
			out = append(out, t)
		}
	}
	return out
}
