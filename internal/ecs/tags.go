package ecs

import (
	"context"
	"errors"
	"strings"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/berthdev/berth/internal/awstags"
	"github.com/berthdev/berth/internal/protocol"
	"github.com/berthdev/berth/internal/store"
)

// validateTags applies AWS's tag rules (awstags) with ECS's error.
func validateTags(tags []Tag) error {
	if len(tags) > awstags.MaxTags {
		return invalidParam("A resource can have at most 50 tags.")
	}
	if p := awstags.Problem(tags, tagKV); p != "" {
		return invalidParam("%s", p)
	}
	return nil
}

func tagKV(t Tag) (string, string) { return t.Key, t.Value }
func tagKey(t Tag) string          { return t.Key }

// mergeTags adds or replaces tags by key.
func mergeTags(have, add []Tag) []Tag { return awstags.Merge(have, add, tagKey) }

func removeTags(have []Tag, keys []string) []Tag { return awstags.Remove(have, keys, tagKey) }

// editTags applies fn to the tags of the resource an ARN names.
// errNoWrite ends an editTags that only reads.
var errNoWrite = errors.New("read only")

func (s *Service) editTags(ctx context.Context, sc scope, arn string, fn func([]Tag) ([]Tag, error)) ([]Tag, error) {
	notFound := protocol.NewError(codeInvalidParameter, 400, "The specified resource could not be found: %s", arn)
	prefix := "arn:aws:ecs:" + sc.region + ":" + sc.account + ":"
	res, ok := strings.CutPrefix(arn, prefix)
	if !ok {
		return nil, invalidParam("Invalid resource ARN: %s", arn)
	}
	var tags []Tag
	var err error
	switch {
	case strings.HasPrefix(res, "cluster/"):
		var c *Cluster
		c, err = store.Mutate(ctx, s.st, store.Scoped(sc.account, sc.region, "clusters", lastSegment(res)), func(c *Cluster) ([]clientv3.Op, error) {
			tags, err := fn(c.Tags)
			c.Tags = tags
			return nil, err
		})
		if err == nil {
			tags = c.Tags
		}
	case strings.HasPrefix(res, "task-definition/"):
		family, rev, perr := parseTaskDefRef(arn)
		if perr != nil || rev == 0 {
			return nil, invalidParam("Invalid resource ARN: %s", arn)
		}
		var td *storedTaskDef
		td, err = store.Mutate(ctx, s.st, taskDefKey(sc, family, rev), func(td *storedTaskDef) ([]clientv3.Op, error) {
			tags, err := fn(td.StoredTags)
			td.StoredTags = tags
			return nil, err
		})
		if err == nil {
			tags = td.StoredTags
		}
	case strings.HasPrefix(res, "task/"):
		key, ok := taskKeyFromArn(arn)
		if !ok {
			return nil, invalidParam("Invalid resource ARN: %s", arn)
		}
		var r *taskRecord
		r, err = store.Mutate(ctx, s.st, key, func(r *taskRecord) ([]clientv3.Op, error) {
			tags, err := fn(r.Task.Tags)
			r.Task.Tags = tags
			return nil, err
		})
		if err == nil {
			tags = r.Task.Tags
		}
	default:
		return nil, invalidParam("Invalid resource ARN: %s", arn)
	}
	if errors.Is(err, store.ErrNotFound) {
		return nil, notFound
	}
	return nonNilTags(tags), err
}

func (s *Service) tagResource(ctx context.Context, body []byte) (any, error) {
	sc, err := scopeOf(ctx)
	if err != nil {
		return nil, err
	}
	var in struct {
		ResourceArn string `json:"resourceArn"`
		Tags        []Tag  `json:"tags"`
	}
	if err := protocol.Decode(body, &in); err != nil {
		return nil, err
	}
	if err := validateTags(in.Tags); err != nil {
		return nil, err
	}
	_, err = s.editTags(ctx, sc, in.ResourceArn, func(have []Tag) ([]Tag, error) {
		out := mergeTags(have, in.Tags)
		if len(out) > 50 {
			return nil, invalidParam("A resource can have at most 50 tags.")
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
	var in struct {
		ResourceArn string   `json:"resourceArn"`
		TagKeys     []string `json:"tagKeys"`
	}
	if err := protocol.Decode(body, &in); err != nil {
		return nil, err
	}
	if _, err := s.editTags(ctx, sc, in.ResourceArn, func(have []Tag) ([]Tag, error) { return removeTags(have, in.TagKeys), nil }); err != nil {
		return nil, err
	}
	return struct{}{}, nil
}

func (s *Service) listTagsForResource(ctx context.Context, body []byte) (any, error) {
	sc, err := scopeOf(ctx)
	if err != nil {
		return nil, err
	}
	var in struct {
		ResourceArn string `json:"resourceArn"`
	}
	if err := protocol.Decode(body, &in); err != nil {
		return nil, err
	}
	var tags []Tag
	// Reading goes through the same resolution as editing; errNoWrite stops
	// it before anything is written back.
	_, err = s.editTags(ctx, sc, in.ResourceArn, func(have []Tag) ([]Tag, error) {
		tags = have
		return nil, errNoWrite
	})
	if err != nil && !errors.Is(err, errNoWrite) {
		return nil, err
	}
	return map[string]any{"tags": nonNilTags(tags)}, nil
}
