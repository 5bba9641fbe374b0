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

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const (
	testDigest  = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	testDigest2 = "sha256:fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210"
)

func TestNormalizeReference(t *testing.T) {
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
		t.Run(tc.in, func(t *testing.T) {
			got, ok := NormalizeReference(tc.in)
			assert.Equal(t, tc.want, got)
			assert.Equal(t, tc.ok, ok)
		})
	}
}

// parseCase is an entry and what parsing it gives: a pattern, or an error containing wantErr.
type parseCase struct {
	in       string
	want     Pattern
	pullable bool
	wantErr  string
}

// checkParse runs parse on every case.
func checkParse(t *testing.T, parse func(string) (Pattern, error), cases []parseCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.in, func(t *testing.T) {
			got, err := parse(tc.in)
			if tc.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tc.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
			assert.Equal(t, tc.pullable, got.Pullable())
		})
	}
}

func TestParsePattern(t *testing.T) {
	checkParse(t, ParsePattern, []parseCase{
		{in: "registry.k8s.io/pause:3.10", want: Pattern{Kind: PatternTag, Repository: "registry.k8s.io/pause", Tag: "3.10"}, pullable: true},
		{in: "nginx:1.27", want: Pattern{Kind: PatternTag, Repository: "docker.io/library/nginx", Tag: "1.27"}, pullable: true},
		{in: "nginx", want: Pattern{Kind: PatternRepository, Repository: "docker.io/library/nginx"}},
		{in: "localhost:5000/app", want: Pattern{Kind: PatternRepository, Repository: "localhost:5000/app"}},
		{in: "localhost:5000/app:v2", want: Pattern{Kind: PatternTag, Repository: "localhost:5000/app", Tag: "v2"}, pullable: true},
		{in: "quay.io/acme/app@" + testDigest, want: Pattern{Kind: PatternDigest, Repository: "quay.io/acme/app", Digest: testDigest}, pullable: true},
		{in: "quay.io/acme/app:1@" + testDigest, want: Pattern{Kind: PatternDigest, Repository: "quay.io/acme/app", Digest: testDigest}, pullable: true},
		{in: testDigest, want: Pattern{Kind: PatternID, Digest: testDigest}},
		{in: "ghcr.io/acme/*", want: Pattern{Kind: PatternRepository, Repository: "ghcr.io/acme/*"}},
		{in: "docker.io/*", want: Pattern{Kind: PatternRepository, Repository: "docker.io/*"}},
		{in: "localhost:5000/*", want: Pattern{Kind: PatternRepository, Repository: "localhost:5000/*"}},

		// The fork's wildcards are refused; a prefix needs a registry host.
		{in: "ghcr.io/*/app", wantErr: `'*' is allowed only as the whole last path component after a registry host`},
		{in: "nginx:1.*", wantErr: "allowed only as the whole last path component"},
		{in: "*/pause", wantErr: "allowed only as the whole last path component"},
		{in: "registry-*.example.com/app", wantErr: "allowed only as the whole last path component"},
		{in: "ghcr.io/acme/**", wantErr: "allowed only as the whole last path component"},
		{in: "ghcr.io/acme/*:1", wantErr: "allowed only as the whole last path component"},
		{in: "ghcr.io/acme/*@" + testDigest, wantErr: "allowed only as the whole last path component"},
		{in: "acme/*", wantErr: `"acme" is not a registry host (write "docker.io/acme/*" for Docker Hub)`},
		{in: "*", wantErr: "allowed only as the whole last path component"},
		{in: "*/*", wantErr: "allowed only as the whole last path component"},
		{in: "index.docker.io/acme/*", want: Pattern{Kind: PatternRepository, Repository: "docker.io/acme/*"}},
		{in: "index.docker.io/*", want: Pattern{Kind: PatternRepository, Repository: "docker.io/*"}},
		{in: "registry.example.com:5000/team/*", want: Pattern{Kind: PatternRepository, Repository: "registry.example.com:5000/team/*"}},

		{in: "", wantErr: "must not be empty"},
		{in: ":1.0", wantErr: "not a valid image reference"},
		{in: " nginx", wantErr: "white space"},
		{in: "ghcr.io/Acme/app", wantErr: "repository name must be lowercase"},
		{in: "nginx:", wantErr: "empty tag after ':'"},
		{in: "nginx@sha256:abc", wantErr: "invalid digest"},
		{in: "sha256:abc", wantErr: `image ID must be "sha256:" followed by 64 lowercase hex digits`},
		{in: "sha256:" + strings.ToUpper(testDigest[7:]), wantErr: "lowercase hex"},
		{in: testDigest[7:], wantErr: `write an image ID as "sha256:`},
		{in: "ghcr.io", wantErr: `a registry host alone names no image; to keep every image from it write "ghcr.io/*"`},
		{in: "localhost:5000", wantErr: `write "localhost:5000/*"`},
		{in: "localhost", wantErr: `write "localhost/*"`},
		{in: "registry.example.com:443", wantErr: `write "registry.example.com:443/*"`},
		{in: "nginx@sha256:*", wantErr: "'*' is not allowed in a digest"},
		{in: "ghcr.io/Acme/*", wantErr: "repository name must be lowercase"},
		{in: "nginx:1.27:2", wantErr: "not a valid image reference"},
		{in: "ghcr.io//app", wantErr: "not a valid image reference"},
		{in: "ghcr.io/" + strings.Repeat("a", 256), wantErr: "repository name must not be longer than 255 characters"},
	})
}

func TestNewMatcherErrors(t *testing.T) {
	long := "ghcr.io/" + strings.Repeat("A", 5000)
	for _, tc := range []struct {
		name     string
		patterns []string
		want     string
	}{
		{
			name:     "every invalid entry, by field and index",
			patterns: []string{"nginx", "", "ghcr.io/Acme/app"},
			want:     `imageGCExclude[1] "": must not be empty; imageGCExclude[2] "ghcr.io/Acme/app": repository name must be lowercase`,
		},
		{
			name:     "duplicate",
			patterns: []string{"nginx", "ghcr.io/acme/*", "nginx"},
			want:     `imageGCExclude[2] "nginx": duplicate of imageGCExclude[0]; remove one`,
		},
		{
			name:     "same after normalization",
			patterns: []string{"nginx:1.27", "docker.io/library/nginx:1.27"},
			want:     `imageGCExclude[1] "docker.io/library/nginx:1.27": means the same as imageGCExclude[0] "nginx:1.27" (docker.io/library/nginx:1.27); remove one`,
		},
		{
			name:     "a huge entry is not echoed whole",
			patterns: []string{long},
			want:     `imageGCExclude[0] "ghcr.io/AAAA`,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewMatcher(tc.patterns)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
			assert.Less(t, len(err.Error()), 1000)
			var matcherErr *MatcherError
			require.ErrorAs(t, err, &matcherErr)
		})
	}
}
