package ecr

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"time"

	"github.com/distribution/reference"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/berthdev/berth/internal/protocol"
	"github.com/berthdev/berth/internal/store"
)

// Image tag mutability settings.
const (
	mutabilityMutable   = "MUTABLE"
	mutabilityImmutable = "IMMUTABLE"
)

// maxRepositories is ECR's default quota of repositories per region.
const maxRepositories = 10000

// repoNamePattern is ECR's rule for repository names.
const repoNamePattern = `(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*`

var repoNameRE = regexp.MustCompile(`^` + repoNamePattern + `$`)

// repoRecord is a repository as kept in etcd at reposKey.
type repoRecord struct {
	Name               string    `json:"name"`
	CreatedAt          time.Time `json:"createdAt"`
	ImageTagMutability string    `json:"imageTagMutability"`
	ScanOnPush         bool      `json:"scanOnPush"`
	EncryptionType     string    `json:"encryptionType"`
	KmsKey             string    `json:"kmsKey,omitempty"`
	Tags               []Tag     `json:"tags"`
}

func newRepoRecord(name, mutability string, now time.Time) *repoRecord {
	return &repoRecord{Name: name, CreatedAt: now.UTC(), ImageTagMutability: mutability, EncryptionType: "AES256", Tags: []Tag{}}
}

// Repository is ECR's Repository shape.
type Repository struct {
	RepositoryArn              string                     `json:"repositoryArn"`
	RegistryID                 string                     `json:"registryId"`
	RepositoryName             string                     `json:"repositoryName"`
	RepositoryURI              string                     `json:"repositoryUri"`
	CreatedAt                  float64                    `json:"createdAt"`
	ImageTagMutability         string                     `json:"imageTagMutability"`
	ImageScanningConfiguration imageScanningConfiguration `json:"imageScanningConfiguration"`
	EncryptionConfiguration    encryptionConfiguration    `json:"encryptionConfiguration"`
}

type imageScanningConfiguration struct {
	ScanOnPush bool `json:"scanOnPush"`
}

type encryptionConfiguration struct {
	EncryptionType string `json:"encryptionType"`
	KmsKey         string `json:"kmsKey,omitempty"`
}

func reposPrefix(sc scope) string { return store.ScopedPrefix(sc.account, sc.region, "ecr", "repos") }

func repoKey(sc scope, name string) string { return reposPrefix(sc) + name }

func (s *Service) getRepo(ctx context.Context, sc scope, name string) (*repoRecord, error) {
	var rec repoRecord
	if _, err := s.st.Get(ctx, repoKey(sc, name), &rec); err != nil {
		return nil, err
	}
	return &rec, nil
}

// createRepo stores rec unless the repository exists (store.ErrExists) or
// the region's quota is reached.
func (s *Service) createRepo(ctx context.Context, sc scope, rec *repoRecord) (*repoRecord, error) {
	count, err := s.st.C.Get(ctx, reposPrefix(sc), clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		return nil, fmt.Errorf("count repositories: %w", err)
	}
	if count.Count >= maxRepositories {
		return nil, limitExceeded("The maximum number of repositories (%d) in the registry with id '%s' has been reached.", maxRepositories, sc.account)
	}
	if err := s.st.Create(ctx, repoKey(sc, rec.Name), rec); err != nil {
		return nil, err
	}
	return rec, nil
}

func (s *Service) listRepos(ctx context.Context, sc scope) ([]repoRecord, error) {
	return store.ListJSON[repoRecord](ctx, s.st, reposPrefix(sc))
}

// requireRepo reads a repository for an API call, answering
// RepositoryNotFoundException for a missing one.
func (s *Service) requireRepo(ctx context.Context, sc scope, name string) (*repoRecord, error) {
	if err := validateRepoName(sc, name); err != nil {
		return nil, err
	}
	rec, err := s.getRepo(ctx, sc, name)
	if errors.Is(err, store.ErrNotFound) {
		return nil, repoNotFound(sc, name)
	}
	return rec, err
}

