package ecr

import (
	"context"
	"errors"
	"strings"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/berthdev/berth/internal/awstags"
	"github.com/berthdev/berth/internal/protocol"
	"github.com/berthdev/berth/internal/store"
)

// maxTags is ECR's limit of tags per repository.
const maxTags = awstags.MaxTags

// Tag is ECR's resource tag (note the capitalised keys of its model).
type Tag struct {
	Key   string `json:"Key"`
	Value string `json:"Value"`
}

// validateTags applies AWS's tag rules (awstags) with ECR's errors.
func validateTags(tags []Tag) error {
	if len(tags) > maxTags {
		return tooManyTags()
	}
	if p := awstags.Problem(tags, func(t Tag) (string, string) { return t.Key, t.Value }); p != "" {
		return invalidTag("%s", p)
	}
	return nil
}

func tagKey(t Tag) string { return t.Key }

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
		out := awstags.Merge(have, in.Tags, tagKey)
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
		return awstags.Remove(have, in.TagKeys, tagKey), nil
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
