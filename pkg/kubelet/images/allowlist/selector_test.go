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
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseSelector(t *testing.T) {
	for _, tc := range []struct {
		in      string
		wantErr string
	}{
		{in: "cache.example.com/keep=true"},
		{in: "tier in (edge,critical),!deprecated"},
		{in: "keep"},
		{in: "keep,tier!=dev"},
		{in: "tier notin (dev),keep==yes"},
		{in: "a=1,a!=2"},
		{in: "", wantErr: "must not be empty"},
		{in: "  ", wantErr: "must not be empty"},
		{in: "!deprecated", wantErr: "requires no label to be present"},
		{in: "tier!=dev", wantErr: "requires no label to be present"},
		{in: "tier notin (dev)", wantErr: "requires no label to be present"},
		{in: "!a,b!=1", wantErr: "requires no label to be present"},
		{in: "a=1,a=2", wantErr: "contradict"},
		{in: "a,!a", wantErr: "contradict"},
		{in: "a in (1,2),a notin (1,2)", wantErr: "contradict"},
		{in: "a=(", wantErr: "unable to parse"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			_, err := ParseSelector(tc.in)
			if tc.wantErr == "" {
				assert.NoError(t, err)
				return
			}
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.wantErr)
		})
	}
}

func TestNewSelectorsErrors(t *testing.T) {
	for _, tc := range []struct {
		name      string
		selectors []string
		want      string
	}{
		{
			name:      "duplicate selector",
			selectors: []string{"keep=true,tier=edge", "tier=edge, keep=true"},
			want:      `imageGCExcludeSelectors[1] "tier=edge, keep=true": means the same as imageGCExcludeSelectors[0] "keep=true,tier=edge" (keep=true,tier=edge); remove one`,
		},
		{
			name:      "negative-only selector",
			selectors: []string{"keep=true", "!deprecated"},
			want:      `imageGCExcludeSelectors[1] "!deprecated": requires no label to be present`,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewSelectors(tc.selectors)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
			var matcherErr *MatcherError
			require.ErrorAs(t, err, &matcherErr)
		})
	}
}

// TestCompileErrors: Compile reports the invalid entries of both lists in one error, patterns
// first, each under its own field.
func TestCompileErrors(t *testing.T) {
	_, err := Compile([]string{"nginx", "Nginx"}, []string{"!deprecated", "keep"})
	require.Error(t, err)
	var matcherErr *MatcherError
	require.ErrorAs(t, err, &matcherErr)
	require.Len(t, matcherErr.Errs, 2)
	assert.Contains(t, matcherErr.Errs[0].Error(), `imageGCExclude[1] "Nginx"`)
	assert.Contains(t, matcherErr.Errs[1].Error(), `imageGCExcludeSelectors[0] "!deprecated"`)

	a, err := Compile([]string{"nginx"}, []string{"keep"})
	require.NoError(t, err)
	assert.Equal(t, "nginx", a.MatchReferences("", []string{"docker.io/library/nginx:1.27"}, nil))
	assert.Equal(t, "keep", a.MatchLabels(map[string]string{"keep": ""}))
	assert.True(t, a.HasSelectors())
	assert.Nil(t, a.Labels(), "Compile reads no labels")
	assert.Equal(t, []any{"repositoryPatterns", 1, "tagPatterns", 0, "digestPatterns", 0, "idPatterns", 0, "selectors", 1}, a.Summary())
}

func TestMatchLabels(t *testing.T) {
	s, err := NewSelectors([]string{"cache.example.com/keep=true", "tier in (edge,critical),!deprecated"})
	require.NoError(t, err)
	for _, tc := range []struct {
		labels map[string]string
		want   string
	}{
		{map[string]string{"cache.example.com/keep": "true"}, "cache.example.com/keep=true"},
		{map[string]string{"tier": "edge"}, "tier in (edge,critical),!deprecated"},
		{map[string]string{"tier": "edge", "deprecated": ""}, ""},
		{map[string]string{"tier": "dev"}, ""},
		{map[string]string{}, ""},
		{nil, ""},
	} {
		assert.Equal(t, tc.want, s.MatchLabels(tc.labels), "labels %v", tc.labels)
	}
}

