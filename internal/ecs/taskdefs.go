package ecs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/berthdev/berth/internal/protocol"
	"github.com/berthdev/berth/internal/store"
)

// familyState remembers the last revision handed out for a family, so that
// revisions are never reused, even after deregistration.
type familyState struct {
	LastRevision int `json:"lastRevision"`
}

func taskDefKey(sc scope, family string, rev int) string {
	return store.Scoped(sc.account, sc.region, "taskdefs", family, fmt.Sprintf("%010d", rev))
}

type registerTaskDefinitionInput struct {
	TaskDefinition
	Tags []Tag `json:"tags"`
}

func (s *Service) registerTaskDefinition(ctx context.Context, body []byte) (any, error) {
	sc, err := scopeOf(ctx)
	if err != nil {
		return nil, err
	}
	var in registerTaskDefinitionInput
	if err := protocol.Decode(body, &in); err != nil {
		return nil, err
	}
	td := in.TaskDefinition
	if err := validateTags(in.Tags); err != nil {
		return nil, err
	}
	if err := validateTaskDefinition(&td); err != nil {
		return nil, err
	}
	td.Tags = in.Tags
	td.Status = "ACTIVE"
	td.RegisteredAt = NewTime(s.cfg.Now())
	if id, ok := protocol.IdentityFrom(ctx); ok {
		td.RegisteredBy = "arn:aws:iam::" + id.AccountID + ":root"
	}
	famKey := store.Scoped(sc.account, sc.region, "families", td.Family)
	for attempt := 0; attempt < 20; attempt++ {
		var fam familyState
		rev, err := s.st.Get(ctx, famKey, &fam)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return nil, err
		}
		td.Revision = fam.LastRevision + 1
		td.TaskDefinitionArn = sc.arn(fmt.Sprintf("task-definition/%s:%d", td.Family, td.Revision))
		doc, err := marshalTaskDef(&td)
		if err != nil {
			return nil, err
		}
		err = s.st.PutIfRevision(ctx, famKey, rev, familyState{LastRevision: td.Revision},
			store.OpPutBytes(taskDefKey(sc, td.Family, td.Revision), doc))
		if errors.Is(err, store.ErrConflict) {
			continue
		}
		if err != nil {
			return nil, err
		}
		return map[string]any{"taskDefinition": &td, "tags": nonNilTags(td.Tags)}, nil
	}
	return nil, protocol.NewError(codeServer, 500, "Too many concurrent registrations of family %s; retry.", td.Family)
}

// storedTaskDef is how a task definition is kept: the API shape plus its tags.
type storedTaskDef struct {
	TaskDefinition
	StoredTags []Tag `json:"storedTags,omitempty"`
}

func marshalTaskDef(td *TaskDefinition) ([]byte, error) {
	return json.Marshal(storedTaskDef{TaskDefinition: *td, StoredTags: td.Tags})
}

// parseTaskDefRef splits "family", "family:rev" or an ARN; rev 0 means latest ACTIVE.
func parseTaskDefRef(ref string) (family string, rev int, err error) {
	if strings.HasPrefix(ref, "arn:") {
		i := strings.Index(ref, ":task-definition/")
		if i < 0 {
			return "", 0, clientErr("Invalid revision number. Number: %s", ref)
		}
		ref = ref[i+len(":task-definition/"):]
	}
	family = ref
	if i := strings.LastIndexByte(ref, ':'); i >= 0 {
		family = ref[:i]
		rev, err = strconv.Atoi(ref[i+1:])
		if err != nil || rev < 1 {
			return "", 0, clientErr("Invalid revision number. Number: %s", ref[i+1:])
		}
	}
	if family == "" {
		return "", 0, clientErr("Task definition family cannot be empty.")
	}
	return family, rev, nil
}

// getTaskDef resolves a task definition reference; the key is returned for updates.
func (s *Service) getTaskDef(ctx context.Context, sc scope, ref string) (*TaskDefinition, string, error) {
	if ref == "" {
		return nil, "", clientErr("TaskDefinition can not be blank.")
	}
	family, rev, err := parseTaskDefRef(ref)
	if err != nil {
		return nil, "", err
	}
	if rev > 0 {
		key := taskDefKey(sc, family, rev)
		var st storedTaskDef
		if _, err := s.st.Get(ctx, key, &st); errors.Is(err, store.ErrNotFound) {
			return nil, "", clientErr("Unable to describe task definition.")
		} else if err != nil {
			return nil, "", err
		}
		st.TaskDefinition.Tags = st.StoredTags
		return &st.TaskDefinition, key, nil
	}
	all, err := store.ListJSON[storedTaskDef](ctx, s.st, store.ScopedPrefix(sc.account, sc.region, "taskdefs", family))
	if err != nil {
		return nil, "", err
	}
	for i := len(all) - 1; i >= 0; i-- {
		if all[i].Status == "ACTIVE" {
			td := all[i].TaskDefinition
			td.Tags = all[i].StoredTags
			return &td, taskDefKey(sc, family, td.Revision), nil
		}
	}
	return nil, "", clientErr("Unable to describe task definition.")
}

func (s *Service) describeTaskDefinition(ctx context.Context, body []byte) (any, error) {
	sc, err := scopeOf(ctx)
	if err != nil {
		return nil, err
	}
	var in struct {
		TaskDefinition string   `json:"taskDefinition"`
		Include        []string `json:"include"`
	}
	if err := protocol.Decode(body, &in); err != nil {
		return nil, err
	}
	td, _, err := s.getTaskDef(ctx, sc, in.TaskDefinition)
	if err != nil {
		return nil, err
	}
	out := map[string]any{"taskDefinition": td}
	if contains(in.Include, "TAGS") {
		out["tags"] = nonNilTags(td.Tags)
	}
	return out, nil
}

