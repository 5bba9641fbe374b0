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
	"fmt"
	"math/rand"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/distribution/reference"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// image is what a runtime reports of an image: its ID, repo tags and repo digests.
type image struct {
	id      string
	tags    []string
	digests []string
}

func tagged(tags ...string) image      { return image{id: testDigest2, tags: tags} }
func digested(digests ...string) image { return image{id: testDigest2, digests: digests} }

// matchCase is an entry, images it keeps and images it does not.
type matchCase struct {
	entry      string
	match, not []image
}

// checkMatches compiles each case's entry alone and checks what it keeps.
func checkMatches(t *testing.T, compile func([]string) (*Matcher, error), cases []matchCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.entry, func(t *testing.T) {
			m, err := compile([]string{tc.entry})
			require.NoError(t, err)
			for _, img := range tc.match {
				assert.Equal(t, tc.entry, m.MatchReferences(img.id, img.tags, img.digests), "image %+v", img)
			}
			for _, img := range tc.not {
				assert.Empty(t, m.MatchReferences(img.id, img.tags, img.digests), "image %+v", img)
			}
		})
	}
}

func TestMatchReferences(t *testing.T) {
	checkMatches(t, NewMatcher, []matchCase{
		{
			entry: "registry.k8s.io/pause:3.10",
			match: []image{tagged("registry.k8s.io/pause:3.10")},
			not:   []image{tagged("registry.k8s.io/pause:3.9"), digested("registry.k8s.io/pause@" + testDigest)},
		},
		{
			entry: "nginx",
			match: []image{tagged("nginx:1.27"), tagged("docker.io/library/nginx:1.26"), digested("docker.io/library/nginx@" + testDigest)},
			not:   []image{tagged("docker.io/library/nginx-exporter:1"), tagged("docker.io/acme/nginx:1"), tagged("ghcr.io/nginx:1")},
		},
		{
			entry: "ghcr.io/acme/*",
			match: []image{tagged("ghcr.io/acme/app:v1"), tagged("ghcr.io/acme/team/app:v1"), digested("ghcr.io/acme/app@" + testDigest)},
			not:   []image{tagged("ghcr.io/acmecorp/app:v1")},
		},
		{
			entry: "docker.io/*",
			match: []image{tagged("nginx:1"), tagged("acme/app:1")},
			not:   []image{tagged("ghcr.io/acme/app:1")},
		},
		{
			entry: "localhost:5000/*",
			match: []image{tagged("localhost:5000/app:1"), digested("localhost:5000/a/b@" + testDigest)},
			not:   []image{tagged("localhost:5001/app:1"), tagged("localhost/app:1")},
		},
		{
			entry: "quay.io/acme/app@" + testDigest,
			match: []image{digested("quay.io/acme/app@" + testDigest)},
			not:   []image{digested("quay.io/acme/other@" + testDigest), tagged("quay.io/acme/app:1")},
		},
		{
			// An image ID, or a repo digest with that hex as crictl images --digests shows it.
			entry: testDigest,
			match: []image{{id: testDigest}, {id: strings.TrimPrefix(testDigest, "sha256:")}, digested("quay.io/acme/app@" + testDigest)},
			not:   []image{{id: testDigest2}, tagged("quay.io/acme/app:1")},
		},
		{
			entry: "docker.io/acme/*",
			match: []image{tagged("acme/app:1"), tagged("docker.io/acme/team/app:1")},
			not:   []image{tagged("nginx:1"), tagged("docker.io/acmecorp/app:1")},
		},
	})
}

func TestMatcherSummary(t *testing.T) {
	var none *Matcher
	assert.True(t, none.Empty())
	assert.Nil(t, none.Summary())
	empty, err := NewMatcher(nil)
	require.NoError(t, err)
	assert.True(t, empty.Empty())
	m, err := NewMatcher([]string{"nginx", "ghcr.io/acme/*", "nginx:1.27", "ghcr.io/acme/app:1.2", "quay.io/acme/app@" + testDigest, testDigest2})
	require.NoError(t, err)
	assert.False(t, m.Empty())
	// The start-up log line of the kubelet.
	assert.Equal(t, []any{"repositoryPatterns", 2, "tagPatterns", 2, "digestPatterns", 1, "idPatterns", 1}, m.Summary())
}

func TestMatcherErrorUnwrap(t *testing.T) {
	_, err := NewMatcher([]string{"", "ghcr.io"})
	var matcherErr *MatcherError
	require.ErrorAs(t, err, &matcherErr)
	assert.Len(t, matcherErr.Unwrap(), 2)
}

