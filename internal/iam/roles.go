package iam

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/berthdev/berth/internal/protocol"
	"github.com/berthdev/berth/internal/store"
)

// roleRecord is a role as stored.
type roleRecord struct {
	Path               string    `json:"path"`
	RoleName           string    `json:"roleName"`
	RoleID             string    `json:"roleId"`
	Arn                string    `json:"arn"`
	CreateDate         time.Time `json:"createDate"`
	AssumeRolePolicy   string    `json:"assumeRolePolicyDocument"`
	Description        string    `json:"description,omitempty"`
	MaxSessionDuration int       `json:"maxSessionDuration"`
	Tags               []tagXML  `json:"tags,omitempty"`
}

func rolesPrefix(account string) string { return store.Prefix("iam", account, "roles") }

func roleKey(account, name string) string { return rolesPrefix(account) + strings.ToLower(name) }

// Reply shapes, element names as in botocore's iam model.

type tagXML struct {
	Key   string `xml:"Key" json:"key"`
	Value string `xml:"Value" json:"value"`
}

type roleLastUsedXML struct {
	LastUsedDate *string `xml:"LastUsedDate"`
	Region       *string `xml:"Region"`
}

type roleXML struct {
	Path                     string                      `xml:"Path"`
	RoleName                 string                      `xml:"RoleName"`
	RoleID                   string                      `xml:"RoleId"`
	Arn                      string                      `xml:"Arn"`
	CreateDate               string                      `xml:"CreateDate"`
	AssumeRolePolicyDocument string                      `xml:"AssumeRolePolicyDocument"`
	Description              *string                     `xml:"Description"`
	MaxSessionDuration       int                         `xml:"MaxSessionDuration"`
	Tags                     protocol.MemberList[tagXML] `xml:"Tags,omitempty"`
	RoleLastUsed             *roleLastUsedXML            `xml:"RoleLastUsed"`
}

// xml renders the role; full adds what GetRole shows and ListRoles leaves
// out (tags, last use).
func (r *roleRecord) xml(full bool) roleXML {
	out := roleXML{Path: r.Path, RoleName: r.RoleName, RoleID: r.RoleID, Arn: r.Arn,
		CreateDate: r.CreateDate.UTC().Format(time.RFC3339), AssumeRolePolicyDocument: policyEscape(r.AssumeRolePolicy),
		MaxSessionDuration: r.MaxSessionDuration}
	if r.Description != "" {
		d := r.Description
		out.Description = &d
	}
	if full {
		out.Tags = r.Tags
		out.RoleLastUsed = &roleLastUsedXML{}
	}
	return out
}

// policyEscape URL-encodes a policy document as IAM returns it (RFC 3986:
// everything but unreserved characters is %XX; botocore decodes it).
func policyEscape(s string) string {
	const hexUpper = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~' {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hexUpper[c>>4])
		b.WriteByte(hexUpper[c&15])
	}
	return b.String()
}

const (
	roleNamePattern = `[\w+=,.@-]+`
	pathPattern     = `(\u002F)|(\u002F[\u0021-\u007E]+\u002F)`
)

var (
	roleNameRE = regexp.MustCompile(`^[\w+=,.@-]+$`)
	pathRE     = regexp.MustCompile(`^(/|/[\x21-\x7E]+/)$`)
	// pathPrefixRE: IAM's \u002F[\u0021-\u007F]* (DEL included).
	pathPrefixRE = regexp.MustCompile(`^/[\x21-\x7F]*$`)
)

func validRoleName(p url.Values, member string) (string, error) {
	if !p.Has("RoleName") {
		return "", errMissing(member)
	}
	name := p.Get("RoleName")
	if len(name) < 1 || len(name) > 64 {
		return "", errLength(name, member, 1, 64)
	}
	if !roleNameRE.MatchString(name) {
		return "", errPattern(name, member, roleNamePattern)
	}
	return name, nil
}

