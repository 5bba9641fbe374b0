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
	"math/rand"
	"regexp"
	"strings"
	"testing"

	"github.com/distribution/reference"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseExtendedPattern(t *testing.T) {
	checkParse(t, ParseExtendedPattern, []parseCase{
		// What ParsePattern takes is parsed by it.
		{in: "nginx:1.27", want: Pattern{Kind: PatternTag, Repository: "docker.io/library/nginx", Tag: "1.27"}, pullable: true},
		{in: "ghcr.io/acme/*", want: Pattern{Kind: PatternRepository, Repository: "ghcr.io/acme/*"}},
		{in: "docker.io/*", want: Pattern{Kind: PatternRepository, Repository: "docker.io/*"}},
		{in: "ghcr.io/acme/**", want: Pattern{Kind: PatternRepository, Repository: "ghcr.io/acme/*"}},
		{in: "ghcr.io/*/app", want: Pattern{Kind: PatternRepository, Repository: "ghcr.io/*/app"}},
		{in: "nginx:1.*", want: Pattern{Kind: PatternTag, Repository: "docker.io/library/nginx", Tag: "1.*"}},
		{in: "acme/*-agent", want: Pattern{Kind: PatternRepository, Repository: "docker.io/acme/*-agent"}},
		{in: "acme*/app", want: Pattern{Kind: PatternRepository, Repository: "docker.io/acme*/app"}},
		{in: "*/pause:3.10", want: Pattern{Kind: PatternTag, Repository: "*/pause", Tag: "3.10"}},
		{in: "*.example.com/app:*", want: Pattern{Kind: PatternTag, Repository: "*.example.com/app", Tag: "*"}},
		{in: "registry-*.example.com/app", want: Pattern{Kind: PatternRepository, Repository: "registry-*.example.com/app"}},
		{in: "ghcr.io/*/app@" + testDigest, want: Pattern{Kind: PatternDigest, Repository: "ghcr.io/*/app", Digest: testDigest}},
		{in: "nginx*", want: Pattern{Kind: PatternRepository, Repository: "docker.io/library/nginx*"}},
		{in: "index.docker.io/*-agent:*", want: Pattern{Kind: PatternTag, Repository: "docker.io/*-agent", Tag: "*"}},
		{in: "docker.io/nginx:1.*", want: Pattern{Kind: PatternTag, Repository: "docker.io/library/nginx", Tag: "1.*"}},
		{in: "*.example.com/app", want: Pattern{Kind: PatternRepository, Repository: "*.example.com/app"}},
		{in: "*.cache.example.com:5000/app", want: Pattern{Kind: PatternRepository, Repository: "*.cache.example.com:5000/app"}},
		{in: "*/acme/*", want: Pattern{Kind: PatternRepository, Repository: "*/acme/*"}},
		// A first component with '*' and no '.' or ':' is a Docker Hub namespace, not "any
		// registry": only '*' alone is that.
		{in: "*io/*", want: Pattern{Kind: PatternRepository, Repository: "docker.io/*io/*"}},

		{in: "*", wantErr: "imageGCHighThresholdPercent: 100"},
		{in: "**", wantErr: "no literal name"},
		{in: "*/*", wantErr: "no literal name"},
		{in: "*:*", wantErr: "no literal name"},
		{in: "*.*/*", wantErr: "no literal name"},
		{in: "*-*/*_*:latest", wantErr: "no literal name"},
		{in: "*.example.com", wantErr: "a registry host alone"},
		{in: "ghcr.io/acme/x0wildcard0x*", wantErr: "must not contain"},
		{in: "*/Acme", wantErr: "repository name must be lowercase"},
		{in: "*.example.com/*", want: Pattern{Kind: PatternRepository, Repository: "*.example.com/*"}},
		{in: "*/*a*", wantErr: `its repository "*/*a*" has no component without '*'`},
		{in: "*/*-agent:1", wantErr: "has no component without '*'"},
		{in: "*.io/*", wantErr: `a '*' in the registry host "*.io" must leave at least 2 labels literal`},
		{in: "*.io/acme/app", wantErr: "must leave at least 2 labels literal"},
		{in: "registry-*.io/app", wantErr: "must leave at least 2 labels literal"},
		{in: "ghcr.io*/app", wantErr: "must leave at least 2 labels literal"},
		{in: "*:5000/app", wantErr: "must leave at least 2 labels literal"},
		{in: "*.*.com/app", wantErr: "must leave at least 2 labels literal"},
		{in: "nginx:", wantErr: "empty tag after ':'"},
		{in: "nginx@sha256:*", wantErr: "'*' is not allowed in a digest"},
		{in: "ghcr.io/*/Acme", wantErr: "repository name must be lowercase"},
	})
}

