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

// Package allowlist is the image garbage collection allowlist of the ImageGCExclusion feature:
// the imageGCExclude patterns compiled into a Matcher, and the imageGCExcludeBudgetPercent
// arithmetic. It is a leaf package: kubelet config validation imports it without the image
// manager.
package allowlist

import (
	"fmt"
	"slices"
	"strings"
)

// ExcludeFieldName is the KubeletConfiguration field whose entries NewMatcher compiles; errors
// name it.
const ExcludeFieldName = "imageGCExclude"

// Matcher decides whether an image is on the allowlist. It is compiled once from the
// configuration into maps: references, repositories, image IDs and repository prefixes are keys,
// so its cost barely grows with the number of entries. A richer pattern language may add rules
// no map can look up (wildcards).
// It is immutable and safe for concurrent use.
type Matcher struct {
	// entries are the patterns as configured; the maps hold positions in it.
	entries []string
	// positions maps an entry to its position in entries.
	positions map[string]int
	tags      map[string]int // "repo:tag" -> position: that tag
	digests   map[string]int // "repo@sha256:hex" -> position: that repo digest
	repos     map[string]int // "repo" -> position: every tag and digest
	ids       map[string]int // "sha256:hex" -> position: the image ID or any repo digest
	// prefixes maps "host[/path]/" to the position of "host[/path]/*": every repository under it.
	prefixes map[string]int
	// wildcards matches what no map can: nil unless the patterns were parsed by a language
	// with more wildcards than ParsePattern's.
	wildcards wildcards
	counts    [PatternID + 1]int
}

// wildcards compiles and matches the patterns of a richer language than ParsePattern's, whose
// '*' a map cannot look up.
type wildcards interface {
	// add compiles the pattern at position pos; positions arrive in increasing order.
	add(pos int, p Pattern)
	// match returns the earliest position before limit whose pattern matches a reference's
	// parts, or noMatch.
	match(repo, tag, dgst string, limit int) int
}

// MatcherError lists every invalid entry found while compiling a Matcher.
type MatcherError struct {
	Errs []error
}

func (e *MatcherError) Error() string {
	msgs := make([]string, len(e.Errs))
	for i, err := range e.Errs {
		msgs[i] = err.Error()
	}
	return strings.Join(msgs, "; ")
}

// Unwrap lets errors.Is and errors.As look at each entry's error.
func (e *MatcherError) Unwrap() []error { return e.Errs }

// NewMatcher compiles imageGCExclude patterns, each parsed by ParsePattern. Every invalid entry
// is reported, each as `imageGCExclude[<index>] "<entry>": <reason>`. The list is a set: an
// entry that repeats another, or means the same after normalization, is an error.
func NewMatcher(patterns []string) (*Matcher, error) {
	return newMatcher(patterns, ParsePattern, nil)
}

// newMatcher compiles patterns, each parsed by parse; w, if not nil, takes the patterns with a
// '*' that is not a repository prefix's.
func newMatcher(patterns []string, parse func(string) (Pattern, error), w wildcards) (*Matcher, error) {
	m := &Matcher{
		entries:   slices.Clone(patterns),
		positions: make(map[string]int, len(patterns)),
		tags:      map[string]int{},
		digests:   map[string]int{},
		repos:     map[string]int{},
		ids:       map[string]int{},
		prefixes:  map[string]int{},
		wildcards: w,
	}
	var errs []error
	seen := map[string]int{}
	for i, entry := range patterns {
		p, err := parse(entry)
		if err == nil {
			err = duplicate(seen, p.String(), patterns, ExcludeFieldName, i)
		}
		if err == nil {
			err = m.add(i, p)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s[%d] %q: %w", ExcludeFieldName, i, quoteBounded(entry), err))
			continue
		}
		m.positions[entry] = i
	}
	if len(errs) > 0 {
		return nil, &MatcherError{Errs: errs}
	}
	return m, nil
}

// duplicate records the canonical form of entries[i] and reports an earlier entry with the same.
func duplicate(seen map[string]int, canonical string, entries []string, field string, i int) error {
	if j, ok := seen[canonical]; ok {
		if entries[j] == entries[i] {
			return fmt.Errorf("duplicate of %s[%d]; remove one", field, j)
		}
		return fmt.Errorf("means the same as %s[%d] %q (%s); remove one", field, j, quoteBounded(entries[j]), canonical)
	}
	seen[canonical] = i
	return nil
}

// quoteBounded shortens an entry for an error message, so that a huge entry is not echoed whole.
func quoteBounded(entry string) string {
	const maxQuoted = 256
	if len(entry) <= maxQuoted {
		return entry
	}
	return entry[:maxQuoted] + fmt.Sprintf("...(%d more bytes)", len(entry)-maxQuoted)
}

