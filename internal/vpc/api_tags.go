package vpc

import (
	"context"
	"net/url"
	"strings"
	"unicode/utf8"

	"github.com/berthdev/berth/internal/awstags"
	"github.com/berthdev/berth/internal/protocol"
)

// CreateTags and DeleteTags on vpc-, subnet-, sg- and eni- resources.

// EC2's tag limits (EC2's are a little tighter than those of internal/awstags,
// which ECS and ECR share: 127 and 255 characters).
const (
	maxTagKey   = 127
	maxTagValue = 255
)

// checkTags applies EC2's rules to a list of tags (the count is checked
// where tags are added).
func checkTags(tags []tag) error {
	seen := map[string]bool{}
	for _, t := range tags {
		switch {
		case t.Key == "":
			return errInvalidValue("Tag key must not be empty.")
		case utf8.RuneCountInString(t.Key) > maxTagKey:
			return errInvalidValue("Tag key exceeds the maximum length of %d characters: %s", maxTagKey, t.Key)
		case utf8.RuneCountInString(t.Value) > maxTagValue:
			return errInvalidValue("Tag value exceeds the maximum length of %d characters (key %s).", maxTagValue, t.Key)
		case strings.HasPrefix(strings.ToLower(t.Key), "aws:"):
			return errInvalidValue("Value ( %s ) for parameter key is invalid. Tag keys starting with 'aws:' are reserved for internal use", t.Key)
		case seen[t.Key]:
			return errInvalidValue("Duplicate tag key '%s' specified.", t.Key)
		}
		seen[t.Key] = true
	}
	if len(tags) > awstags.MaxTags {
		return errTagLimit()
	}
	return nil
}

func errTagLimit() error {
	return apiErr(codeTagLimitExceeded, "The maximum number of tags (%d) for resource has been reached.", awstags.MaxTags)
}

// taggable is a stored record with tags.
type taggable interface{ tagList() *[]tag }

func (r *vpcRecord) tagList() *[]tag    { return &r.Tags }
func (r *subnetRecord) tagList() *[]tag { return &r.Tags }
func (r *groupRecord) tagList() *[]tag  { return &r.Tags }
func (r *eniRecord) tagList() *[]tag    { return &r.Tags }

// loadTaggable reads the resource id names, by its prefix.
func (s *Service) loadTaggable(ctx context.Context, sc scope, id string) (key string, rec taggable, rev int64, err error) {
	switch {
	case strings.HasPrefix(id, "vpc-"):
		return loadAs[vpcRecord](ctx, s, sc.vpcKey(id), kindVpc, id)
	case strings.HasPrefix(id, "subnet-"):
		return loadAs[subnetRecord](ctx, s, sc.subnetKey(id), kindSubnet, id)
	case strings.HasPrefix(id, "sg-"):
		return loadAs[groupRecord](ctx, s, sc.groupKey(id), kindGroup, id)
	case strings.HasPrefix(id, "eni-"):
		if err := checkID(kindENI, id); err != nil {
			return "", nil, 0, err
		}
		enis, _, err := listRev[eniRecord](ctx, s.st, sc.prefix("enis"), 0)
		if err != nil {
			return "", nil, 0, err
		}
		for _, e := range enis {
			if e.v.ENI.ID == id {
				return sc.eniKey(e.v.ENI.AttachmentID), e.v, e.rev, nil
			}
		}
		return "", nil, 0, errNotFound(kindENI, id)
	}
	return "", nil, 0, apiErr(codeInvalidID, "The ID '%s' is not valid", id)
}

func loadAs[T any, P interface {
	*T
	taggable
}](ctx context.Context, s *Service, key string, k kind, id string) (string, taggable, int64, error) {
	if err := checkID(k, id); err != nil {
		return "", nil, 0, err
	}
	v, rev, found, err := get[T](ctx, s.st, key)
	if err != nil {
		return "", nil, 0, err
	}
	if !found {
		return "", nil, 0, errNotFound(k, id)
	}
	return key, P(v), rev, nil
}

// editTags applies edit to the tags of every resource named by
// ResourceId.N, all in one transaction.
func (s *Service) editTags(ctx context.Context, sc scope, p url.Values, edit func([]tag) ([]tag, error)) error {
	ids, err := protocol.QueryList(p, "ResourceId")
	if err != nil {
		return err
	}
	if len(ids) == 0 {
		return errMissing("ResourceId")
	}
	return s.update(ctx, "edit tags", func(t *txn) error {
		done := map[string]bool{}
		for _, id := range ids {
			if done[id] {
				continue
			}
			done[id] = true
			key, rec, rev, err := s.loadTaggable(ctx, sc, id)
			if err != nil {
				return err
			}
			tags := rec.tagList()
			if *tags, err = edit(*tags); err != nil {
				return err
			}
			t.ifRev(key, rev)
			t.put(key, rec)
		}
		return nil
	})
}

func (s *Service) createTags(ctx context.Context, sc scope, p url.Values) (any, error) {
	add, err := tagList(p, true)
	if err != nil {
		return nil, err
	}
	if len(add) == 0 {
		return nil, errMissing("Tag")
	}
	if err := checkTags(add); err != nil {
		return nil, err
	}
	err = s.editTags(ctx, sc, p, func(have []tag) ([]tag, error) {
		out := awstags.Merge(have, add, func(t tag) string { return t.Key })
		if len(out) > awstags.MaxTags {
			return nil, errTagLimit()
		}
		return out, nil
	})
	if err != nil {
		return nil, err
	}
	return returnTrue, nil
}

func (s *Service) deleteTags(ctx context.Context, sc scope, p url.Values) (any, error) {
	entries, err := protocol.QueryStructs(p, "Tag")
	if err != nil {
		return nil, err
	}
	err = s.editTags(ctx, sc, p, func(have []tag) ([]tag, error) {
		if len(entries) == 0 {
			return nil, nil // no tags named: all of them go
		}
		out := have[:0:0]
		for _, t := range have {
			drop := false
			for _, e := range entries {
				if e.Get("Key") == t.Key && (!e.Has("Value") || e.Get("Value") == t.Value) {
					drop = true
				}
			}
			if !drop {
				out = append(out, t)
			}
		}
		return out, nil
	})
	if err != nil {
		return nil, err
	}
	return returnTrue, nil
}