func (s *Service) createRole(ctx context.Context, account string, p url.Values) (any, error) {
	name, err := validRoleName(p, "roleName")
	if err != nil {
		return nil, err
	}
	rolePath := "/"
	if p.Has("Path") {
		rolePath = p.Get("Path")
		if len(rolePath) < 1 || len(rolePath) > 512 {
			return nil, errLength(rolePath, "path", 1, 512)
		}
		if !pathRE.MatchString(rolePath) {
			return nil, errValidation("The specified value for path is invalid. It must begin and end with / and contain only alphanumeric characters and/or / characters.")
		}
	}
	if !p.Has("AssumeRolePolicyDocument") {
		return nil, errMissing("assumeRolePolicyDocument")
	}
	doc := p.Get("AssumeRolePolicyDocument")
	if len(doc) < 1 || len(doc) > maxPolicyDocumentBytes {
		return nil, errLength(truncate(doc, 64), "assumeRolePolicyDocument", 1, maxPolicyDocumentBytes)
	}
	if _, err := parseTrustPolicy(doc); err != nil {
		return nil, err
	}
	desc := p.Get("Description")
	if len(desc) > 1000 {
		return nil, errLength(truncate(desc, 64), "description", 0, 1000)
	}
	maxSession := 3600
	if v := p.Get("MaxSessionDuration"); v != "" {
		var n int
		if _, err := fmt.Sscanf(v, "%d", &n); err != nil || fmt.Sprint(n) != v {
			return nil, errValidation("1 validation error detected: Value '%s' at 'maxSessionDuration' failed to satisfy constraint: Member must be a number", truncate(v, 32))
		}
		if n < 3600 {
			return nil, errValidation("1 validation error detected: Value '%d' at 'maxSessionDuration' failed to satisfy constraint: Member must have value greater than or equal to 3600", n)
		}
		if n > 43200 {
			return nil, errValidation("1 validation error detected: Value '%d' at 'maxSessionDuration' failed to satisfy constraint: Member must have value less than or equal to 43200", n)
		}
		maxSession = n
	}
	tags, err := parseTags(p)
	if err != nil {
		return nil, err
	}
	rec := roleRecord{Path: rolePath, RoleName: name, RoleID: newUniqueID("AROA"),
		Arn:        "arn:aws:iam::" + account + ":role" + rolePath + name,
		CreateDate: s.cfg.Now().UTC().Truncate(time.Second), AssumeRolePolicy: doc, Description: desc,
		MaxSessionDuration: maxSession, Tags: tags}
	if err := s.st.Create(ctx, roleKey(account, name), rec); err != nil {
		if errors.Is(err, store.ErrExists) {
			return nil, errRoleExists(name)
		}
		return nil, fmt.Errorf("create role %s: %w", name, err)
	}
	s.log.Info("role created", "account", account, "role", rec.Arn)
	return struct {
		Role roleXML `xml:"Role"`
	}{rec.xml(true)}, nil
}

func parseTags(p url.Values) ([]tagXML, error) {
	structs, err := protocol.QueryMemberStructs(p, "Tags")
	if err != nil {
		return nil, err
	}
	if len(structs) > 50 {
		return nil, errLimitExceeded("The number of tags has reached the maximum limit.")
	}
	seen := map[string]bool{}
	var tags []tagXML
	for _, t := range structs {
		k, v := t.Get("Key"), t.Get("Value")
		if len(k) < 1 || len(k) > 128 {
			return nil, errLength(k, "tags.member.key", 1, 128)
		}
		if len(v) > 256 {
			return nil, errLength(truncate(v, 64), "tags.member.value", 0, 256)
		}
		if seen[strings.ToLower(k)] {
			return nil, errInvalidInput("Duplicate tag keys found. Please note that Tag keys are case insensitive.")
		}
		seen[strings.ToLower(k)] = true
		tags = append(tags, tagXML{Key: k, Value: v})
	}
	return tags, nil
}

func (s *Service) getRoleRecord(ctx context.Context, account, name string) (*roleRecord, int64, error) {
	var rec roleRecord
	rev, err := s.st.Get(ctx, roleKey(account, name), &rec)
	if errors.Is(err, store.ErrNotFound) {
		return nil, 0, errNoSuchRole(name)
	}
	if err != nil {
		return nil, 0, fmt.Errorf("get role %s: %w", name, err)
	}
	return &rec, rev, nil
}