// validateRepoName applies ECR's name rules, and Distribution's length limit
// to the stored name (so names are somewhat shorter than ECR's 256).
func validateRepoName(sc scope, name string) error {
	if len(name) < 2 {
		return constraint("repositoryName", "Member must have length greater than or equal to 2")
	}
	if max := reference.RepositoryNameTotalLengthMax - len(sc.storedName("")); len(name) > max {
		return constraint("repositoryName", fmt.Sprintf("Member must have length less than or equal to %d", max))
	}
	if !repoNameRE.MatchString(name) {
		return constraint("repositoryName", "must satisfy regular expression '"+repoNamePattern+"'")
	}
	return nil
}

func validateMutability(m string) error {
	if m != mutabilityMutable && m != mutabilityImmutable {
		return constraint("imageTagMutability", "Member must satisfy enum value set: [MUTABLE, IMMUTABLE]")
	}
	return nil
}

// checkRegistryID refuses a registryId other than the caller's own.
func checkRegistryID(sc scope, id string) error {
	if id != "" && id != sc.account {
		return constraint("registryId", fmt.Sprintf("registry '%s' is not the caller's registry '%s'", id, sc.account))
	}
	return nil
}

func (s *Service) repository(ctx context.Context, sc scope, rec *repoRecord) Repository {
	return Repository{
		RepositoryArn:              sc.arn(rec.Name),
		RegistryID:                 sc.account,
		RepositoryName:             rec.Name,
		RepositoryURI:              endpointOf(ctx).Host + "/" + rec.Name,
		CreatedAt:                  epoch(rec.CreatedAt),
		ImageTagMutability:         rec.ImageTagMutability,
		ImageScanningConfiguration: imageScanningConfiguration{ScanOnPush: rec.ScanOnPush},
		EncryptionConfiguration:    encryptionConfiguration{EncryptionType: rec.EncryptionType, KmsKey: rec.KmsKey},
	}
}

func (s *Service) createRepository(ctx context.Context, body []byte) (any, error) {
	sc, err := scopeOf(ctx)
	if err != nil {
		return nil, err
	}
	var in struct {
		RegistryID                 string                      `json:"registryId"`
		RepositoryName             string                      `json:"repositoryName"`
		Tags                       []Tag                       `json:"tags"`
		ImageTagMutability         string                      `json:"imageTagMutability"`
		ImageScanningConfiguration *imageScanningConfiguration `json:"imageScanningConfiguration"`
		EncryptionConfiguration    *encryptionConfiguration    `json:"encryptionConfiguration"`
	}
	if err := protocol.Decode(body, &in); err != nil {
		return nil, err
	}
	if err := checkRegistryID(sc, in.RegistryID); err != nil {
		return nil, err
	}
	if err := validateRepoName(sc, in.RepositoryName); err != nil {
		return nil, err
	}
	if err := validateNewRepoName(in.RepositoryName); err != nil {
		return nil, err
	}
	if in.ImageTagMutability == "" {
		in.ImageTagMutability = mutabilityMutable
	}
	if err := validateMutability(in.ImageTagMutability); err != nil {
		return nil, err
	}
	if err := validateTags(in.Tags); err != nil {
		return nil, err
	}
	rec := newRepoRecord(in.RepositoryName, in.ImageTagMutability, s.cfg.Now())
	if in.Tags != nil {
		rec.Tags = in.Tags
	}
	if in.ImageScanningConfiguration != nil {
		rec.ScanOnPush = in.ImageScanningConfiguration.ScanOnPush
	}
	if e := in.EncryptionConfiguration; e != nil {
		// Images are stored as they are; the setting is recorded and
		// reported as given, as a KMS-less ECR would.
		if e.EncryptionType != "AES256" && e.EncryptionType != "KMS" {
			return nil, constraint("encryptionConfiguration.encryptionType", "Member must satisfy enum value set: [AES256, KMS]")
		}
		rec.EncryptionType, rec.KmsKey = e.EncryptionType, e.KmsKey
	}
	if _, err := s.createRepo(ctx, sc, rec); err != nil {
		if errors.Is(err, store.ErrExists) {
			return nil, repoExists(sc, in.RepositoryName)
		}
		return nil, err
	}
	return map[string]Repository{"repository": s.repository(ctx, sc, rec)}, nil
}

