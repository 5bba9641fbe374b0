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
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// readVerboseInfo loads a verbose ImageStatus Info map recorded from a runtime.
func readVerboseInfo(t testing.TB, name string) map[string]string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "imagestatus", name))
	require.NoError(t, err)
	return map[string]string{verboseImageInfoKey: strings.TrimSpace(string(data))}
}

func TestLabelsFromVerboseInfo(t *testing.T) {
	recorded := map[string]string{"cache.example.com/keep": "true", "tier": "edge", "org.opencontainers.image.title": "keep-label"}
	for _, tc := range []struct {
		name    string
		info    map[string]string
		want    map[string]string
		wantErr string
	}{
		{name: "containerd 1.6", info: readVerboseInfo(t, "containerd-1.6.json"), want: recorded},
		{name: "containerd 2.4", info: readVerboseInfo(t, "containerd-2.4.json"), want: recorded},
		{name: "CRI-O 1.34", info: readVerboseInfo(t, "cri-o-1.34.json"), want: recorded},
		{
			name: "containerd, image without labels",
			info: map[string]string{"info": `{"chainID":"sha256:abc","imageSpec":{"architecture":"amd64","os":"linux","config":{"Entrypoint":["/app"]}}}`},
			want: map[string]string{},
		},
		{name: "CRI-O, labels only at top level", info: map[string]string{"info": `{"labels":{"a":"1"},"imageSpec":null}`}, want: map[string]string{"a": "1"}},
		{name: "no info key", info: map[string]string{"other": "{}"}, wantErr: `no "info" key`},
		{name: "not JSON", info: map[string]string{"info": "image sha256:abc"}, wantErr: "not JSON"},
		{name: "unknown shape", info: map[string]string{"info": `{"something":"else"}`}, wantErr: "no imageSpec or labels"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := LabelsFromVerboseInfo(tc.info)
			if tc.wantErr != "" {
				require.ErrorIs(t, err, ErrUnknownInfoFormat)
				assert.Contains(t, err.Error(), tc.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

// fakeImageStatuses answers verbose ImageStatus calls from a map, counting calls per image.
type fakeImageStatuses struct {
	mu       sync.Mutex
	infos    map[string]map[string]string
	err      error
	calls    map[string]int
	handlers []string
}

func (f *fakeImageStatuses) ImageStatus(_ context.Context, image *runtimeapi.ImageSpec, verbose bool) (*runtimeapi.ImageStatusResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.calls == nil {
		f.calls = map[string]int{}
	}
	f.calls[image.Image]++
	f.handlers = append(f.handlers, image.RuntimeHandler)
	if f.err != nil {
		return nil, f.err
	}
	info, ok := f.infos[image.Image]
	if !ok {
		return &runtimeapi.ImageStatusResponse{}, nil
	}
	resp := &runtimeapi.ImageStatusResponse{Image: &runtimeapi.Image{Id: image.Image}}
	if verbose {
		resp.Info = info
	}
	return resp, nil
}

func (f *fakeImageStatuses) callsFor(id string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[id]
}

func TestAllowlistExcludes(t *testing.T) {
	ctx := context.Background()
	// CRI-O lists image IDs as the config digest's hex, without "sha256:", and is asked by them.
	const crioID = "5238ff9eefd23c3605cd3af12efb0799c74fca5e80e6273689d96fa325714a4c"
	statuses := &fakeImageStatuses{infos: map[string]map[string]string{
		"sha256:labelled":   readVerboseInfo(t, "containerd-2.4.json"),
		crioID:              readVerboseInfo(t, "cri-o-1.34.json"),
		"sha256:unlabelled": {"info": `{"chainID":"sha256:c","imageSpec":{"config":{}}}`},
		"sha256:weird":      {"info": `["not","an","object"]`},
	}}
	a, err := New([]string{"registry.k8s.io/pause:3.10"}, []string{"cache.example.com/keep=true"}, statuses)
	require.NoError(t, err)

	for pass := 0; pass < 3; pass++ {
		for _, tc := range []struct {
			id, tag, want string
			unknownFormat bool
		}{
			{id: "sha256:pause", tag: "registry.k8s.io/pause:3.10", want: "registry.k8s.io/pause:3.10"},
			{id: "sha256:labelled", tag: "example.com/a:1", want: "cache.example.com/keep=true"},
			{id: crioID, tag: "example.com/b:1", want: "cache.example.com/keep=true"},
			{id: "sha256:unlabelled", tag: "example.com/c:1"},
			// An unknown format is reported on the first look-up, then the image is unlabelled.
			{id: "sha256:weird", tag: "example.com/d:1", unknownFormat: pass == 0},
		} {
			entry, err := a.Excludes(ctx, tc.id, "runc", []string{tc.tag}, nil)
			assert.Equal(t, tc.want, entry, "pass %d %s", pass, tc.id)
			if tc.unknownFormat {
				require.ErrorIs(t, err, ErrUnknownInfoFormat)
			} else {
				require.NoError(t, err, "pass %d %s", pass, tc.id)
			}
		}
	}
	// Patterns are tried first: an image kept by a pattern needs no label look-up.
	assert.Equal(t, 0, statuses.callsFor("sha256:pause"))
	// Labels are read once per image ID, also when the format is unknown, with the handler.
	for _, id := range []string{"sha256:labelled", crioID, "sha256:unlabelled", "sha256:weird"} {
		assert.Equal(t, 1, statuses.callsFor(id), "look-ups of %s", id)
	}
	assert.Equal(t, []string{"runc", "runc", "runc", "runc"}, statuses.handlers)
	// Forget drops the cache entry: the next look-up asks the runtime again.
	a.Forget("sha256:labelled")
	_, err = a.Excludes(ctx, "sha256:labelled", "", []string{"example.com/a:1"}, nil)
	require.NoError(t, err)
	assert.Equal(t, 2, statuses.callsFor("sha256:labelled"))
}

func TestAllowlistLookupFailureIsNotCached(t *testing.T) {
	ctx := context.Background()
	statuses := &fakeImageStatuses{err: errors.New("rpc error: code = Unavailable"), infos: map[string]map[string]string{
		"sha256:x": {"info": `{"imageSpec":{"config":{"Labels":{"keep":"1"}}}}`},
	}}
	a, err := New(nil, []string{"keep"}, statuses)
	require.NoError(t, err)
	_, err = a.Excludes(ctx, "sha256:x", "", []string{"example.com/x:1"}, nil)
	require.Error(t, err)
	require.NotErrorIs(t, err, ErrUnknownInfoFormat)
	_, cached := a.Labels().Cached("sha256:x")
	assert.False(t, cached)
	// The runtime answers again: the next look-up decides on the labels.
	statuses.mu.Lock()
	statuses.err = nil
	statuses.mu.Unlock()
	entry, err := a.Excludes(ctx, "sha256:x", "", []string{"example.com/x:1"}, nil)
	require.NoError(t, err)
	assert.Equal(t, "keep", entry)
}

func TestNewNeedsImageServiceForSelectors(t *testing.T) {
	_, err := New(nil, []string{"keep"}, nil)
	require.ErrorContains(t, err, "imageGCExcludeSelectors needs the CRI image service")
	a, err := New([]string{"nginx"}, nil, nil)
	require.NoError(t, err)
	assert.Nil(t, a.Labels())
}