func (s *Service) getRole(ctx context.Context, account string, p url.Values) (any, error) {
	name, err := validRoleName(p, "roleName")
	if err != nil {
		return nil, err
	}
	rec, _, err := s.getRoleRecord(ctx, account, name)
	if err != nil {
		return nil, err
	}
	return struct {
		Role roleXML `xml:"Role"`
	}{rec.xml(true)}, nil
}

func (s *Service) deleteRole(ctx context.Context, account string, p url.Values) (any, error) {
	name, err := validRoleName(p, "roleName")
	if err != nil {
		return nil, err
	}
	_, rev, err := s.getRoleRecord(ctx, account, name)
	if err != nil {
		return nil, err
	}
	key := roleKey(account, name)
	resp, err := s.st.C.Txn(ctx).If(clientv3.Compare(clientv3.ModRevision(key), "=", rev)).Then(clientv3.OpDelete(key)).Commit()
	if err != nil {
		return nil, fmt.Errorf("delete role %s: %w", name, err)
	}
	if !resp.Succeeded {
		return nil, errNoSuchRole(name) // deleted (or replaced) meanwhile
	}
	return nil, nil
}

type listRolesResult struct {
	Roles       protocol.MemberList[roleXML] `xml:"Roles"`
	IsTruncated bool                         `xml:"IsTruncated"`
	Marker      *string                      `xml:"Marker"`
}

// listRoles lists the account's roles by name (case-insensitive order),
// those whose path begins with PathPrefix. The Marker is opaque: the
// stored key of the last role returned.
func (s *Service) listRoles(ctx context.Context, account string, p url.Values) (any, error) {
	prefix := "/"
	if p.Has("PathPrefix") {
		prefix = p.Get("PathPrefix")
		if len(prefix) < 1 || len(prefix) > 512 {
			return nil, errLength(prefix, "pathPrefix", 1, 512)
		}
		if !pathPrefixRE.MatchString(prefix) {
			return nil, errPattern(prefix, "pathPrefix", `\u002F[\u0021-\u007F]*`)
		}
	}
	maxItems := 100
	if v := p.Get("MaxItems"); v != "" {
		var n int
		if _, err := fmt.Sscanf(v, "%d", &n); err != nil || fmt.Sprint(n) != v || n < 1 || n > 1000 {
			return nil, errValidation("1 validation error detected: Value '%s' at 'maxItems' failed to satisfy constraint: Member must have value between 1 and 1000", truncate(v, 32))
		}
		maxItems = n
	}
	after := ""
	if m := p.Get("Marker"); m != "" {
		b, err := base64.RawURLEncoding.DecodeString(m)
		if err != nil || len(b) == 0 || len(b) > 64 {
			return nil, errValidation("Invalid Marker.")
		}
		after = string(b)
	}
	out := listRolesResult{Roles: protocol.MemberList[roleXML]{}}
	base := rolesPrefix(account)
	errFull := errors.New("page full")
	err := s.st.List(ctx, base, func(key string, val []byte) error {
		if after != "" && strings.TrimPrefix(key, base) <= after {
			return nil
		}
		var rec roleRecord
		if err := json.Unmarshal(val, &rec); err != nil {
			return fmt.Errorf("decode %s: %w", key, err)
		}
		if !strings.HasPrefix(rec.Path, prefix) {
			return nil
		}
		if len(out.Roles) == maxItems {
			out.IsTruncated = true
			return errFull
		}
		out.Roles = append(out.Roles, rec.xml(false))
		return nil
	})
	if err != nil && !errors.Is(err, errFull) {
		return nil, fmt.Errorf("list roles: %w", err)
	}
	if out.IsTruncated {
		last := out.Roles[len(out.Roles)-1]
		m := base64.RawURLEncoding.EncodeToString([]byte(strings.ToLower(last.RoleName)))
		out.Marker = &m
	}
	return out, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