func (s *Service) describeRepositories(ctx context.Context, body []byte) (any, error) {
	sc, err := scopeOf(ctx)
	if err != nil {
		return nil, err
	}
	var in struct {
		RegistryID      string   `json:"registryId"`
		RepositoryNames []string `json:"repositoryNames"`
		NextToken       string   `json:"nextToken"`
		MaxResults      *int     `json:"maxResults"`
	}
	if err := protocol.Decode(body, &in); err != nil {
		return nil, err
	}
	if err := checkRegistryID(sc, in.RegistryID); err != nil {
		return nil, err
	}
	var recs []repoRecord
	if len(in.RepositoryNames) > 0 {
		if in.MaxResults != nil || in.NextToken != "" {
			return nil, invalidParam("Invalid parameter: maxResults and nextToken cannot be used with repositoryNames")
		}
		if len(in.RepositoryNames) > 100 {
			return nil, constraint("repositoryNames", "Member must have length less than or equal to 100")
		}
		for _, name := range in.RepositoryNames {
			rec, err := s.requireRepo(ctx, sc, name)
			if err != nil {
				return nil, err
			}
			recs = append(recs, *rec)
		}
	} else if recs, err = s.listRepos(ctx, sc); err != nil {
		return nil, err
	}
	sort.Slice(recs, func(i, j int) bool { return recs[i].Name < recs[j].Name })
	pageRecs, next, err := page(recs, func(r repoRecord) string { return r.Name }, in.NextToken, in.MaxResults)
	if err != nil {
		return nil, err
	}
	out := struct {
		Repositories []Repository `json:"repositories"`
		NextToken    string       `json:"nextToken,omitempty"`
	}{Repositories: []Repository{}, NextToken: next}
	for i := range pageRecs {
		out.Repositories = append(out.Repositories, s.repository(ctx, sc, &pageRecs[i]))
	}
	return out, nil
}

type deleteRepositoryInput struct {
	RegistryID     string `json:"registryId"`
	RepositoryName string `json:"repositoryName"`
	Force          bool   `json:"force"`
}

func (s *Service) deleteRepository(ctx context.Context, body []byte) (any, error) {
	var in deleteRepositoryInput
	sc, rec, err := openOwnRepo(ctx, s, body, &in, func(in *deleteRepositoryInput) (string, string) { return in.RegistryID, in.RepositoryName })
	if err != nil {
		return nil, err
	}
	stored := sc.storedName(rec.Name)
	if !in.Force {
		empty, err := s.reg.repoEmpty(ctx, stored)
		if err != nil {
			return nil, err
		}
		if !empty {
			return nil, repoNotEmpty(sc, rec.Name)
		}
	}
	// The record goes first: from then on the registry refuses the name,
	// so nothing new lands in storage while it is removed.
	if err := s.st.Delete(ctx, repoKey(sc, rec.Name)); err != nil {
		return nil, err
	}
	s.deletePolicies(ctx, sc, rec) // policy.go
	if err := s.reg.removeRepo(ctx, stored); err != nil {
		return nil, fmt.Errorf("delete repository %s: %w", rec.Name, err)
	}
	return map[string]Repository{"repository": s.repository(ctx, sc, rec)}, nil
}

func (s *Service) putImageTagMutability(ctx context.Context, body []byte) (any, error) {
	sc, err := scopeOf(ctx)
	if err != nil {
		return nil, err
	}
	var in struct {
		RegistryID         string `json:"registryId"`
		RepositoryName     string `json:"repositoryName"`
		ImageTagMutability string `json:"imageTagMutability"`
	}
	if err := protocol.Decode(body, &in); err != nil {
		return nil, err
	}
	if err := checkRegistryID(sc, in.RegistryID); err != nil {
		return nil, err
	}
	if err := validateRepoName(sc, in.RepositoryName); err != nil {
		return nil, err
	}
	if err := validateMutability(in.ImageTagMutability); err != nil {
		return nil, err
	}
	_, err = store.Mutate(ctx, s.st, repoKey(sc, in.RepositoryName), func(r *repoRecord) ([]clientv3.Op, error) {
		r.ImageTagMutability = in.ImageTagMutability
		return nil, nil
	})
	if errors.Is(err, store.ErrNotFound) {
		return nil, repoNotFound(sc, in.RepositoryName)
	}
	if err != nil {
		return nil, err
	}
	return map[string]string{"registryId": sc.account, "repositoryName": in.RepositoryName, "imageTagMutability": in.ImageTagMutability}, nil
}
