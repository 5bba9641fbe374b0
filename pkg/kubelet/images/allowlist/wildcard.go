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

const (
	// wildcardPlaceholder stands in for '*' while a repository is checked by the reference
	// grammar, which has no wildcards. It is valid in a host name and in a path component.
	wildcardPlaceholder = "x0wildcard0x"
	// catchAllCharacters are the characters a repository part may consist of, besides '*', and
	// still match (nearly) every image: "*/*", "*.*/*", "*-*".
	catchAllCharacters = "*/.:-_"
	// minHostLabels is how many literal labels a registry host with '*' must keep.
	minHostLabels = 2
)

// ParseExtendedPattern parses one imageGCExclude entry in the full language of this kubelet:
// what ParsePattern takes, and '*' anywhere in the repository part and in a tag, where it
// matches any run of characters ("registry-*.example.com/app", "ghcr.io/*/app", "nginx:1.*",
// "*/pause:*"). A first component that is '*' alone stands for any registry; a '*' in a
// registry host must leave at least two of its labels literal ("*.example.com", not "*.io"),
// and never spans a '/'.
func ParseExtendedPattern(entry string) (Pattern, error) {
	p, err := ParsePattern(entry)
	if !errors.Is(err, errWildcard) {
		return p, err
	}
	if strings.Contains(entry, wildcardPlaceholder) {
		return Pattern{}, fmt.Errorf("must not contain %q", wildcardPlaceholder)
	}
	name, tag, dgst := splitReference(entry)
	if strings.Trim(name, catchAllCharacters) == "" {
		return Pattern{}, errors.New("its repository part has no literal name, so it would keep (nearly) every image; to turn off disk-usage image garbage collection set imageGCHighThresholdPercent: 100 instead")
	}
	for strings.Contains(name, "**") {
		name = strings.ReplaceAll(name, "**", "*")
	}
	if err := checkWildcardHost(name); err != nil {
		return Pattern{}, err
	}
	check := strings.ReplaceAll(name, "*", wildcardPlaceholder)
	switch {
	case dgst != "":
		check += "@" + dgst
	case tag != "":
		// A tag is at most 128 characters of [A-Za-z0-9_.-], starting with a word character.
		check += ":" + strings.ReplaceAll(tag, "*", "x")
	case strings.HasSuffix(entry, ":"):
		return Pattern{}, errors.New("empty tag after ':'; write the repository alone to keep every tag")
	}
	named, err := reference.ParseNormalizedNamed(check)
	if err != nil {
		return Pattern{}, referenceError(err)
	}
	if err := hostAlone(name, entry, dgst); err != nil {
		return Pattern{}, err
	}

	p = Pattern{Kind: PatternRepository, Repository: normalizeWildcardRepository(name, named)}
	if strings.HasPrefix(p.Repository, "*/") && !hasLiteralComponent(p.Repository) {
		// Any registry, and no path component to narrow it down.
		return Pattern{}, fmt.Errorf("its repository %q has no component without '*', so it would keep images of any registry and nearly any name; name one, as in \"*/pause\"", p.Repository)
	}
	switch {
	case dgst != "":
		p.Kind, p.Digest = PatternDigest, dgst
	case tag != "":
		p.Kind, p.Tag = PatternTag, tag
	}
	return p, nil
}

// checkWildcardHost refuses a registry host whose '*' leaves fewer than two literal labels:
// "*.io" would keep every image of registries as unrelated as ghcr.io and quay.io. A first
// component without '.' or ':' is a Docker Hub namespace, or, as a lone '*', any registry.
func checkWildcardHost(name string) error {
	host, _, ok := strings.Cut(name, "/")
	if !ok || !strings.Contains(host, "*") || !isRegistryHost(strings.ReplaceAll(host, "*", "x")) {
		return nil
	}
	hostname, _, _ := strings.Cut(host, ":")
	literal := 0
	for _, label := range strings.Split(hostname, ".") {
		if label != "" && !strings.Contains(label, "*") {
			literal++
		}
	}
	if literal < minHostLabels {
		return fmt.Errorf("a '*' in the registry host %q must leave at least %d labels literal (\"*.example.com\", not \"*.io\"), or it keeps images of unrelated registries", host, minHostLabels)
	}
	return nil
}

