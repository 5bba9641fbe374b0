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
	"strings"
	"testing"
)

// FuzzParseImagePattern: no input panics, and every accepted pattern matches an image that
// carries the reference it describes (for a wildcard: with each '*' filled in).
func FuzzParseImagePattern(f *testing.F) {
	for _, seed := range []string{
		"registry.k8s.io/pause:3.10", "nginx", "nginx:1.27", "ghcr.io/acme/*", "*/pause:*",
		"quay.io/acme/app@" + testDigest, testDigest, "localhost:5000/app", "docker.io/*",
		"registry-*.example.com/app:v*", "*:latest", "nginx*", "a/b/c/d:e", "ghcr.io/Acme/x", "",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, entry string) {
		pattern, err := ParseImagePattern(entry)
		if err != nil {
			if err.Error() == "" {
				t.Fatalf("ParseImagePattern(%q): empty error text", entry)
			}
			return
		}
		matcher, err := NewImageMatcher([]string{entry}, nil)
		if err != nil {
			t.Fatalf("ParseImagePattern(%q) accepted it but NewImageMatcher rejected it: %v", entry, err)
		}
		var id string
		var tags, digests []string
		switch pattern.Kind {
		case ImagePatternTag:
			tags = []string{pattern.Value}
		case ImagePatternDigest:
			digests = []string{pattern.Value}
		case ImagePatternRepository:
			tags = []string{pattern.Value + ":latest"}
		case ImagePatternID:
			id = idPrefix + pattern.Value
		case ImagePatternWildcard:
			tags = []string{strings.ReplaceAll(pattern.Value, "*", "x")}
		}
		if got := matcher.MatchReferences(id, tags, digests); got != entry {
			t.Fatalf("pattern %q (%s %q) does not match its own image id=%q tags=%q digests=%q: got %q",
				entry, pattern.Kind, pattern.Value, id, tags, digests, got)
		}
		if pattern.Kind == ImagePatternRepository {
			// A bare repository must not match a longer repository name.
			if got := matcher.MatchReferences("", []string{pattern.Value + "-other:latest"}, nil); got != "" {
				t.Fatalf("repository pattern %q matches %q", entry, pattern.Value+"-other:latest")
			}
		}
	})
}

// FuzzParseImageSelector: no input panics, and every accepted selector matches some label set.
func FuzzParseImageSelector(f *testing.F) {
	for _, seed := range []string{
		"cache.example.com/keep=true", "tier in (edge,critical),!deprecated", "a!=b", "a", "!a",
		"a notin (x,y)", "a>1,a<3", "a=1,a=2", "", "a in (", "x==y,z",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, entry string) {
		selector, err := ParseImageSelector(entry)
		if err != nil {
			return
		}
		set, ok := satisfyingLabels(selector)
		if !ok {
			t.Fatalf("selector %q was accepted but selects nothing", entry)
		}
		matcher, err := NewImageMatcher(nil, []string{entry})
		if err != nil {
			t.Fatalf("ParseImageSelector(%q) accepted it but NewImageMatcher rejected it: %v", entry, err)
		}
		if got := matcher.MatchLabels(set); got != entry {
			t.Fatalf("selector %q does not match the labels %v it was solved with", entry, set)
		}
	})
}
