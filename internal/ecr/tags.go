package ecr

import (
	"context"
	"errors"
	"strings"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/berthdev/berth/internal/protocol"
	"github.com/berthdev/berth/internal/store"
)

// maxTags is ECR's limit of tags per repository.
const maxTags = 50

// Tag is ECR's resource tag (note the capitalised keys of its model).
type Tag struct {
	Key   string `json:"Key"`
	Value string `json:"Value"`
}

// validateTags applies ECR's tag rules.
func validateTags(tags []Tag) error {
	if len(tags) > maxTags {
		return tooManyTags()
	}
	seen := map[string]bool{}
	for _, t := range tags {
		if t.Key == "" || len(t.Key) > 128 {
			return invalidTag("Tag keys must be between 1 and 128 characters.")
		}
		if len(t.Value) > 256 {
			return invalidTag("Tag values can have up to 256 characters.")
		}
		if strings.HasPrefix(strings.ToLower(t.Key), "aws:") {
			return invalidTag("Tag keys with the prefix 'aws:' are reserved for AWS use.")
		}
		if seen[t.Key] {
			return invalidTag("Duplicate tag key: %s.", t.Key)
		}
		seen[t.Key] = true
	}
	return nil
}

// repoOfArn returns the repository name an ECR repository ARN of the
// caller's scope names.
func repoOfArn(sc scope, arn string) (string, error) {
	name, ok := strings.CutPrefix(arn, sc.arn(""))
	if !ok || name == "" {
		return "", constraint("resourceArn", "Invalid ARN")
	}
	return name, nil
}

// editTags applies fn to the tags of the repository an ARN names; fn
// returning errNoWrite reads without writing.
func (s *Service) editTags(ctx context.Context, sc scope, arn string, fn func([]Tag) ([]Tag, error)) ([]Tag, error) {
	name, err := repoOfArn(sc, arn)
	if err != nil {
		return nil, err
	}
	if err := validateRepoName(sc, name); err != nil {
		return nil, err
	}
	rec, err := store.Mutate(ctx, s.st, repoKey(sc, name), func(r *repoRecord) ([]clientv3.Op, error) {
		tags, err := fn(r.Tags)
		r.Tags = tags
		return nil, err
	})
	if errors.Is(err, store.ErrNotFound) {
		return nil, repoNotFound(sc, name)
	}
	if err != nil {
		return nil, err
	}
	return rec.Tags, nil
}

var errNoWrite = errors.New("read only")

type tagsInput struct {
	ResourceArn string   `json:"resourceArn"`
	Tags        []Tag    `json:"tags"`
	TagKeys     []string `json:"tagKeys"`
}

func (s *Service) tagResource(ctx context.Context, body []byte) (any, error) {
	sc, err := scopeOf(ctx)
	if err != nil {
		return nil, err
	}
	var in tagsInput
	if err := protocol.Decode(body, &in); err != nil {
		return nil, err
	}
	if err := validateTags(in.Tags); err != nil {
		return nil, err
	}
	_, err = s.editTags(ctx, sc, in.ResourceArn, func(have []Tag) ([]Tag, error) {
		out := append([]Tag{}, have...)
		for _, t := range in.Tags {
			i := indexTag(out, t.Key)
			if i < 0 {
				out = append(out, t)
			} else {
				out[i] = t
			}
		}
		if len(out) > maxTags {
			return nil, tooManyTags()
		}
		return out, nil
	})
	if err != nil {
		return nil, err
	}
	return struct{}{}, nil
}

func (s *Service) untagResource(ctx context.Context, body []byte) (any, error) {
	sc, err := scopeOf(ctx)
	if err != nil {
		return nil, err
	}
	var in tagsInput
	if err := protocol.Decode(body, &in); err != nil {
		return nil, err
	}
	_, err = s.editTags(ctx, sc, in.ResourceArn, func(have []Tag) ([]Tag, error) {
		out := []Tag{}
		for _, t := range have {
			keep := true
			for _, k := range in.TagKeys {
				keep = keep && k != t.Key
			}
			if keep {
				out = append(out, t)
			}
		}
		return out, nil
	})
	if err != nil {
		return nil, err
	}
	return struct{}{}, nil
}

func (s *Service) listTagsForResource(ctx context.Context, body []byte) (any, error) {
	sc, err := scopeOf(ctx)
	if err != nil {
		return nil, err
	}
	var in tagsInput
	if err := protocol.Decode(body, &in); err != nil {
		return nil, err
	}
	var tags []Tag
	_, err = s.editTags(ctx, sc, in.ResourceArn, func(have []Tag) ([]Tag, error) {
		tags = have
		return nil, errNoWrite
	})
	if err != nil && !errors.Is(err, errNoWrite) {
		return nil, err
	}
	if tags == nil {
		tags = []Tag{}
	}
	return map[string][]Tag{"tags": tags}, nil
}

func indexTag(tags []Tag, key string) int {
	for i, t := range tags {
		if t.Key == key {
			return i
		}
	}
	return -1
}
