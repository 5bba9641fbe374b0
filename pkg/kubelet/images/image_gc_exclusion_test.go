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
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// readVerboseInfo loads a recorded verbose ImageStatus Info map from testdata/imagestatus.
func readVerboseInfo(t testing.TB, name string) map[string]string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "imagestatus", name))
	if err != nil {
		t.Fatal(err)
	}
	return map[string]string{verboseImageInfoKey: strings.TrimSpace(string(data))}
}

func TestImageLabelsFromVerboseInfo(t *testing.T) {
	for _, tc := range []struct {
		name    string
		info    map[string]string
		want    map[string]string
		wantErr string
	}{
		{
			name: "containerd 1.6",
			info: readVerboseInfo(t, "containerd-1.6.json"),
			want: map[string]string{"cache.example.com/keep": "true", "tier": "edge", "org.opencontainers.image.title": "keep-label"},
		},
		{
			name: "CRI-O",
			info: readVerboseInfo(t, "cri-o.json"),
			want: map[string]string{"cache.example.com/keep": "true", "tier": "edge"},
		},
		{
			name: "containerd, image without labels",
			info: map[string]string{"info": `{"chainID":"sha256:abc","imageSpec":{"architecture":"amd64","os":"linux","config":{"Entrypoint":["/app"]}}}`},
			want: map[string]string{},
		},
		{
			name: "CRI-O, labels only at top level",
			info: map[string]string{"info": `{"labels":{"a":"1"},"imageSpec":null}`},
			want: map[string]string{"a": "1"},
		},
		{
			name:    "no info key",
			info:    map[string]string{"other": "{}"},
			wantErr: `no "info" key`,
		},
		{
			name:    "not JSON",
			info:    map[string]string{"info": "image sha256:abc"},
			wantErr: "not JSON",
		},
		{
			name:    "unknown shape",
			info:    map[string]string{"info": `{"something":"else"}`},
			wantErr: "no imageSpec or labels",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ImageLabelsFromVerboseInfo(tc.info)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error = %v; want it to contain %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("labels = %v; want %v", got, tc.want)
			}
		})
	}
}

// fakeImageStatuses answers verbose ImageStatus calls from a map, counting calls per image.
type fakeImageStatuses struct {
	mu    sync.Mutex
	infos map[string]map[string]string
	err   error
	calls map[string]int
}

