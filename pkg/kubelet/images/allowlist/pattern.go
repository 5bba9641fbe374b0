/*
Copyright 2026 The Kubernetes Authors.

Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.
*/

package allowlist

import (
	"errors"
	"fmt"
	"strings"

	"github.com/distribution/reference"
)

// PatternKind says which of an image's names a pattern matches.
type PatternKind int

const (
	// PatternRepository has no tag or digest: it matches every tag and every digest of the
	// repositories it names, digest-only images included ("nginx", "ghcr.io/acme/*").
	PatternRepository PatternKind = iota
	// PatternTag matches one tag ("nginx:1.27").
	PatternTag
	// PatternDigest matches one repo digest ("quay.io/acme/app@sha256:<hex>").
	PatternDigest
	// PatternID matches the image ID, or any repo digest, with its hex ("sha256:<hex>").
	PatternID
)

func (k PatternKind) String() string {
	switch k {
	case PatternRepository:
		return "repository"
	case PatternTag:
		return "tag"
	case PatternDigest:
		return "digest"
	case PatternID:
		return "id"
	}
	return fmt.Sprintf("PatternKind(%d)", int(k))
}

// Pattern is one parsed imageGCExclude entry: a repository part and an optional tag or digest,
// each compared with the same part of an image's names, never as one joined string.
type Pattern struct {
	Kind PatternKind
	// Repository is the normalized repository ("docker.io/library/nginx"). A trailing '*'
	// matches any run of characters, '/' included ("ghcr.io/acme/*"). Empty for PatternID.
	Repository string
	// Tag is the tag of a PatternTag.
	Tag string
	// Digest is "sha256:<hex>" for PatternDigest and PatternID.
	Digest string
}

// Pullable reports whether the pattern names exactly one image a runtime can pull: a literal
// repository with a literal tag or a digest.
func (p Pattern) Pullable() bool {
	switch p.Kind {
	case PatternTag:
		return !strings.Contains(p.Repository, "*") && !strings.Contains(p.Tag, "*")
	case PatternDigest:
		return !strings.Contains(p.Repository, "*")
	}
	return false
}

// String is the normalized form of the pattern; two entries that mean the same have the same one.
func (p Pattern) String() string {
	switch p.Kind {
	case PatternTag:
		return p.Repository + ":" + p.Tag
	case PatternDigest:
		return p.Repository + "@" + p.Digest
	case PatternID:
		return p.Digest
	}
	return p.Repository
}

const (
	idPrefix    = "sha256:"
	idHexLength = 64
)

// errWildcard is wrapped by the error of an entry whose '*' is anywhere but in a whole last
// path component after a registry host.
var errWildcard = errors.New(`'*' is allowed only as the whole last path component after a registry host, as in "ghcr.io/acme/*"`)

// ParsePattern parses one imageGCExclude entry: an image reference with a tag or a digest, a
// repository without either (every tag and digest), an image ID, or a registry host and an
// optional path followed by "/*" (every repository under it). References are normalized by
// github.com/distribution/reference. The error says what is wrong and, where it helps, what to
// write instead; it does not repeat the entry.
func ParsePattern(entry string) (Pattern, error) {
	if p, done, err := parseImageID(entry); done {
		return p, err
	}
	name, tag, dgst := splitReference(entry)
	if dgst != "" && !validDigest(dgst) {
		return Pattern{}, fmt.Errorf("invalid digest %q: want <algorithm>:<hex>, e.g. %s and %d lowercase hex digits ('*' is not allowed in a digest)", dgst, idPrefix, idHexLength)
	}
	if strings.Contains(entry, "*") {
		return parsePrefix(name, tag, dgst)
	}
	if tag == "" && strings.HasSuffix(entry, ":") {
		return Pattern{}, errors.New("empty tag after ':'; write the repository alone to keep every tag")
	}
	named, err := reference.ParseNormalizedNamed(entry)
	if err != nil {
		return Pattern{}, referenceError(err)
	}
	if err := hostAlone(name, entry, dgst); err != nil {
		return Pattern{}, err
	}
	p := Pattern{Kind: PatternRepository, Repository: named.Name()}
	if digested, ok := named.(reference.Digested); ok {
		p.Kind, p.Digest = PatternDigest, digested.Digest().String()
	} else if tagged, ok := named.(reference.Tagged); ok {
		p.Kind, p.Tag = PatternTag, tagged.Tag()
	}
	return p, nil
}