// normalizeWildcardRepository spells out the registry and Docker Hub's "library/" namespace, as
// named, the repository with its '*'s replaced by wildcardPlaceholder, says. A first component
// that is '*' alone is kept as written: it stands for any registry ("*/pause"). Any other first
// component with '*' is a registry host if it has a '.' or a ':' ("*.example.com"), else a
// Docker Hub namespace ("*io/*" is "docker.io/*io/*"), as distribution/reference decides for a
// literal name. After an explicit Docker Hub host, a single path component with '*' is kept as
// written, since its '*' may span a namespace: "docker.io/*-agent" means every Docker Hub
// repository ending in "-agent", not only the official ones.
func normalizeWildcardRepository(name string, named reference.Named) string {
	if strings.HasPrefix(name, "*/") {
		return name
	}
	if first, rest, ok := strings.Cut(name, "/"); ok && (first == dockerDomain || first == "index."+dockerDomain) && strings.Contains(rest, "*") && !strings.Contains(rest, "/") {
		return dockerDomain + "/" + rest
	}
	return strings.ReplaceAll(named.Name(), wildcardPlaceholder, "*")
}

// compilePatterns compiles imageGCExclude patterns in the language of ParseExtendedPattern.
func compilePatterns(patterns []string) (*Matcher, error) {
	return newMatcher(patterns, ParseExtendedPattern, globRules{})
}

// hasLiteralComponent reports whether a normalized repository pattern has a '/'-separated
// component without '*' ("*/pause" has, "*/*a*" has not).
func hasLiteralComponent(repo string) bool {
	for _, c := range strings.Split(repo, "/") {
		if !strings.Contains(c, "*") {
			return true
		}
	}
	return false
}

// globRules are the patterns of ParseExtendedPattern that no map of the Matcher can look up,
// grouped by the literal text of the repository before its first '*', cut after its last '/', so
// a reference consults only the groups of its own '/'-prefixes. Rules are appended in position
// order, so the first rule of a group that matches is the earliest of its group.
type globRules map[string][]rule

// rule is a compiled pattern with a '*' the Matcher's maps cannot look up.
type rule struct {
	pos  int
	kind PatternKind
	repo glob
	// host, when set, matches the registry host alone, and repo the rest of the repository
	// after its '/': a '*' in a host never spans a '/'.
	host glob
	tag  glob
	// digest is the digest of a PatternDigest.
	digest string
}

func (g globRules) add(pos int, p Pattern) {
	head, _, _ := strings.Cut(p.Repository, "*")
	key := head[:strings.LastIndexByte(head, '/')+1]
	r := rule{pos: pos, kind: p.Kind, repo: newGlob(p.Repository), digest: p.Digest}
	if host, rest, ok := strings.Cut(p.Repository, "/"); ok && host != "*" && strings.Contains(host, "*") {
		r.host, r.repo = newGlob(host), newGlob(rest)
	}
	if p.Kind == PatternTag {
		r.tag = newGlob(p.Tag)
	}
	g[key] = append(g[key], r)
}

func (g globRules) match(repo, tag, dgst string, limit int) int {
	best := noMatch
	if len(g) == 0 {
		return best
	}
	for i := 0; ; {
		for _, r := range g[repo[:i]] {
			if r.pos >= min(best, limit) {
				break
			}
			if r.matches(repo, tag, dgst) {
				best = r.pos
				break
			}
		}
		next := strings.IndexByte(repo[i:], '/')
		if next < 0 {
			return best
		}
		i += next + 1
	}
}

// matches compares a rule with a reference's parts.
func (r *rule) matches(repo, tag, dgst string) bool {
	switch r.kind {
	case PatternTag:
		if tag == "" || !r.tag.match(tag) {
			return false
		}
	case PatternDigest:
		if dgst != r.digest {
			return false
		}
	}
	if r.host != nil {
		host, rest, ok := strings.Cut(repo, "/")
		return ok && r.host.match(host) && r.repo.match(rest)
	}
	return r.repo.match(repo)
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
