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

package images

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/distribution/reference"
	"github.com/opencontainers/go-digest"
	"k8s.io/apimachinery/pkg/labels"
)

// ImagePatternKind says which part of an image an image GC exclusion pattern matches.
type ImagePatternKind int

const (
	// ImagePatternTag matches one tag of one repository: "registry.k8s.io/pause:3.10".
	ImagePatternTag ImagePatternKind = iota
	// ImagePatternDigest matches one repo digest: "quay.io/acme/app@sha256:<hex>".
	ImagePatternDigest
	// ImagePatternRepository matches every tag and digest of a repository: "nginx".
	ImagePatternRepository
	// ImagePatternID matches an image ID: "sha256:<hex>".
	ImagePatternID
	// ImagePatternWildcard matches normalized references with '*' standing for any run of characters.
	ImagePatternWildcard
)

func (k ImagePatternKind) String() string {
	switch k {
	case ImagePatternTag:
		return "tag"
	case ImagePatternDigest:
		return "digest"
	case ImagePatternRepository:
		return "repository"
	case ImagePatternID:
		return "id"
	case ImagePatternWildcard:
		return "wildcard"
	}
	return fmt.Sprintf("ImagePatternKind(%d)", int(k))
}

// ImagePattern is one parsed entry of imageGCExclude.
type ImagePattern struct {
	// Kind says what the pattern matches.
	Kind ImagePatternKind
	// Value is the normalized form that is compared: "docker.io/library/nginx:1.27",
	// "docker.io/library/nginx", "<repo>@sha256:<hex>", the 64 hex digits of an image ID,
	// or the wildcard pattern over normalized references.
	Value string
	// Pullable is true for a pattern that names exactly one image a runtime can pull
	// (a repository with a tag or a digest).
	Pullable bool
}

// wildcardPlaceholder stands in for '*' while a pattern is checked and normalized by the
// reference grammar, which has no wildcards. It is valid in every part of a reference.
const wildcardPlaceholder = "x0wildcard0x"

const (
	idPrefix     = "sha256:"
	idHexLength  = 64
	dockerDomain = "docker.io"
	officialRepo = "library/"
)

// ParseImagePattern parses one imageGCExclude entry. The error says what is wrong with it and,
// where it helps, what to write instead; it does not repeat the entry.
func ParseImagePattern(entry string) (ImagePattern, error) {
	switch {
	case entry == "":
		return ImagePattern{}, errors.New("must not be empty")
	case strings.TrimSpace(entry) != entry:
		return ImagePattern{}, errors.New("must not have leading or trailing white space")
	case strings.HasPrefix(entry, idPrefix):
		hex := entry[len(idPrefix):]
		if !isLowerHex(hex, idHexLength) {
			return ImagePattern{}, fmt.Errorf("image ID must be %q followed by %d lowercase hex digits", idPrefix, idHexLength)
		}
		return ImagePattern{Kind: ImagePatternID, Value: hex}, nil
	case isLowerHex(entry, idHexLength):
		return ImagePattern{}, fmt.Errorf("a bare 64-digit hex string is ambiguous; write an image ID as %q", idPrefix+entry)
	case strings.Contains(entry, "*"):
		return parseWildcardPattern(entry)
	}

	if _, dgst, ok := strings.Cut(entry, "@"); ok {
		if err := digest.Digest(dgst).Validate(); err != nil {
			return ImagePattern{}, fmt.Errorf("invalid digest %q: want %s followed by %d lowercase hex digits", dgst, idPrefix, idHexLength)
		}
	}
	named, err := reference.ParseNormalizedNamed(entry)
	if err != nil {
		return ImagePattern{}, referenceError(err)
	}
	if digested, ok := named.(reference.Digested); ok {
		// A tag next to a digest says nothing more: runtimes report repo digests without tags.
		return ImagePattern{Kind: ImagePatternDigest, Value: named.Name() + "@" + digested.Digest().String(), Pullable: true}, nil
	}
	if tagged, ok := named.(reference.Tagged); ok {
		return ImagePattern{Kind: ImagePatternTag, Value: named.Name() + ":" + tagged.Tag(), Pullable: true}, nil
	}
	return ImagePattern{Kind: ImagePatternRepository, Value: named.Name()}, nil
}