// add compiles the pattern at position pos.
func (m *Matcher) add(pos int, p Pattern) error {
	if prefix, ok := strings.CutSuffix(p.Repository, "/*"); ok && p.Kind == PatternRepository && !strings.Contains(prefix, "*") {
		m.prefixes[prefix+"/"] = pos
		m.counts[p.Kind]++
		return nil
	}
	if strings.Contains(p.Repository, "*") || strings.Contains(p.Tag, "*") {
		if m.wildcards == nil {
			// A parser that takes more than ParsePattern without a matcher for it: a bug.
			return fmt.Errorf("internal error: pattern %q has a '*' only a wildcard matcher can match, and the matcher has none", p)
		}
		m.wildcards.add(pos, p)
		m.counts[p.Kind]++
		return nil
	}
	switch p.Kind {
	case PatternID:
		m.ids[p.Digest] = pos
	case PatternRepository:
		m.repos[p.Repository] = pos
	case PatternDigest:
		m.digests[p.String()] = pos
	case PatternTag:
		m.tags[p.String()] = pos
	}
	m.counts[p.Kind]++
	return nil
}

// Empty reports whether the matcher has no entries at all.
func (m *Matcher) Empty() bool {
	// A Matcher exists only when every entry compiled.
	return m == nil || len(m.entries) == 0
}

// Summary counts the entries of each kind, as key/value pairs for a structured log line.
func (m *Matcher) Summary() []any {
	if m == nil {
		return nil
	}
	kv := make([]any, 0, 2*len(m.counts))
	for kind, n := range m.counts {
		kv = append(kv, PatternKind(kind).String()+"Patterns", n)
	}
	return kv
}

// Position returns the position of entry in the configured list, or -1 if it is not one of the
// matcher's entries. Earlier entries rank first when the budget or eviction must choose among
// the images the allowlist keeps.
func (m *Matcher) Position(entry string) int {
	if m == nil {
		return -1
	}
	if pos, ok := m.positions[entry]; ok {
		return pos
	}
	return -1
}

// MatchReferences returns the earliest entry, in the configured order, that matches the image
// by its ID, a repo tag or a repo digest, or "" if none does. The names may be in the short form
// some runtimes report ("nginx:1.27"); they are normalized before comparison.
func (m *Matcher) MatchReferences(imageID string, repoTags, repoDigests []string) string {
	return m.Entry(m.MatchPosition(imageID, repoTags, repoDigests))
}

// Entry returns the entry at a position, "" for a position that is not one (-1).
func (m *Matcher) Entry(pos int) string {
	if m == nil || pos < 0 || pos >= len(m.entries) {
		return ""
	}
	return m.entries[pos]
}

// MatchPosition is MatchReferences, returning the entry's position (see Position), or -1 if no
// entry matches.
func (m *Matcher) MatchPosition(imageID string, repoTags, repoDigests []string) int {
	if m == nil {
		return -1
	}
	best := noMatch
	if len(m.ids) > 0 && imageID != "" {
		if !strings.HasPrefix(imageID, idPrefix) {
			// CRI-O reports image IDs without the algorithm.
			imageID = idPrefix + imageID
		}
		if pos, ok := m.ids[imageID]; ok {
			best = pos
		}
	}
	for _, ref := range repoTags {
		best = min(best, m.matchReference(ref, best))
	}
	for _, ref := range repoDigests {
		best = min(best, m.matchReference(ref, best))
	}
	if best == noMatch {
		return -1
	}
	return best
}

// noMatch is a position after every entry.
const noMatch = int(^uint(0) >> 1)

// matchReference returns the earliest position before limit whose entry matches one repo tag or
// repo digest by its parts, or noMatch. An entry at limit or later cannot improve the match.
func (m *Matcher) matchReference(ref string, limit int) int {
	ref, ok := NormalizeReference(ref)
	if !ok {
		return noMatch
	}
	best := noMatch
	consider := func(pos int, ok bool) {
		if ok && pos < best {
			best = pos
		}
	}
	repo, tag, dgst := splitReference(ref)
	if dgst != "" {
		pos, ok := m.digests[ref]
		consider(pos, ok)
		pos, ok = m.ids[dgst]
		consider(pos, ok)
	} else if tag != "" {
		pos, ok := m.tags[ref]
		consider(pos, ok)
	}
	pos, ok := m.repos[repo]
	consider(pos, ok)
	if len(m.prefixes) > 0 {
		// Each of the repository's '/'-prefixes: "ghcr.io/", "ghcr.io/acme/", ...
		for i := strings.IndexByte(repo, '/'); i >= 0; {
			pos, ok := m.prefixes[repo[:i+1]]
			consider(pos, ok)
			next := strings.IndexByte(repo[i+1:], '/')
			if next < 0 {
				break
			}
			i += next + 1
		}
	}
	if m.wildcards != nil {
		best = min(best, m.wildcards.match(repo, tag, dgst, min(best, limit)))
	}
	return best
}