// globRegexp is the property test's oracle for '*': a regular expression, not the matcher's code.
func globRegexp(pattern string) *regexp.Regexp {
	parts := strings.Split(pattern, "*")
	for i := range parts {
		parts[i] = regexp.QuoteMeta(parts[i])
	}
	return regexp.MustCompile("^" + strings.Join(parts, ".*") + "$")
}

// prefixRegexp is the oracle for a repository pattern of ParsePattern: the pattern normalized by
// distribution/reference, '*' standing in as a name character, except "docker.io/*", which
// keeps every Docker Hub repository, not only the official ones.
func prefixRegexp(repo string) *regexp.Regexp {
	const placeholder = "starstar"
	if repo == "docker.io/*" {
		return globRegexp(repo)
	}
	named, err := reference.ParseNormalizedNamed(strings.ReplaceAll(repo, "*", placeholder))
	if err != nil {
		return regexp.MustCompile(`^\x00invalid$`)
	}
	return globRegexp(strings.ReplaceAll(named.Name(), placeholder, "*"))
}

// TestMatchProperty compares the matcher with an oracle on random allowlists and images: names
// with tags, digests and digest-only images, exact patterns and repository prefixes. Set
// ALLOWLIST_PROPERTY_SEED to replay a seed.
func TestMatchProperty(t *testing.T) {
	// prefix cuts a repository after one of its '/'s and appends '*': "ghcr.io/acme/*".
	prefix := func(rng *rand.Rand, repo string) (string, bool) {
		var cuts []int
		for i := range repo {
			if repo[i] == '/' {
				cuts = append(cuts, i+1)
			}
		}
		return repo[:cuts[rng.Intn(len(cuts))]] + "*", false
	}
	matchProperty(t, prefix, nil, ParsePattern, NewMatcher, prefixRegexp)
}

// matchProperty runs the property test. starRepo puts '*' into a repository and says whether
// the result may still carry a tag or a digest; starTag, if not nil, puts '*' into a tag;
// repoOracle says which repositories a repository pattern, as written, matches.
func matchProperty(t *testing.T, starRepo func(rng *rand.Rand, repo string) (string, bool), starTag func(rng *rand.Rand, tag string) string, parse func(string) (Pattern, error), compile func([]string) (*Matcher, error), repoOracle func(string) *regexp.Regexp) {
	seed := int64(20261129)
	if s := os.Getenv("ALLOWLIST_PROPERTY_SEED"); s != "" {
		var err error
		seed, err = strconv.ParseInt(s, 10, 64)
		require.NoError(t, err)
	}
	t.Logf("seed %d (ALLOWLIST_PROPERTY_SEED=%d replays it)", seed, seed)
	rng := rand.New(rand.NewSource(seed))
	hosts := []string{"docker.io", "ghcr.io", "registry-eu.example.com", "localhost:5000"}
	paths := []string{"library/nginx", "acme/app", "acme/log-agent", "acme/team/app", "edge/pause"}
	tags := []string{"1", "1.2", "1.2-alpine", "latest", "v2"}
	digests := []string{testDigest, testDigest2}
	pick := func(s []string) string { return s[rng.Intn(len(s))] }
	type oracle struct {
		entry     string
		repo, tag *regexp.Regexp
		digest    string
		kind      PatternKind
	}
	for c := 0; c < 5000; c++ {
		var entries []string
		var oracles []oracle
		seen := map[string]bool{}
		for n := 1 + rng.Intn(4); n > 0; n-- {
			repo := pick(hosts) + "/" + pick(paths)
			kinds := 3
			if rng.Intn(2) == 0 {
				var qualified bool
				repo, qualified = starRepo(rng, repo)
				if !qualified {
					kinds = 1
				}
			}
			o := oracle{repo: repoOracle(repo)}
			entry := repo
			switch rng.Intn(kinds) {
			case 0:
				o.kind = PatternRepository
			case 1:
				tag := pick(tags)
				if starTag != nil && rng.Intn(2) == 0 {
					tag = starTag(rng, tag)
				}
				o.kind, o.tag, entry = PatternTag, globRegexp(tag), repo+":"+tag
			case 2:
				o.kind, o.digest = PatternDigest, pick(digests)
				entry = repo + "@" + o.digest
			}
			p, err := parse(entry)
			if err != nil || seen[p.String()] {
				continue // e.g. a '*' that swallowed the registry's '/'
			}
			seen[p.String()] = true
			o.entry = entry
			entries = append(entries, entry)
			oracles = append(oracles, o)
		}
		m, err := compile(entries)
		require.NoError(t, err, "case %d: %q", c, entries)
		for i := 0; i < 8; i++ {
			img := image{id: fmt.Sprintf("sha256:%064x", c)}
			for n := rng.Intn(3); n > 0; n-- {
				if rng.Intn(2) == 0 {
					img.tags = append(img.tags, pick(hosts)+"/"+pick(paths)+":"+pick(tags))
				} else {
					img.digests = append(img.digests, pick(hosts)+"/"+pick(paths)+"@"+pick(digests))
				}
			}
			// The oracle's answer is the earliest entry that matches, as the budget ranks by it.
			want := ""
			for _, o := range oracles {
				matched := false
				for _, ref := range img.tags {
					repo, tag, _ := strings.Cut(ref, ":")
					if strings.HasPrefix(ref, "localhost:") {
						repo, tag = ref[:strings.LastIndex(ref, ":")], ref[strings.LastIndex(ref, ":")+1:]
					}
					matched = matched || (o.repo.MatchString(repo) && (o.kind == PatternRepository || (o.kind == PatternTag && o.tag.MatchString(tag))))
				}
				for _, ref := range img.digests {
					repo, dgst, _ := strings.Cut(ref, "@")
					matched = matched || (o.repo.MatchString(repo) && (o.kind == PatternRepository || (o.kind == PatternDigest && dgst == o.digest)))
				}
				if matched {
					want = o.entry
					break
				}
			}
			if got := m.MatchReferences(img.id, img.tags, img.digests); got != want {
				t.Fatalf("case %d (seed %d): entries %q, image tags %q digests %q: matched %q, oracle says %q", c, seed, entries, img.tags, img.digests, got, want)
			}
		}
	}
}