// parseWildcardPattern checks a pattern with '*' against the reference grammar and normalizes
// it like a reference. A pattern that starts with '*' is compared as written (its '*' can stand
// for any registry). A '*' in the first path component must be part of a registry host name
// ("registry-*.example.com/app"), since a partial Docker Hub namespace would never match the
// normalized references.
func parseWildcardPattern(entry string) (ImagePattern, error) {
	if strings.Trim(entry, "*") == "" {
		return ImagePattern{}, errors.New("a pattern of only '*' would keep every image; to turn off disk-usage image garbage collection set imageGCHighThresholdPercent: 100 instead")
	}
	if strings.Contains(entry, wildcardPlaceholder) {
		return ImagePattern{}, fmt.Errorf("must not contain %q", wildcardPlaceholder)
	}
	if i := strings.IndexByte(entry, '@'); i >= 0 && strings.Contains(entry[i:], "*") {
		return ImagePattern{}, errors.New("'*' is not allowed in a digest; give the whole digest or use a tag pattern")
	}
	for strings.Contains(entry, "**") {
		entry = strings.ReplaceAll(entry, "**", "*")
	}
	if _, err := reference.ParseNormalizedNamed(strings.ReplaceAll(entry, "*", wildcardPlaceholder)); err != nil {
		return ImagePattern{}, referenceError(err)
	}
	first, rest, hasSlash := strings.Cut(entry, "/")
	switch {
	case entry[0] == '*':
		return ImagePattern{Kind: ImagePatternWildcard, Value: entry}, nil
	case hasSlash && strings.Contains(first, "*"):
		if !strings.ContainsAny(first, ".:") {
			return ImagePattern{}, fmt.Errorf("a '*' in the first path component must be part of a registry host name (with '.' or ':'); for Docker Hub write %q", dockerDomain+"/"+entry)
		}
		return ImagePattern{Kind: ImagePatternWildcard, Value: entry}, nil
	case hasSlash && (first == dockerDomain || first == "index."+dockerDomain) && strings.HasPrefix(rest, "*"):
		// "docker.io/*" means every Docker Hub image, not only the official ones.
		return ImagePattern{Kind: ImagePatternWildcard, Value: dockerDomain + "/" + rest}, nil
	}
	normalized, _ := NormalizeImageReference(entry)
	return ImagePattern{Kind: ImagePatternWildcard, Value: normalized}, nil
}

