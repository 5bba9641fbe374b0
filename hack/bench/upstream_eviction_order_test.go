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
		ctx := ktesting.Init(b)
		manager, fakeRuntime := newRealImageGCManager(ImageGCPolicy{}, nil)
		fakeRuntime.ImageList = list
		// As the patched columns: passes that let the heap settle before the measured ones.
		for i := 0; i < 101; i++ {
			if _, err := manager.imagesInEvictionOrder(ctx, time.Now()); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if _, err := manager.imagesInEvictionOrder(ctx, time.Now()); err != nil {
				b.Fatal(err)
			}
		}
	})
}