// The budget and eviction rank kept images by the earliest entry that keeps them, so
// MatchReferences must return that entry whatever kind of entry or name matched first.
func TestMatchReferencesEarliestEntry(t *testing.T) {
	for _, tc := range []struct {
		name    string
		entries []string
		img     image
		want    string
	}{
		{
			name:    "a repository before an exact tag",
			entries: []string{"ghcr.io/acme/app", "ghcr.io/acme/app:1.0"},
			img:     tagged("ghcr.io/acme/app:1.0"),
			want:    "ghcr.io/acme/app",
		},
		{
			name:    "an exact tag before a repository",
			entries: []string{"ghcr.io/acme/app:1.0", "ghcr.io/acme/app"},
			img:     tagged("ghcr.io/acme/app:1.0"),
			want:    "ghcr.io/acme/app:1.0",
		},
		{
			name:    "a prefix before an image ID",
			entries: []string{"ghcr.io/acme/*", testDigest},
			img:     image{id: testDigest, tags: []string{"ghcr.io/acme/app:1.0"}},
			want:    "ghcr.io/acme/*",
		},
		{
			name:    "a repo digest before a tag of the same image",
			entries: []string{"quay.io/acme/x:2", "quay.io/acme/app@" + testDigest, "quay.io/acme/app:1"},
			img:     image{tags: []string{"quay.io/acme/app:1"}, digests: []string{"quay.io/acme/app@" + testDigest}},
			want:    "quay.io/acme/app@" + testDigest,
		},
		{
			name:    "the shorter of two prefixes when it comes first",
			entries: []string{"ghcr.io/*", "ghcr.io/acme/*"},
			img:     tagged("ghcr.io/acme/app:1"),
			want:    "ghcr.io/*",
		},
		{
			name:    "the longer of two prefixes when it comes first",
			entries: []string{"ghcr.io/acme/*", "ghcr.io/*"},
			img:     tagged("ghcr.io/acme/app:1"),
			want:    "ghcr.io/acme/*",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := NewMatcher(tc.entries)
			require.NoError(t, err)
			assert.Equal(t, tc.want, m.MatchReferences(tc.img.id, tc.img.tags, tc.img.digests))
			assert.Equal(t, m.Position(tc.want), m.MatchPosition(tc.img.id, tc.img.tags, tc.img.digests))
			for i, entry := range tc.entries {
				assert.Equal(t, i, m.Position(entry))
				assert.Equal(t, entry, m.Entry(i))
			}
			assert.Equal(t, -1, m.Position("not/an/entry"))
			assert.Empty(t, m.Entry(-1))
			assert.Empty(t, m.Entry(len(tc.entries)))
		})
	}
}
