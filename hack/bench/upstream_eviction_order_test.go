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

// This file (in a module of its own, so that this module skips it) is copied by
// hack/bench.sh into a worktree of the unpatched upstream tree (tag
// upstream-<version>) to give BenchmarkImagesInEvictionOrder its "upstream" column. It uses
// upstream's API only, and the same 10,000 images as the patched benchmark in
// patches/0003 (image_gc_manager_exclusion_test.go); keep the two generators alike.

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"k8s.io/kubernetes/pkg/kubelet/container"
	"k8s.io/kubernetes/test/utils/ktesting"
)

func BenchmarkImagesInEvictionOrder(b *testing.B) {
	const images = 10000
	registries := []string{"docker.io/library", "docker.io/acme", "ghcr.io/acme", "quay.io/team", "registry.example.com:5000/edge"}
	list := make([]container.Image, images)
	for i := range list {
		repo := fmt.Sprintf("%s/app-%d", registries[i%len(registries)], i/len(registries))
		list[i] = container.Image{ID: fmt.Sprintf("sha256:%064x", i), RepoTags: []string{fmt.Sprintf("%s:v%d", repo, i%7)},
			RepoDigests: []string{fmt.Sprintf("%s@sha256:%064x", repo, 1<<40+i)}, Size: 1}
	}
	b.Run("allowlist=upstream", func(b *testing.B) {
		// As the patched columns (benchmarkEvictionOrder): names shared by every pass, and fresh
		// for each, copied before it (not timed) as a CRI response is decoded anew.
		for _, fresh := range []bool{false, true} {
			name := "names=shared"
			if fresh {
				name = "names=fresh"
			}
			b.Run(name, func(b *testing.B) {
				ctx := ktesting.Init(b)
				manager, fakeRuntime := newRealImageGCManager(ImageGCPolicy{}, nil)
				fakeRuntime.ImageList = list
				pass := func() {
					if fresh {
						b.StopTimer()
						fakeRuntime.ImageList = withFreshNames(list)
						b.StartTimer()
					}
					if _, err := manager.imagesInEvictionOrder(ctx, time.Now()); err != nil {
						b.Fatal(err)
					}
				}
				// As the patched columns: passes that let the heap settle before the measured ones.
				for i := 0; i < 101; i++ {
					pass()
				}
				b.ReportAllocs()
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					pass()
				}
			})
		}
	})
}

// withFreshNames copies the images with new strings for their IDs and names, as the patched
// benchmarks' helper of the same name does.
func withFreshNames(list []container.Image) []container.Image {
	fresh := make([]container.Image, len(list))
	for i, image := range list {
		fresh[i] = image
		fresh[i].ID = strings.Clone(image.ID)
		fresh[i].RepoTags = cloneStrings(image.RepoTags)
		fresh[i].RepoDigests = cloneStrings(image.RepoDigests)
	}
	return fresh
}

func cloneStrings(names []string) []string {
	clone := make([]string, len(names))
	for i, name := range names {
		clone[i] = strings.Clone(name)
	}
	return clone
}
