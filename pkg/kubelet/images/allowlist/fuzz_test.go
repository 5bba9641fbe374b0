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
	"strings"
	"testing"

	"github.com/distribution/reference"
)

// FuzzNormalizeReference is differential: wherever distribution/reference parses a reference,
// NormalizeReference gives the same normalized string.
func FuzzNormalizeReference(f *testing.F) {
	for _, seed := range []string{
		"nginx", "nginx:1.27", "acme/app:1", "docker.io/nginx", "index.docker.io/acme/app", "localhost:5000/app:1",
		"localhost/app", "Registry.example.com/app", "quay.io/acme/app@" + testDigest, "a/b/c/d:e", "nginx:1.27@" + testDigest,
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, ref string) {
		named, err := reference.ParseNormalizedNamed(ref)
		if err != nil {
			return
		}
		got, ok := NormalizeReference(ref)
		if !ok {
			t.Fatalf("NormalizeReference(%q) refused what distribution/reference parses as %q", ref, named.String())
		}
		if want := named.String(); got != want {
			t.Fatalf("NormalizeReference(%q) = %q; distribution/reference says %q", ref, got, want)
		}
	})
}

// FuzzParsePattern: no input panics, an accepted entry compiles, and it matches an image that
// carries the reference it describes (each '*' filled in), while a repository entry does not
// match a longer repository name.
func FuzzParsePattern(f *testing.F) {
	for _, seed := range []string{
		"registry.k8s.io/pause:3.10", "nginx", "nginx:1.27", "ghcr.io/acme/*", "ghcr.io/*", "docker.io/*",
		"quay.io/acme/app@" + testDigest, testDigest, "localhost:5000/app", "localhost:5000/*", "acme/*",
		"ghcr.io/*/app", "*:latest", "nginx*", "a/b/c/d:e", "ghcr.io/Acme/x", "", "ghcr.io",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, entry string) {
		checkParsedPattern(t, entry, ParsePattern, NewMatcher)
	})
}

// checkParsedPattern is the body of the pattern fuzz tests.
func checkParsedPattern(t *testing.T, entry string, parse func(string) (Pattern, error), compile func([]string) (*Matcher, error)) {
	p, err := parse(entry)
	if err != nil {
		if err.Error() == "" {
			t.Fatalf("parse(%q): empty error text", entry)
		}
		return
	}
	m, err := compile([]string{entry})
	if err != nil {
		t.Fatalf("parse(%q) accepted it but the matcher refused it: %v", entry, err)
	}
	repo := strings.ReplaceAll(p.Repository, "*", "x")
	var id string
	var tags, digests []string
	switch p.Kind {
	case PatternRepository:
		tags = []string{repo + ":latest"}
		digests = []string{repo + "@" + testDigest}
	case PatternTag:
		tags = []string{repo + ":" + strings.ReplaceAll(p.Tag, "*", "x")}
	case PatternDigest:
		digests = []string{repo + "@" + p.Digest}
	case PatternID:
		id = p.Digest
	}
	if got := m.MatchReferences(id, tags, digests); got != entry {
		t.Fatalf("entry %q (%+v) does not match its own image id=%q tags=%q digests=%q: got %q", entry, p, id, tags, digests, got)
	}
	if p.Kind == PatternRepository && !strings.HasSuffix(p.Repository, "*") {
		if got := m.MatchReferences("", []string{repo + "-other:latest"}, nil); got != "" {
			t.Fatalf("repository entry %q matches %q", entry, repo+"-other:latest")
		}
	}
}