// benchSelectors are the selectors of BenchmarkAllowlist.
var benchSelectors = []string{
	"cache.example.com/keep=true",
	"tier in (critical,core),!deprecated",
	"pinned-by-ops",
	"release notin (alpha,beta),channel=stable",
	"owner=platform",
}

// benchLabels returns the labels of benchImages(n): every 10th image has a "tier" label.
func benchLabels(n int) []map[string]string {
	imageLabels := make([]map[string]string, n)
	for i := 0; i < n; i += 10 {
		imageLabels[i] = map[string]string{"tier": "edge", "cache.example.com/keep": "false"}
	}
	return imageLabels
}

// BenchmarkAllowlist is BenchmarkMatcher with 5 selectors: an image no pattern keeps is matched
// against the labels it has (op = one image). The kubelet reads labels once per image ID and
// caches the decision, so this is the cost per undecided GC candidate.
func BenchmarkAllowlist(b *testing.B) {
	for _, entries := range []int{10, 1000} {
		b.Run(fmt.Sprintf("entries=%d", entries), func(b *testing.B) {
			a, err := Compile(benchAllowlist(entries), benchSelectors)
			if err != nil {
				b.Fatal(err)
			}
			images, imageLabels := benchImages(10000), benchLabels(10000)
			matched := 0
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				image := &images[i%len(images)]
				if a.MatchReferences(image.id, image.tags, image.digests) != "" || a.MatchLabels(imageLabels[i%len(images)]) != "" {
					matched++
				}
			}
			b.StopTimer()
			if b.N >= len(images) && matched == 0 {
				b.Fatal("no image matched: the benchmark does not exercise matches")
			}
		})
	}
}

// FuzzParseSelector: no input panics, and every accepted selector matches some label set that
// has at least one label.
func FuzzParseSelector(f *testing.F) {
	for _, seed := range []string{
		"cache.example.com/keep=true", "tier in (edge,critical),!deprecated", "a!=b", "a", "!a",
		"a notin (x,y)", "a>1,a<3", "a=1,a=2", "", "a in (", "x==y,z",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, entry string) {
		selector, err := ParseSelector(entry)
		if err != nil {
			return
		}
		requirements, _ := selector.Requirements()
		set, ok := satisfyingLabels(requirements)
		if !ok || len(set) == 0 {
			t.Fatalf("selector %q was accepted but selects no labelled image (%v)", entry, set)
		}
		s, err := NewSelectors([]string{entry})
		if err != nil {
			t.Fatalf("ParseSelector(%q) accepted it but NewSelectors refused it: %v", entry, err)
		}
		if got := s.MatchLabels(set); got != entry {
			t.Fatalf("selector %q does not match the labels %v it was solved with", entry, set)
		}
		if got := s.MatchLabels(nil); got != "" {
			t.Fatalf("selector %q keeps an unlabelled image", entry)
		}
	})
}

// Selectors rank after every pattern, in their own order: a pattern keeps an image before any
// selector is consulted.
func TestAllowlistPosition(t *testing.T) {
	a, err := Compile([]string{"registry.k8s.io/pause:3.10", "ghcr.io/acme/*"}, []string{"keep=true", "tier in (edge)"})
	require.NoError(t, err)
	for entry, want := range map[string]int{
		"registry.k8s.io/pause:3.10": 0,
		"ghcr.io/acme/*":             1,
		"keep=true":                  2,
		"tier in (edge)":             3,
		"not-an-entry":               -1,
	} {
		assert.Equal(t, want, a.Position(entry), entry)
		if want >= 0 {
			assert.Equal(t, entry, a.Entry(want))
		}
	}
	assert.Empty(t, a.Entry(-1))
	assert.Empty(t, a.Entry(4))
	assert.Equal(t, 1, a.MatchPosition("", []string{"ghcr.io/acme/app:1"}, nil))
	assert.Equal(t, -1, a.MatchPosition("", []string{"ghcr.io/other/app:1"}, nil))
	var none *Allowlist
	assert.Equal(t, -1, none.Position("keep=true"))
	assert.Empty(t, none.Entry(0))
	assert.Equal(t, -1, none.MatchPosition("", []string{"ghcr.io/acme/app:1"}, nil))
}
