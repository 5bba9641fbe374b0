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

const (
	testDigest  = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	testDigest2 = "sha256:fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210"
)

func TestNormalizeImageReference(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		ok       bool
	}{
		{"nginx:1.27", "docker.io/library/nginx:1.27", true},
		{"nginx", "docker.io/library/nginx", true},
		{"acme/app:1", "docker.io/acme/app:1", true},
		{"docker.io/nginx:1.27", "docker.io/library/nginx:1.27", true},
		{"index.docker.io/nginx:1.27", "docker.io/library/nginx:1.27", true},
		{"index.docker.io/acme/app:1", "docker.io/acme/app:1", true},
		{"docker.io/library/nginx:1.27", "docker.io/library/nginx:1.27", true},
		{"localhost:5000/app:1", "localhost:5000/app:1", true},
		{"localhost/app:1", "localhost/app:1", true},
		{"registry.k8s.io/pause:3.10", "registry.k8s.io/pause:3.10", true},
		{"nginx@" + testDigest, "docker.io/library/nginx@" + testDigest, true},
		{"quay.io/acme/app@" + testDigest, "quay.io/acme/app@" + testDigest, true},
		{"<none>:<none>", "", false},
		{"<none>@<none>", "", false},
		{"", "", false},
	} {
		got, ok := NormalizeImageReference(tc.in)
		if got != tc.want || ok != tc.ok {
			t.Errorf("NormalizeImageReference(%q) = %q, %v; want %q, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

func TestParseImagePattern(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    ImagePattern
		wantErr string
	}{
		{in: "registry.k8s.io/pause:3.10", want: ImagePattern{ImagePatternTag, "registry.k8s.io/pause:3.10", true}},
		{in: "nginx:1.27", want: ImagePattern{ImagePatternTag, "docker.io/library/nginx:1.27", true}},
		{in: "nginx", want: ImagePattern{ImagePatternRepository, "docker.io/library/nginx", false}},
		{in: "localhost:5000/app", want: ImagePattern{ImagePatternRepository, "localhost:5000/app", false}},
		{in: "localhost:5000/app:v2", want: ImagePattern{ImagePatternTag, "localhost:5000/app:v2", true}},
		{in: "quay.io/acme/app@" + testDigest, want: ImagePattern{ImagePatternDigest, "quay.io/acme/app@" + testDigest, true}},
		{in: "quay.io/acme/app:1@" + testDigest, want: ImagePattern{ImagePatternDigest, "quay.io/acme/app@" + testDigest, true}},
		{in: testDigest, want: ImagePattern{ImagePatternID, strings.TrimPrefix(testDigest, "sha256:"), false}},
		{in: "ghcr.io/acme/*", want: ImagePattern{ImagePatternWildcard, "ghcr.io/acme/*", false}},
		{in: "ghcr.io/acme/**", want: ImagePattern{ImagePatternWildcard, "ghcr.io/acme/*", false}},
		{in: "nginx:1.*", want: ImagePattern{ImagePatternWildcard, "docker.io/library/nginx:1.*", false}},
		{in: "acme/*-agent", want: ImagePattern{ImagePatternWildcard, "docker.io/acme/*-agent", false}},
		{in: "*/pause:3.10", want: ImagePattern{ImagePatternWildcard, "*/pause:3.10", false}},
		{in: "*.example.com/app:*", want: ImagePattern{ImagePatternWildcard, "*.example.com/app:*", false}},
		{in: "registry-*.example.com/app", want: ImagePattern{ImagePatternWildcard, "registry-*.example.com/app", false}},
		{in: "*:latest", want: ImagePattern{ImagePatternWildcard, "*:latest", false}},
		{in: "nginx*", want: ImagePattern{ImagePatternWildcard, "docker.io/library/nginx*", false}},
		{in: "docker.io/*", want: ImagePattern{ImagePatternWildcard, "docker.io/*", false}},
		{in: "index.docker.io/*-agent:*", want: ImagePattern{ImagePatternWildcard, "docker.io/*-agent:*", false}},
		{in: "docker.io/nginx:1.*", want: ImagePattern{ImagePatternWildcard, "docker.io/library/nginx:1.*", false}},
		{in: "localhost:5000/*", want: ImagePattern{ImagePatternWildcard, "localhost:5000/*", false}},

		{in: "", wantErr: "must not be empty"},
		{in: " nginx", wantErr: "white space"},
		{in: "ghcr.io/Acme/app", wantErr: "repository name must be lowercase"},
		{in: "nginx:", wantErr: "not a valid image reference"},
		{in: "nginx@sha256:abc", wantErr: "invalid digest"},
		{in: "sha256:abc", wantErr: `image ID must be "sha256:" followed by 64 lowercase hex digits`},
		{in: "sha256:" + strings.ToUpper(testDigest[7:]), wantErr: "lowercase hex"},
		{in: testDigest[7:], wantErr: `write an image ID as "sha256:`},
		{in: "*", wantErr: "imageGCHighThresholdPercent: 100"},
		{in: "**", wantErr: "imageGCHighThresholdPercent: 100"},
		{in: "nginx@sha256:*", wantErr: "'*' is not allowed in a digest"},
		{in: "ghcr.io/Acme/*", wantErr: "repository name must be lowercase"},
		{in: "nginx:1.27:2", wantErr: "not a valid image reference"},
		{in: "ghcr.io/acme/x0wildcard0x*", wantErr: "must not contain"},
		{in: "ghcr.io//app", wantErr: "not a valid image reference"},
		{in: "acme*/app", wantErr: `for Docker Hub write "docker.io/acme*/app"`},
		{in: "*/Acme", wantErr: "repository name must be lowercase"},
	} {
		got, err := ParseImagePattern(tc.in)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("ParseImagePattern(%q) error = %v; want it to contain %q", tc.in, err, tc.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseImagePattern(%q) unexpected error: %v", tc.in, err)
			continue
		}
		if got != tc.want {
			t.Errorf("ParseImagePattern(%q) = %+v; want %+v", tc.in, got, tc.want)
		}
	}
}

func TestParseImageSelector(t *testing.T) {
	for _, tc := range []struct {
		in      string
		wantErr string
	}{
		{in: "cache.example.com/keep=true"},
		{in: "cache.example.com/keep==true"},
		{in: "tier in (edge,critical),!deprecated"},
		{in: "tier notin (dev)"},
		{in: "keep"},
		{in: "tier!=dev"},
		{in: "", wantErr: "must not be empty"},
		{in: "   ", wantErr: "must not be empty"},
		{in: "tier in (", wantErr: "found"},
		{in: "a=b=c", wantErr: ""},
		{in: "Bad Key=1", wantErr: "found"},
		{in: "a=1,a=2", wantErr: "selects no image"},
		{in: "a,!a", wantErr: "selects no image"},
		{in: "a in (1,2),a notin (1,2)", wantErr: "selects no image"},
		{in: "a>5,a<3", wantErr: "selects no image"},
		{in: "a>5,a<7"},
		{in: "a!=1,a notin (2)"},
	} {
		_, err := ParseImageSelector(tc.in)
		switch {
		case tc.wantErr == "" && tc.in == "a=b=c":
			// labels.Parse rejects it; only check that it is an error.
			if err == nil {
				t.Errorf("ParseImageSelector(%q) = nil error; want one", tc.in)
			}
		case tc.wantErr == "" && err != nil:
			t.Errorf("ParseImageSelector(%q) unexpected error: %v", tc.in, err)
		case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
			t.Errorf("ParseImageSelector(%q) error = %v; want it to contain %q", tc.in, err, tc.wantErr)
		}
	}
}

func TestNewImageMatcherErrorsNameFieldIndexAndEntry(t *testing.T) {
	_, err := NewImageMatcher(
		[]string{"nginx", "", "ghcr.io/Acme/app"},
		[]string{"keep=true", "tier in ("},
	)
	if err == nil {
		t.Fatal("NewImageMatcher accepted invalid entries")
	}
	for _, want := range []string{
		`imageGCExclude[1] "": must not be empty`,
		`imageGCExclude[2] "ghcr.io/Acme/app": repository name must be lowercase`,
		`imageGCExcludeSelectors[1] "tier in (":`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
	var merr *ImageMatcherError
	if !asImageMatcherError(err, &merr) || len(merr.Errs) != 3 {
		t.Errorf("want an *ImageMatcherError with 3 errors, got %#v", err)
	}
}

func asImageMatcherError(err error, target **ImageMatcherError) bool {
	e, ok := err.(*ImageMatcherError)
	*target = e
	return ok
}

type testImage struct {
	id      string
	tags    []string
	digests []string
	labels  map[string]string
}

func TestImageMatcherMatch(t *testing.T) {
	matcher, err := NewImageMatcher([]string{
		"registry.k8s.io/pause:3.10",
		"nginx",
		"ghcr.io/acme/*",
		"quay.io/acme/app@" + testDigest,
		"sha256:" + strings.Repeat("a", 64),
		"localhost:5000/edge/*:stable",
		"*/mirror/busybox:*",
	}, []string{
		"cache.example.com/keep=true",
		"tier in (edge,critical),!deprecated",
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		image testImage
		want  string // the entry that matches, "" for none
	}{
		{"exact tag", testImage{tags: []string{"registry.k8s.io/pause:3.10"}}, "registry.k8s.io/pause:3.10"},
		{"other tag of exact-tag repo", testImage{tags: []string{"registry.k8s.io/pause:3.9"}}, ""},
		{"bare repo, short name", testImage{tags: []string{"nginx:1.27"}}, "nginx"},
		{"bare repo, normalized name", testImage{tags: []string{"docker.io/library/nginx:1.26"}}, "nginx"},
		{"bare repo, latest", testImage{tags: []string{"docker.io/library/nginx:latest"}}, "nginx"},
		{"bare repo, digest only", testImage{digests: []string{"docker.io/library/nginx@" + testDigest2}}, "nginx"},
		{"bare repo does not match prefix", testImage{tags: []string{"docker.io/library/nginx-exporter:1.0"}}, ""},
		{"bare repo does not match other namespace", testImage{tags: []string{"docker.io/acme/nginx:1.0"}}, ""},
		{"bare repo does not match other registry", testImage{tags: []string{"quay.io/library/nginx:1.0"}}, ""},
		{"wildcard crossing /", testImage{tags: []string{"ghcr.io/acme/team/app:1.0"}}, "ghcr.io/acme/*"},
		{"wildcard does not match sibling org", testImage{tags: []string{"ghcr.io/acmecorp/app:1.0"}}, ""},
		{"wildcard over digests", testImage{digests: []string{"ghcr.io/acme/app@" + testDigest}}, "ghcr.io/acme/*"},
		{"registry port is not a tag", testImage{tags: []string{"localhost:5000/edge/agent:stable"}}, "localhost:5000/edge/*:stable"},
		{"registry port, other tag", testImage{tags: []string{"localhost:5000/edge/agent:beta"}}, ""},
		{"leading wildcard", testImage{tags: []string{"registry.example.com/mirror/busybox:1.36"}}, "*/mirror/busybox:*"},
		{"repo digest", testImage{digests: []string{"quay.io/acme/app@" + testDigest}}, "quay.io/acme/app@" + testDigest},
		{"other digest of digest repo", testImage{digests: []string{"quay.io/acme/app@" + testDigest2}}, ""},
		{"tag is not a digest", testImage{tags: []string{"quay.io/acme/app:1.0"}}, ""},
		{"image ID", testImage{id: "sha256:" + strings.Repeat("a", 64)}, "sha256:" + strings.Repeat("a", 64)},
		{"image ID without prefix (CRI-O)", testImage{id: strings.Repeat("a", 64)}, "sha256:" + strings.Repeat("a", 64)},
		{"untagged image", testImage{id: "sha256:" + strings.Repeat("b", 64), tags: []string{"<none>:<none>"}}, ""},
		{"several tags, one matches", testImage{tags: []string{"example.com/a:1", "registry.k8s.io/pause:3.10", "example.com/b:2"}}, "registry.k8s.io/pause:3.10"},
		{"several tags, none matches", testImage{tags: []string{"example.com/a:1", "registry.k8s.io/pause:3.9"}}, ""},
		{"label =", testImage{labels: map[string]string{"cache.example.com/keep": "true"}}, "cache.example.com/keep=true"},
		{"label = other value", testImage{labels: map[string]string{"cache.example.com/keep": "false"}}, ""},
		{"label in", testImage{labels: map[string]string{"tier": "edge"}}, "tier in (edge,critical),!deprecated"},
		{"label in, excluded by !key", testImage{labels: map[string]string{"tier": "edge", "deprecated": "yes"}}, ""},
		{"label in, value not listed", testImage{labels: map[string]string{"tier": "dev"}}, ""},
		{"no labels", testImage{tags: []string{"example.com/x:1"}}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := matcher.MatchReferences(tc.image.id, tc.image.tags, tc.image.digests)
			if got == "" {
				got = matcher.MatchLabels(tc.image.labels)
			}
			if got != tc.want {
				t.Errorf("match = %q; want %q", got, tc.want)
			}
		})
	}
}

func TestImageMatcherSelectorOperators(t *testing.T) {
	image := map[string]string{"tier": "edge", "keep": "", "team": "a"}
	for _, tc := range []struct {
		selector string
		want     bool
	}{
		{"tier=edge", true},
		{"tier==edge", true},
		{"tier!=edge", false},
		{"tier!=core", true},
		{"tier in (core,edge)", true},
		{"tier notin (core,edge)", false},
		{"tier notin (core)", true},
		{"keep", true},
		{"missing", false},
		{"!missing", true},
		{"!keep", false},
		{"tier=edge,team=b", false},
		{"tier=edge,team=a", true},
	} {
		m, err := NewImageMatcher(nil, []string{tc.selector})
		if err != nil {
			t.Fatalf("%q: %v", tc.selector, err)
		}
		if got := m.MatchLabels(image) != ""; got != tc.want {
			t.Errorf("selector %q on %v = %v; want %v", tc.selector, image, got, tc.want)
		}
	}
}

func TestImageMatcherNilAndEmpty(t *testing.T) {
	var nilMatcher *ImageMatcher
	if got := nilMatcher.MatchReferences("sha256:x", []string{"nginx:1"}, nil); got != "" {
		t.Errorf("nil matcher matched %q", got)
	}
	if !nilMatcher.Empty() || nilMatcher.HasSelectors() {
		t.Error("nil matcher must be empty and have no selectors")
	}
	m, err := NewImageMatcher(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !m.Empty() {
		t.Error("matcher without entries must be empty")
	}
	if got := m.MatchLabels(map[string]string{"a": "b"}); got != "" {
		t.Errorf("empty matcher matched labels with %q", got)
	}
}

func TestImageMatcherSummary(t *testing.T) {
	m, err := NewImageMatcher([]string{"nginx", "nginx:1", "a/*", "sha256:" + strings.Repeat("c", 64)}, []string{"keep"})
	if err != nil {
		t.Fatal(err)
	}
	got := m.Summary()
	want := []any{"tagPatterns", 1, "digestPatterns", 0, "repositoryPatterns", 1, "idPatterns", 1, "wildcardPatterns", 1, "selectors", 1}
	if len(got) != len(want) {
		t.Fatalf("Summary() = %v; want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("Summary() = %v; want %v", got, want)
		}
	}
}

func TestGlobMatch(t *testing.T) {
	for _, tc := range []struct {
		pattern, s string
		want       bool
	}{
		{"a*", "a", true},
		{"a*", "abc", true},
		{"*c", "abc", true},
		{"a*c", "ac", true},
		{"a*c", "abbc", true},
		{"a*b*c", "abc", true},
		{"a*b*c", "acb", false},
		{"a*a", "a", false},
		{"ab*ba", "aba", false},
		{"x*", "ya", false},
		{"abc", "abc", true},
		{"abc", "abcd", false},
	} {
		if got := globMatch(strings.Split(tc.pattern, "*"), tc.s); got != tc.want {
			t.Errorf("globMatch(%q, %q) = %v; want %v", tc.pattern, tc.s, got, tc.want)
		}
	}
}