type listTaskDefinitionsInput struct {
	listInput
	FamilyPrefix string `json:"familyPrefix"`
	Status       string `json:"status"`
	Sort         string `json:"sort"`
}

func (s *Service) listTaskDefinitions(ctx context.Context, body []byte) (any, error) {
	sc, err := scopeOf(ctx)
	if err != nil {
		return nil, err
	}
	var in listTaskDefinitionsInput
	if err := protocol.Decode(body, &in); err != nil {
		return nil, err
	}
	status, err := statusParam(in.Status, "ACTIVE", "INACTIVE", "DELETE_IN_PROGRESS")
	if err != nil {
		return nil, err
	}
	if in.Sort != "" && in.Sort != "ASC" && in.Sort != "DESC" {
		return nil, invalidParam("sort must be ASC or DESC.")
	}
	all, err := store.ListJSON[storedTaskDef](ctx, s.st, store.ScopedPrefix(sc.account, sc.region, "taskdefs"))
	if err != nil {
		return nil, err
	}
	type item struct{ key, arn string }
	var items []item
	for _, td := range all {
		if td.Status != status {
			continue
		}
		if in.FamilyPrefix != "" && td.Family != in.FamilyPrefix {
			continue // ECS matches familyPrefix as the whole family name
		}
		items = append(items, item{key: fmt.Sprintf("%s:%010d", td.Family, td.Revision), arn: td.TaskDefinitionArn})
	}
	sort.Slice(items, func(i, j int) bool { return items[i].key < items[j].key })
	if in.Sort == "DESC" {
		for i, j := 0, len(items)-1; i < j; i, j = i+1, j-1 {
			items[i], items[j] = items[j], items[i]
		}
		// keep paging monotone in the chosen order
		for i := range items {
			items[i].key = fmt.Sprintf("%020d", i)
		}
	}
	pg, next, err := page(items, func(it item) string { return it.key }, in.NextToken, in.MaxResults, 100)
	if err != nil {
		return nil, err
	}
	arns := make([]string, 0, len(pg))
	for _, it := range pg {
		arns = append(arns, it.arn)
	}
	return map[string]any{"taskDefinitionArns": arns, "nextToken": omitEmpty(next)}, nil
}

func (s *Service) listTaskDefinitionFamilies(ctx context.Context, body []byte) (any, error) {
	sc, err := scopeOf(ctx)
	if err != nil {
		return nil, err
	}
	var in listTaskDefinitionsInput
	if err := protocol.Decode(body, &in); err != nil {
		return nil, err
	}
	status, err := statusParam(in.Status, "ACTIVE", "INACTIVE", "ALL")
	if err != nil {
		return nil, err
	}
	all, err := store.ListJSON[storedTaskDef](ctx, s.st, store.ScopedPrefix(sc.account, sc.region, "taskdefs"))
	if err != nil {
		return nil, err
	}
	active := map[string]bool{}
	seen := map[string]bool{}
	for _, td := range all {
		seen[td.Family] = true
		if td.Status == "ACTIVE" {
			active[td.Family] = true
		}
	}
	families := []string{}
	for f := range seen {
		if in.FamilyPrefix != "" && !strings.HasPrefix(f, in.FamilyPrefix) {
			continue
		}
		if status == "ALL" || (status == "ACTIVE") == active[f] {
			families = append(families, f)
		}
	}
	sort.Strings(families)
	pg, next, err := page(families, func(f string) string { return f }, in.NextToken, in.MaxResults, 100)
	if err != nil {
		return nil, err
	}
	return map[string]any{"families": pg, "nextToken": omitEmpty(next)}, nil
}

func (s *Service) deregisterTaskDefinition(ctx context.Context, body []byte) (any, error) {
	sc, err := scopeOf(ctx)
	if err != nil {
		return nil, err
	}
	var in struct {
		TaskDefinition string `json:"taskDefinition"`
	}
	if err := protocol.Decode(body, &in); err != nil {
		return nil, err
	}
	family, rev, err := parseTaskDefRef(in.TaskDefinition)
	if err != nil {
		return nil, err
	}
	if rev == 0 {
		return nil, clientErr("Invalid revision number. A revision is required: use family:revision or the full ARN.")
	}
	now := NewTime(s.cfg.Now())
	st, err := store.Mutate(ctx, s.st, taskDefKey(sc, family, rev), func(td *storedTaskDef) ([]clientv3.Op, error) {
		if td.Status == "ACTIVE" {
			td.Status = "INACTIVE"
			td.DeregisteredAt = now
		}
		return nil, nil
	})
	if errors.Is(err, store.ErrNotFound) {
		return nil, clientErr("The specified task definition does not exist.")
	}
	if err != nil {
		return nil, err
	}
	return map[string]any{"taskDefinition": &st.TaskDefinition}, nil
}

func nonNilTags(t []Tag) []Tag {
	if t == nil {
		return []Tag{}
	}
	return t
}

// statusParam checks a status filter against the allowed values; the first
// one is the default.
func statusParam(v string, allowed ...string) (string, error) {
	if v == "" {
		return allowed[0], nil
	}
	if !contains(allowed, v) {
		return "", invalidParam("status must be one of %s.", strings.Join(allowed, ", "))
	}
	return v, nil
}