func TestMatchReferencesWildcards(t *testing.T) {
	checkMatches(t, compilePatterns, []matchCase{
		{
			// A wildcard in the middle of the registry host: every tag and digest.
			entry: "registry-*.example.com/app",
			match: []image{tagged("registry-eu.example.com/app:1.0"), digested("registry-us.example.com/app@" + testDigest)},
			not:   []image{tagged("registry-eu.example.com/app2:1.0"), tagged("registry.example.com/app:1.0")},
		},
		{
			entry: "ghcr.io/*/app",
			match: []image{tagged("ghcr.io/acme/app:v1"), tagged("ghcr.io/acme/team/app:v1"), digested("ghcr.io/acme/app@" + testDigest)},
			not:   []image{tagged("ghcr.io/acme/app2:v1"), tagged("ghcr.io/app:v1"), tagged("quay.io/acme/app:v1")},
		},
		{
			entry: "acme/*-agent",
			match: []image{tagged("docker.io/acme/log-agent:2"), digested("docker.io/acme/metrics-agent@" + testDigest)},
			not:   []image{tagged("docker.io/acme/log-agent-x:2"), tagged("ghcr.io/acme/log-agent:2")},
		},
		{
			// A tag glob matches tags only: never a digest-only image of the same repository.
			entry: "ghcr.io/acme/app:1.*",
			match: []image{tagged("ghcr.io/acme/app:1.2"), tagged("ghcr.io/acme/app:1.2-alpine")},
			not:   []image{tagged("ghcr.io/acme/app:2.0"), tagged("ghcr.io/acme/app:v1.2"), digested("ghcr.io/acme/app@" + testDigest)},
		},
		{
			entry: "*/pause:*",
			match: []image{tagged("registry.k8s.io/pause:3.10"), tagged("docker.io/library/pause:1"), tagged("localhost:5000/e2e/pause:1")},
			not:   []image{digested("registry.k8s.io/pause@" + testDigest), tagged("registry.k8s.io/pause2:3.10")},
		},
		{
			// The '*' of a repository never reaches into the tag.
			entry: "docker.io/library/nginx*",
			match: []image{tagged("nginx:1.27"), tagged("nginx-exporter:1")},
			not:   []image{tagged("docker.io/acme/nginx:1")},
		},
		{
			entry: "ghcr.io/*/app@" + testDigest,
			match: []image{digested("ghcr.io/x/app@" + testDigest)},
			not:   []image{digested("ghcr.io/x/app@" + testDigest2), tagged("ghcr.io/x/app:1")},
		},
		{
			// A '*' in a registry host never spans a '/'.
			entry: "*.example.com/app",
			match: []image{tagged("registry.example.com/app:1"), tagged("eu.registry.example.com/app:1")},
			not:   []image{tagged("example.com/app:1"), tagged("registry.example.org/app:1"), tagged("evil.io/x.example.com/app:1")},
		},
		{
			entry: "registry-*.example.com/app",
			match: []image{tagged("registry-eu.example.com/app:1")},
			not:   []image{tagged("registry-evil.io/a.example.com/app:1")},
		},
		{
			entry: "*io/*",
			match: []image{tagged("docker.io/acmeio/app:1")},
			not:   []image{tagged("ghcr.io/acme/app:1"), tagged("quay.io/acme/app:1"), tagged("nginx:1")},
		},
	})
}