func (f *fakeImageStatuses) ImageStatus(_ context.Context, image *runtimeapi.ImageSpec, verbose bool) (*runtimeapi.ImageStatusResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.calls == nil {
		f.calls = map[string]int{}
	}
	f.calls[image.Image]++
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

func TestImageGCExclusionExcludes(t *testing.T) {
	ctx := context.Background()
	statuses := &fakeImageStatuses{infos: map[string]map[string]string{
		"sha256:labelled":   readVerboseInfo(t, "containerd-1.6.json"),
		"sha256:crio":       readVerboseInfo(t, "cri-o.json"),
		"sha256:unlabelled": {"info": `{"chainID":"sha256:c","imageSpec":{"config":{}}}`},
		"sha256:weird":      {"info": `["not","an","object"]`},
	}}
	exclusion, err := NewImageGCExclusion([]string{"registry.k8s.io/pause:3.10"}, []string{"cache.example.com/keep=true"}, statuses)
	if err != nil {
		t.Fatal(err)
	}

	for pass := 0; pass < 3; pass++ {
		for _, tc := range []struct {
			id, tag   string
			wantEntry string
			wantKept  bool
		}{
			{"sha256:pause", "registry.k8s.io/pause:3.10", "registry.k8s.io/pause:3.10", true},
			{"sha256:labelled", "example.com/a:1", "cache.example.com/keep=true", true},
			{"sha256:crio", "example.com/b:1", "cache.example.com/keep=true", true},
			{"sha256:unlabelled", "example.com/c:1", "", false},
			{"sha256:weird", "example.com/d:1", "", false},
		} {
			entry, err := exclusion.Excludes(ctx, tc.id, []string{tc.tag}, nil)
			if err != nil || entry != tc.wantEntry || (entry != "") != tc.wantKept {
				t.Errorf("pass %d: Excludes(%s) = %q, %v; want %q", pass, tc.id, entry, err, tc.wantEntry)
			}
		}
	}
	// Patterns are tried first: an image kept by a pattern needs no label look-up.
	if n := statuses.callsFor("sha256:pause"); n != 0 {
		t.Errorf("labels of a pattern-matched image were looked up %d times; want 0", n)
	}
	// Labels are looked up once per image ID, across passes, also when the format is unknown.
	for _, id := range []string{"sha256:labelled", "sha256:crio", "sha256:unlabelled", "sha256:weird"} {
		if n := statuses.callsFor(id); n != 1 {
			t.Errorf("labels of %s were looked up %d times over 3 passes; want 1", id, n)
		}
	}
	// Forget drops the cache entry: the next look-up asks the runtime again.
	exclusion.Forget("sha256:labelled")
	if _, err := exclusion.Excludes(ctx, "sha256:labelled", []string{"example.com/a:1"}, nil); err != nil {
		t.Fatal(err)
	}
	if n := statuses.callsFor("sha256:labelled"); n != 2 {
		t.Errorf("after Forget, look-ups = %d; want 2", n)
	}
}

func TestImageGCExclusionKeepsImageWhenLabelsAreUnavailable(t *testing.T) {
	ctx := context.Background()
	statuses := &fakeImageStatuses{err: errors.New("rpc error: code = Unavailable")}
	exclusion, err := NewImageGCExclusion(nil, []string{"keep"}, statuses)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := exclusion.Excludes(ctx, "sha256:x", []string{"example.com/x:1"}, nil); err == nil {
		t.Error("no error although the image's labels could not be read")
	}
	// A failed look-up is not cached: the next pass asks again, and then decides on the labels.
	statuses.mu.Lock()
	statuses.err = nil
	statuses.infos = map[string]map[string]string{"sha256:x": {"info": `{"imageSpec":{"config":{}}}`}}
	statuses.mu.Unlock()
	if entry, err := exclusion.Excludes(ctx, "sha256:x", []string{"example.com/x:1"}, nil); entry != "" || err != nil {
		t.Errorf("unlabelled image after the runtime recovered: Excludes = %q, %v; want \"\", nil", entry, err)
	}
	if n := statuses.callsFor("sha256:x"); n != 2 {
		t.Errorf("look-ups = %d; want 2", n)
	}
	// An image the runtime does not know cannot be decided either.
	if _, err := exclusion.Excludes(ctx, "sha256:gone", nil, nil); err == nil || !strings.Contains(err.Error(), "does not know the image") {
		t.Errorf("image unknown to the runtime: error = %v", err)
	}
}

func TestImageGCExclusionWithoutSelectorsNeverCallsRuntime(t *testing.T) {
	exclusion, err := NewImageGCExclusion([]string{"nginx"}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if entry, err := exclusion.Excludes(context.Background(), "sha256:x", []string{"example.com/x:1"}, nil); entry != "" || err != nil {
		t.Errorf("Excludes = %q, %v without a matching pattern", entry, err)
	}
	if _, err := NewImageGCExclusion(nil, []string{"keep"}, nil); err == nil {
		t.Error("selectors without an image status provider were accepted")
	}
}

func TestNilImageGCExclusionExcludesNothing(t *testing.T) {
	var exclusion *ImageGCExclusion
	if entry, err := exclusion.Excludes(context.Background(), "sha256:x", []string{"nginx:1"}, nil); entry != "" || err != nil {
		t.Errorf("nil exclusion: Excludes = %q, %v", entry, err)
	}
	exclusion.Forget("sha256:x")
	if exclusion.Matcher() != nil {
		t.Error("nil exclusion has a matcher")
	}
}
