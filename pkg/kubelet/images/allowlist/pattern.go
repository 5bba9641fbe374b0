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
	// repositories it names, digest-only images included ("nginx", "ghcr.io/*/app").
	PatternRepository PatternKind = iota
	// PatternTag matches tags only, by a tag that may be a glob ("nginx:1.27", "nginx:1.*").
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

// Pattern is one parsed imageGCExclude entry: a repository part and an optional tag glob or
// digest, each compared with the same part of an image's names, never as one joined string.
type Pattern struct {
	Kind PatternKind
	// Repository is the normalized repository ("docker.io/library/nginx"). In it '*' matches any
	// run of characters, '/' included. Empty for PatternID.
	Repository string
	// Tag is the tag for PatternTag; '*' in it matches any run of characters.
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
	// wildcardPlaceholder stands in for '*' while a repository is checked by the reference
	// grammar, which has no wildcards. It is valid in a host name and in a path component.
	wildcardPlaceholder = "x0wildcard0x"
	// catchAllCharacters are the characters a repository part may consist of, besides '*', and
	// still match (nearly) every image: "*/*", "*.*/*", "*-*".
	catchAllCharacters = "*/.:-_"
)

// ParsePattern parses one imageGCExclude entry. The error says what is wrong and, where it
// helps, what to write instead; it does not repeat the entry.
func ParsePattern(entry string) (Pattern, error) {
	switch {
	case entry == "":
		return Pattern{}, errors.New("must not be empty")
	case strings.TrimSpace(entry) != entry:
		return Pattern{}, errors.New("must not have leading or trailing white space")
	case strings.HasPrefix(entry, idPrefix) && !strings.Contains(entry, "/"):
		if !isLowerHex(entry[len(idPrefix):], idHexLength) {
			return Pattern{}, fmt.Errorf("image ID must be %q followed by %d lowercase hex digits", idPrefix, idHexLength)
		}
		return Pattern{Kind: PatternID, Digest: entry}, nil
	case isLowerHex(entry, idHexLength):
		return Pattern{}, fmt.Errorf("a bare 64-digit hex string is ambiguous; write an image ID as %q", idPrefix+entry)
	case strings.Contains(entry, wildcardPlaceholder):
		return Pattern{}, fmt.Errorf("must not contain %q", wildcardPlaceholder)
	}

	name, tag, dgst := splitReference(entry)
	if strings.Trim(name, catchAllCharacters) == "" {
		return Pattern{}, errors.New("its repository part has no literal name, so it would keep (nearly) every image; to turn off disk-usage image garbage collection set imageGCHighThresholdPercent: 100 instead")
	}
	for strings.Contains(name, "**") {
		name = strings.ReplaceAll(name, "**", "*")
	}
	check := strings.ReplaceAll(name, "*", wildcardPlaceholder)
	switch {
	case dgst != "":
		if !validDigest(dgst) {
			return Pattern{}, fmt.Errorf("invalid digest %q: want <algorithm>:<hex>, e.g. %s and %d lowercase hex digits ('*' is not allowed in a digest)", dgst, idPrefix, idHexLength)
		}
		check += "@" + dgst
	case tag != "":
		// A tag is at most 128 characters of [A-Za-z0-9_.-], starting with a word character.
		check += ":" + strings.ReplaceAll(tag, "*", "x")
	case strings.HasSuffix(entry, ":"):
		return Pattern{}, errors.New("empty tag after ':'; write the repository alone to keep every tag")
	}
	if _, err := reference.ParseNormalizedNamed(check); err != nil {
		return Pattern{}, referenceError(err)
	}
	// The grammar reads "ghcr.io" and "localhost:5000" as Docker Hub images; nobody means those.
	if !strings.Contains(name, "/") && (name == "localhost" || strings.Contains(name, ".")) {
		return Pattern{}, fmt.Errorf("a registry host alone names no image; to keep every image from it write %q", strings.TrimSuffix(entry, "@"+dgst)+"/*")
	}

	p := Pattern{Kind: PatternRepository, Repository: normalizeRepository(name)}
	switch {
	case dgst != "":
		p.Kind, p.Digest = PatternDigest, dgst
	case tag != "":
		p.Kind, p.Tag = PatternTag, tag
	}
	return p, nil
}

// normalizeRepository spells out the registry and Docker Hub's "library/" namespace, as
// NormalizeReference does for the runtime's names. A repository that starts with '*' is kept
// as written: its '*' stands for any registry ("*/pause"). After an explicit Docker Hub host, a
// single path component with '*' is kept as written too, since its '*' may span a namespace:
// "docker.io/*" means every Docker Hub repository, not only the official ones.
func normalizeRepository(name string) string {
	if strings.HasPrefix(name, "*") {
		return name
	}
	if first, rest, ok := strings.Cut(name, "/"); ok && (first == dockerDomain || first == "index."+dockerDomain) && strings.Contains(rest, "*") && !strings.Contains(rest, "/") {
		return dockerDomain + "/" + rest
	}
	normalized, _ := NormalizeReference(name)
	return normalized
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
		return fmt.Errorf("repository name must not be longer than %d characters", reference.NameTotalLengthMax)
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

// glob is a pattern cut at its '*'s: it matches a string that starts with the first part, ends
// with the last, and has the others in order in between. A glob without '*' has one part.
type glob []string

func newGlob(pattern string) glob { return strings.Split(pattern, "*") }

func (g glob) match(s string) bool {
	if len(g) == 1 {
		return s == g[0]
	}
	first, last := g[0], g[len(g)-1]
	if len(s) < len(first)+len(last) || !strings.HasPrefix(s, first) || !strings.HasSuffix(s, last) {
		return false
	}
	s = s[len(first) : len(s)-len(last)]
	for _, part := range g[1 : len(g)-1] {
		i := strings.Index(s, part)
		if i < 0 {
			return false
		}
		s = s[i+len(part):]
	}
	return true
}