// referenceError turns the reference parser's errors into what a user can act on.
func referenceError(err error) error {
	switch {
	case errors.Is(err, reference.ErrNameContainsUppercase), strings.Contains(err.Error(), "must be lowercase"):
		return errors.New("repository name must be lowercase")
	case errors.Is(err, reference.ErrDigestInvalidFormat):
		return errors.New("invalid digest: want <algorithm>:<hex>, e.g. sha256 and 64 lowercase hex digits")
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

// ParseImageSelector parses one imageGCExcludeSelectors entry, a label selector over the
// image's OCI config labels.
func ParseImageSelector(entry string) (labels.Selector, error) {
	if strings.TrimSpace(entry) == "" {
		return nil, errors.New("must not be empty: an empty selector would keep every image")
	}
	selector, err := labels.Parse(entry)
	if err != nil {
		return nil, err
	}
	if selector.Empty() {
		return nil, errors.New("selects every image; to turn off disk-usage image garbage collection set imageGCHighThresholdPercent: 100 instead")
	}
	if _, ok := satisfyingLabels(selector); !ok {
		return nil, errors.New("selects no image: its requirements contradict each other")
	}
	return selector, nil
}

// satisfyingLabels returns a label set that the selector matches, if there is one. Requirements
// on different keys are independent, so each key is solved on its own: absent, or one of the
// values the requirements name, or a value none of them names.
func satisfyingLabels(selector labels.Selector) (map[string]string, bool) {
	requirements, _ := selector.Requirements()
	byKey := map[string][]labels.Requirement{}
	for _, r := range requirements {
		byKey[r.Key()] = append(byKey[r.Key()], r)
	}
	result := map[string]string{}
	for key, reqs := range byKey {
		// A value no requirement names: longer than any of them.
		unnamed := "x"
		var candidates []*string
		for _, r := range reqs {
			for _, v := range r.ValuesUnsorted() {
				candidates = append(candidates, &v)
				for len(unnamed) <= len(v) {
					unnamed += "x"
				}
				if n, err := strconv.ParseInt(v, 10, 64); err == nil {
					above, below := strconv.FormatInt(n+1, 10), strconv.FormatInt(n-1, 10)
					candidates = append(candidates, &above, &below)
				}
			}
		}
		candidates = append(candidates, nil, &unnamed)
		found := false
		for _, candidate := range candidates {
			set := labels.Set{}
			if candidate != nil {
				set[key] = *candidate
			}
			if allMatch(reqs, set) {
				if candidate != nil {
					result[key] = *candidate
				}
				found = true
				break
			}
		}
		if !found {
			return nil, false
		}
	}
	return result, true
}

func allMatch(requirements []labels.Requirement, set labels.Set) bool {
	for _, r := range requirements {
		if !r.Matches(set) {
			return false
		}
	}
	return true
}

// ImageMatcher decides whether an image is on the image GC allowlist. It is compiled once from
// the configuration; matching does map look-ups and compares pre-split wildcards, so its cost
// barely grows with the number of entries. It is immutable and safe for concurrent use.
type ImageMatcher struct {
	tags    map[string]string // "repo:tag" -> entry
	digests map[string]string // "repo@sha256:hex" -> entry
	repos   map[string]string // "repo" -> entry
	ids     map[string]string // hex of the image ID -> entry
	// wildcards are grouped by the literal text before their first '*' up to and including its
	// last '/', so a reference consults only the groups of its own '/'-prefixes.
	wildcards map[string][]wildcard
	selectors []imageSelector
	counts    [ImagePatternWildcard + 1]int
}

type wildcard struct {
	entry string
	parts []string // the literal text between '*'s; matches if they occur in order
}

type imageSelector struct {
	entry    string
	selector labels.Selector
}

// ImageMatcherError lists every invalid entry found while compiling an ImageMatcher.
type ImageMatcherError struct {
	Errs []error
}

func (e *ImageMatcherError) Error() string {
	msgs := make([]string, len(e.Errs))
	for i, err := range e.Errs {
		msgs[i] = err.Error()
	}
	return strings.Join(msgs, "; ")
}

// Unwrap lets errors.Is and errors.As look at each entry's error.
func (e *ImageMatcherError) Unwrap() []error { return e.Errs }

// ImageGCExcludeFieldName and ImageGCExcludeSelectorsFieldName are the KubeletConfiguration
// fields whose entries NewImageMatcher compiles; errors name them.
const (
	ImageGCExcludeFieldName          = "imageGCExclude"
	ImageGCExcludeSelectorsFieldName = "imageGCExcludeSelectors"
)

// NewImageMatcher compiles imageGCExclude patterns and imageGCExcludeSelectors selectors.
// Every invalid entry is reported, each as `<field>[<index>] "<entry>": <reason>`.
func NewImageMatcher(patterns, selectors []string) (*ImageMatcher, error) {
	m := &ImageMatcher{
		tags:      map[string]string{},
		digests:   map[string]string{},
		repos:     map[string]string{},
		ids:       map[string]string{},
		wildcards: map[string][]wildcard{},
	}
	var errs []error
	for i, entry := range patterns {
		p, err := ParseImagePattern(entry)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s[%d] %q: %w", ImageGCExcludeFieldName, i, entry, err))
			continue
		}
		m.add(entry, p)
	}
	for i, entry := range selectors {
		s, err := ParseImageSelector(entry)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s[%d] %q: %w", ImageGCExcludeSelectorsFieldName, i, entry, err))
			continue
		}
		m.selectors = append(m.selectors, imageSelector{entry: entry, selector: s})
	}
	if len(errs) > 0 {
		return nil, &ImageMatcherError{Errs: errs}
	}
	return m, nil
}

func (m *ImageMatcher) add(entry string, p ImagePattern) {
	m.counts[p.Kind]++
	var index map[string]string
	switch p.Kind {
	case ImagePatternTag:
		index = m.tags
	case ImagePatternDigest:
		index = m.digests
	case ImagePatternRepository:
		index = m.repos
	case ImagePatternID:
		index = m.ids
	case ImagePatternWildcard:
		key := wildcardKey(p.Value)
		m.wildcards[key] = append(m.wildcards[key], wildcard{entry: entry, parts: strings.Split(p.Value, "*")})
		return
	}
	if _, dup := index[p.Value]; !dup {
		index[p.Value] = entry
	}
}

// wildcardKey is the literal head of a wildcard pattern cut after its last '/'.
func wildcardKey(pattern string) string {
	head := pattern[:strings.IndexByte(pattern, '*')]
	return head[:strings.LastIndexByte(head, '/')+1]
}

// Empty reports whether the matcher has no entries at all.
func (m *ImageMatcher) Empty() bool {
	return m == nil || (len(m.tags)+len(m.digests)+len(m.repos)+len(m.ids)+len(m.wildcards)+len(m.selectors) == 0)
}

// HasSelectors reports whether matching can depend on image labels.
func (m *ImageMatcher) HasSelectors() bool {
	return m != nil && len(m.selectors) > 0
}

// Summary counts the entries of each kind, as key/value pairs for a structured log line.
func (m *ImageMatcher) Summary() []any {
	if m == nil {
		return nil
	}
	kv := make([]any, 0, 2*(len(m.counts)+1))
	for kind, n := range m.counts {
		kv = append(kv, ImagePatternKind(kind).String()+"Patterns", n)
	}
	return append(kv, "selectors", len(m.selectors))
}

