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

// This file (in a module of its own, so that this module skips it: it is package images of
// upstream's tree) is copied by hack/test-upstream.sh into the patched tree's
// pkg/kubelet/images, run, and removed. It pins down an upstream v1.37.2 behaviour that docs/image-keeper.md warns about:
// a disk-usage GC pass hands its post-GC hooks only the unused images it looked at and left,
// so KubeletEnsureSecretPulledImages' PruneUnknownRecords drops the pull records of images in
// use and of pinned ones. When upstream fixes it, this fails: update that paragraph.

import (
	"context"
	"testing"
	"time"

	"k8s.io/kubernetes/pkg/kubelet/container"
	containertest "k8s.io/kubernetes/pkg/kubelet/container/testing"
	"k8s.io/kubernetes/test/utils/ktesting"
)

func TestUpstreamPostGCHookOmitsImagesInUse(t *testing.T) {
	ctx := ktesting.Init(t)
	manager, fakeRuntime := newRealImageGCManager(ImageGCPolicy{MinAge: time.Hour}, nil)
	var handed []string
	manager.postGCHooks = []PostImageGCHook{func(_ context.Context, remaining []string, _ time.Time) {
		handed = remaining
	}}
	pinned := makeImage(1, 1)
	pinned.Pinned = true
	// Image 0 is in use, 1 pinned, 2 unused but younger than MinAge: the pass leaves all three.
	fakeRuntime.ImageList = []container.Image{makeImage(0, 1), pinned, makeImage(2, 1)}
	fakeRuntime.AllPodList = []*containertest.FakePod{{Pod: &container.Pod{Containers: []*container.Container{makeContainer(0)}}}}
	if err := manager.DeleteUnusedImages(ctx); err != nil {
		t.Fatal(err)
	}
	want := []string{imageID(2)}
	if len(handed) != len(want) || handed[0] != want[0] {
		t.Fatalf("the post-GC hooks got %q, want %q (only the unused image left): has upstream started handing them every image left on the node? Update docs/image-keeper.md's paragraph on this bug and remove this test", handed, want)
	}
	if manager.imageRecordsLen() != 3 {
		t.Fatalf("the pass removed images: %d records left, want 3", manager.imageRecordsLen())
	}
}