// parseImageID parses what is not a reference: empty entries, white space and image IDs. done
// is false when the entry is for the reference grammar.
func parseImageID(entry string) (p Pattern, done bool, err error) {
	switch {
	case entry == "":
		return Pattern{}, true, errors.New("must not be empty")
	case strings.TrimSpace(entry) != entry:
		return Pattern{}, true, errors.New("must not have leading or trailing white space")
	case strings.HasPrefix(entry, idPrefix) && !strings.Contains(entry, "/"):
		if !isLowerHex(entry[len(idPrefix):], idHexLength) {
			return Pattern{}, true, fmt.Errorf("image ID must be %q followed by %d lowercase hex digits", idPrefix, idHexLength)
		}
		return Pattern{Kind: PatternID, Digest: entry}, true, nil
	case isLowerHex(entry, idHexLength):
		return Pattern{}, true, fmt.Errorf("a bare 64-digit hex string is ambiguous; write an image ID as %q", idPrefix+entry)
	}
	return Pattern{}, false, nil
}

// parsePrefix parses "<registry host>[/<path>]/*", which keeps every repository under the host
// and path.
func parsePrefix(name, tag, dgst string) (Pattern, error) {
	prefix, ok := strings.CutSuffix(name, "/*")
	if !ok || tag != "" || dgst != "" || strings.Contains(prefix, "*") {
		return Pattern{}, errWildcard
	}
	host, path, _ := strings.Cut(prefix, "/")
	if !isRegistryHost(host) {
		return Pattern{}, fmt.Errorf("%w; %q is not a registry host (write %q for Docker Hub)", errWildcard, host, dockerDomain+"/"+name)
	}
	named, err := reference.ParseNormalizedNamed(prefix + "/x")
	if err != nil {
		return Pattern{}, referenceError(err)
	}
	repo := reference.Domain(named) + "/"
	if path != "" {
		// Docker Hub's "library/" is not added to a namespace: "docker.io/acme/*" stays.
		repo = strings.TrimSuffix(named.Name(), "x")
	}
	return Pattern{Kind: PatternRepository, Repository: repo + "*"}, nil
}

// hostAlone refuses a registry host without a repository, which the reference grammar reads
// as a Docker Hub image ("ghcr.io", "localhost:5000"): nobody means those.
func hostAlone(name, entry, dgst string) error {
	if !strings.Contains(name, "/") && (name == "localhost" || strings.Contains(name, ".")) {
		return fmt.Errorf("a registry host alone names no image; to keep every image from it write %q", strings.TrimSuffix(entry, "@"+dgst)+"/*")
	}
	return nil
}

// validDigest reports whether a reference may carry dgst, as github.com/distribution/reference
// parses it (it validates the digest with github.com/opencontainers/go-digest, which the kubelet's
// module requires only indirectly).
func validDigest(dgst string) bool {
	_, err := reference.Parse("x@" + dgst)
	return err == nil
}

// referenceError turns the reference parser's errors into what a user can act on.
func referenceError(err error) error {
	switch {
	case errors.Is(err, reference.ErrNameContainsUppercase), strings.Contains(err.Error(), "must be lowercase"):
		return errors.New("repository name must be lowercase")
	case errors.Is(err, reference.ErrDigestInvalidFormat):
		return errors.New("invalid digest: want sha256: and 64 lowercase hex digits")
	case errors.Is(err, reference.ErrNameTooLong):
		return fmt.Errorf("repository name must not be longer than %d characters", reference.RepositoryNameTotalLengthMax)
	case errors.Is(err, reference.ErrReferenceInvalidFormat):
		return errors.New("not a valid image reference: want [registry/]repository[:tag|@digest], e.g. registry.k8s.io/pause:3.10")
	case errors.Is(err, reference.ErrNameEmpty):
		return errors.New("repository name must not be empty")
	}
	return err
}

func isLowerHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