// MatchReferences returns the first entry that matches the image by ID, repo tag or repo digest,
// or "" if none does. Labels are not consulted; see MatchLabels. The references may be in the
// short form some runtimes report ("nginx:1.27"); they are normalized before comparison.
func (m *ImageMatcher) MatchReferences(imageID string, repoTags, repoDigests []string) string {
	if m == nil {
		return ""
	}
	if len(m.ids) > 0 {
		if entry, ok := m.ids[strings.TrimPrefix(imageID, idPrefix)]; ok {
			return entry
		}
	}
	for _, ref := range repoTags {
		if entry := m.matchReference(ref, ':', m.tags); entry != "" {
			return entry
		}
	}
	for _, ref := range repoDigests {
		if entry := m.matchReference(ref, '@', m.digests); entry != "" {
			return entry
		}
	}
	return ""
}

// matchReference matches one repo tag (sep ':') or repo digest (sep '@').
func (m *ImageMatcher) matchReference(ref string, sep byte, exact map[string]string) string {
	ref, ok := NormalizeImageReference(ref)
	if !ok {
		return ""
	}
	if entry, ok := exact[ref]; ok {
		return entry
	}
	if len(m.repos) > 0 {
		if entry, ok := m.repos[repositoryOf(ref, sep)]; ok {
			return entry
		}
	}
	if len(m.wildcards) > 0 {
		return m.matchWildcards(ref)
	}
	return ""
}

func (m *ImageMatcher) matchWildcards(ref string) string {
	for i := 0; ; {
		for _, w := range m.wildcards[ref[:i]] {
			if globMatch(w.parts, ref) {
				return w.entry
			}
		}
		next := strings.IndexByte(ref[i:], '/')
		if next < 0 {
			return ""
		}
		i += next + 1
	}
}

// MatchLabels returns the first selector that matches the image's labels, or "".
func (m *ImageMatcher) MatchLabels(imageLabels map[string]string) string {
	if m == nil {
		return ""
	}
	for _, s := range m.selectors {
		if s.selector.Matches(labels.Set(imageLabels)) {
			return s.entry
		}
	}
	return ""
}

// globMatch reports whether s is parts joined by runs of any characters.
func globMatch(parts []string, s string) bool {
	if len(parts) == 1 {
		return s == parts[0]
	}
	first, last := parts[0], parts[len(parts)-1]
	if len(s) < len(first)+len(last) || !strings.HasPrefix(s, first) || !strings.HasSuffix(s, last) {
		return false
	}
	s = s[len(first) : len(s)-len(last)]
	for _, p := range parts[1 : len(parts)-1] {
		i := strings.Index(s, p)
		if i < 0 {
			return false
		}
		s = s[i+len(p):]
	}
	return true
}

// repositoryOf cuts the tag or digest off a normalized reference.
func repositoryOf(ref string, sep byte) string {
	if sep == '@' {
		if i := strings.IndexByte(ref, '@'); i >= 0 {
			return ref[:i]
		}
		return ref
	}
	if i := strings.LastIndexByte(ref, ':'); i > strings.LastIndexByte(ref, '/') {
		return ref[:i]
	}
	return ref
}

// NormalizeImageReference returns a reference as containerd and CRI-O report it, with the
// registry and, on Docker Hub, the "library/" namespace spelled out: "nginx:1.27" becomes
// "docker.io/library/nginx:1.27"; "localhost:5000/app:1" is unchanged (a port is not a tag).
// It does not validate; ok is false for what cannot name an image ("<none>:<none>", "").
// References that are already normalized, as runtimes report them, are returned without copying.
func NormalizeImageReference(ref string) (string, bool) {
	// Byte searches only: this runs for every name of every GC candidate.
	if ref == "" || strings.IndexByte(ref, '<') >= 0 {
		return "", false
	}
	slash := strings.IndexByte(ref, '/')
	if slash < 0 {
		return dockerDomain + "/" + officialRepo + ref, true
	}
	domain := ref[:slash]
	if strings.IndexByte(domain, '.') < 0 && strings.IndexByte(domain, ':') < 0 && domain != "localhost" && !hasUpper(domain) {
		// No registry: Docker Hub, as in reference.ParseNormalizedNamed.
		return dockerDomain + "/" + ref, true
	}
	if domain == "index.docker.io" {
		ref, domain = dockerDomain+ref[slash:], dockerDomain
		slash = len(dockerDomain)
	}
	if domain == dockerDomain && strings.IndexByte(ref[slash+1:], '/') < 0 {
		return dockerDomain + "/" + officialRepo + ref[slash+1:], true
	}
	return ref, true
}

func hasUpper(s string) bool {
	for i := 0; i < len(s); i++ {
		if 'A' <= s[i] && s[i] <= 'Z' {
			return true
		}
	}
	return false
}
