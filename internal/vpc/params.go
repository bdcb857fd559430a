package vpc

import (
	"net/url"
	"strings"

	"github.com/berthdev/berth/internal/protocol"
)

// Reading EC2 request parameters: ids, lists, tags.

// validID reports whether id is prefix-<8 or 17 lowercase hex digits>, the
// two shapes EC2 ids have.
func validID(id, prefix string) bool {
	hexPart, ok := strings.CutPrefix(id, prefix+"-")
	if !ok || (len(hexPart) != 8 && len(hexPart) != 17) {
		return false
	}
	for i := 0; i < len(hexPart); i++ {
		c := hexPart[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// checkID returns the kind's Malformed error unless id has its shape.
func checkID(k kind, id string) error {
	if !validID(id, k.prefix) {
		return errMalformed(k, id)
	}
	return nil
}

// requiredID reads a required id parameter and checks its shape.
func requiredID(p url.Values, param string, k kind) (string, error) {
	id := p.Get(param)
	if id == "" {
		return "", errMissing(param)
	}
	return id, checkID(k, id)
}

// idList reads the EC2 list param (VpcId.1, VpcId.2 …) of ids of kind k,
// without duplicates.
func idList(p url.Values, param string, k kind) ([]string, error) {
	ids, err := protocol.QueryList(p, param)
	if err != nil {
		return nil, err
	}
	var out []string
	seen := map[string]bool{}
	for _, id := range ids {
		if err := checkID(k, id); err != nil {
			return nil, err
		}
		if !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out, nil
}

// tagSpecs reads TagSpecification.N for a resource of type resourceType
// ("vpc", "subnet", "security-group"), validated.
func tagSpecs(p url.Values, resourceType string) ([]tag, error) {
	specs, err := protocol.QueryStructs(p, "TagSpecification")
	if err != nil {
		return nil, err
	}
	var tags []tag
	for _, spec := range specs {
		rt := spec.Get("ResourceType")
		if rt == "" {
			return nil, errMissing("TagSpecification.ResourceType")
		}
		if rt != resourceType {
			return nil, errInvalidValue("'%s' is not a valid taggable resource type for this operation.", rt)
		}
		more, err := tagList(spec, true)
		if err != nil {
			return nil, err
		}
		tags = append(tags, more...)
	}
	if err := checkTags(tags); err != nil {
		return nil, err
	}
	return tags, nil
}

// tagList reads Tag.N.Key / Tag.N.Value. With needKey an entry without a
// key is an error.
func tagList(p url.Values, needKey bool) ([]tag, error) {
	entries, err := protocol.QueryStructs(p, "Tag")
	if err != nil {
		return nil, err
	}
	out := make([]tag, 0, len(entries))
	for _, e := range entries {
		if needKey && !e.Has("Key") {
			return nil, errMissing("Tag.Key")
		}
		out = append(out, tag{Key: e.Get("Key"), Value: e.Get("Value")})
	}
	return out, nil
}