// The maps, the prefixes and the glob rules each find a match; the earliest entry wins across
// them, and a list of wildcards alone is not empty.
func TestMatchReferencesEarliestEntryWildcards(t *testing.T) {
	for _, entries := range [][]string{
		{"*/app", "ghcr.io/*", "ghcr.io/acme/app:1"},
		{"ghcr.io/*", "*/app", "ghcr.io/acme/app:1"},
		{"ghcr.io/acme/app:1", "*/app", "ghcr.io/*"},
	} {
		m, err := compilePatterns(entries)
		require.NoError(t, err)
		assert.Equal(t, entries[0], m.MatchReferences(testDigest2, []string{"ghcr.io/acme/app:1"}, nil), "entries %q", entries)
	}
	m, err := compilePatterns([]string{"*/pause:*"})
	require.NoError(t, err)
	assert.False(t, m.Empty())
	// A parser of the extended language with no wildcard matcher is a programming error, reported
	// as one, not as the user's.
	_, err = newMatcher([]string{"*/pause:*"}, ParseExtendedPattern, nil)
	require.ErrorContains(t, err, "internal error")
}

// TestMatchPropertyWildcards is TestMatchProperty with '*' anywhere in the repository and in tags.
func TestMatchPropertyWildcards(t *testing.T) {
	// star replaces a random run of s with '*', keeping at least one literal character.
	star := func(rng *rand.Rand, s string) string {
		i := rng.Intn(len(s))
		j := i + rng.Intn(len(s)-i+1)
		if out := s[:i] + "*" + s[j:]; strings.Trim(out, catchAllCharacters) != "" {
			return out
		}
		return s
	}
	starRepo := func(rng *rand.Rand, repo string) (string, bool) { return star(rng, repo), true }
	matchProperty(t, starRepo, star, ParseExtendedPattern, compilePatterns, func(repo string) *regexp.Regexp { return repoRegexp(oracleNormalize(repo)) })
}

// FuzzParseExtendedPattern is FuzzParsePattern for the full pattern language.
func FuzzParseExtendedPattern(f *testing.F) {
	for _, seed := range []string{
		"ghcr.io/acme/*", "*/pause:*", "ghcr.io/*/app", "acme/*-agent", "registry-*.example.com/app:v*",
		"*:latest", "nginx*", "*.io/*", "*.example.com/app", "ghcr.io/*/app@" + testDigest, "docker.io/*-x",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, entry string) {
		checkParsedPattern(t, entry, ParseExtendedPattern, compilePatterns)
	})
}

func TestCompileTakesWildcards(t *testing.T) {
	a, err := Compile([]string{"ghcr.io/acme/app", "*/pause:*"}, nil)
	require.NoError(t, err)
	assert.Equal(t, "*/pause:*", a.MatchReferences("", []string{"registry.k8s.io/pause:3.10"}, nil))
	assert.Equal(t, 1, a.Position("*/pause:*"))
	_, err = NewMatcher([]string{"ghcr.io/acme/app", "*/pause:*"})
	require.ErrorIs(t, err, errWildcard)
}

// repoRegexp is globRegexp for a repository pattern, except that a '*' in a registry host (a
// first component with '*' that is not '*' alone) matches within the host only.
func repoRegexp(pattern string) *regexp.Regexp {
	host, rest, ok := strings.Cut(pattern, "/")
	if !ok || host == "*" || !strings.Contains(host, "*") {
		return globRegexp(pattern)
	}
	h := globRegexp(host).String()
	r := globRegexp(rest).String()
	return regexp.MustCompile(strings.ReplaceAll(strings.TrimSuffix(h, "$"), ".*", "[^/]*") + "/" + strings.TrimPrefix(r, "^"))
}

// oracleNormalize normalizes a repository pattern with distribution/reference, '*' standing in
// as a valid name character, except where the documented rules keep it as written: a leading
// '*', and a single '*' component after an explicit docker.io/.
func oracleNormalize(repo string) string {
	const placeholder = "starstar"
	if strings.HasPrefix(repo, "*/") {
		return repo
	}
	if rest, ok := strings.CutPrefix(repo, "docker.io/"); ok && strings.Contains(rest, "*") && !strings.Contains(rest, "/") {
		return repo
	}
	named, err := reference.ParseNormalizedNamed(strings.ReplaceAll(repo, "*", placeholder))
	if err != nil {
		return "\x00invalid"
	}
	return strings.ReplaceAll(named.Name(), placeholder, "*")
}
