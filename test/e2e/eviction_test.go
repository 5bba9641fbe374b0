//go:build e2e

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

package e2e

import (
	"context"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/kubelet-imagecache/kubelet-imagecache/test/e2e/framework"
)

// Cache, not pin: on a small image filesystem, with every unkept image gone, an imagefs
// eviction threshold is set so that the kept images can relieve it. With the default rule the
// kubelet removes just as many kept images as the threshold needs, those of the latest entries
// first (none was used since the kubelet started); with pressure the kept images cannot relieve,
// and with imageGCExcludeEvictionPolicy: EvictPods, it removes none.
func TestKeptImagesUnderEviction(t *testing.T) {
	t.Parallel()
	runtime := runtimes(t, "containerd-2.4")[0]
	n := newNodeOn(t, runtime)
	if err := n.LimitImageFS(384 << 20); err != nil {
		t.Fatal(err)
	}
	var kept, unkept []*framework.Image
	for _, tag := range []string{"k0", "k1", "k2", "k3"} {
		kept = append(kept, push(t, n, framework.ImageSpec{Repository: "e2e/cache", Tag: tag, PadBytes: 16 << 20}))
	}
	for _, tag := range []string{"u0", "u1"} {
		unkept = append(unkept, push(t, n, framework.ImageSpec{Repository: "e2e/other", Tag: tag, PadBytes: 16 << 20}))
	}
	startRuntimeWithPause(t, n)
	var exclude []string
	for _, img := range kept {
		pull(t, n, img.Ref)
		exclude = append(exclude, img.Ref) // one entry per image: k0 is the first, k3 the last
	}
	for _, img := range unkept {
		pull(t, n, img.Ref)
	}
	// The runtime's size of each kept image: what the kubelet counts.
	size := map[string]int64{}
	svc, err := n.ImageService()
	if err != nil {
		t.Fatal(err)
	}
	listed, err := svc.ListImages(context.Background(), &runtimeapi.ImageFilter{})
	if err != nil {
		t.Fatal(err)
	}
	for _, img := range listed {
		for _, tag := range img.RepoTags {
			size[tag] = int64(img.GetSize())
		}
	}
	var keptBytes int64
	for _, img := range kept {
		if size[img.Ref] == 0 {
			t.Fatalf("the runtime lists no size for %s", img.Ref)
		}
		keptBytes += size[img.Ref]
	}

	// With the always-crossed threshold the unkept images go, and the kept ones stay: removing
	// them all would not bring 99% of the filesystem back.
	run := func(name string, kc framework.KubeletConfig) {
		t.Helper()
		config, err := n.WriteKubeletConfig(name, kc)
		if err != nil {
			t.Fatal(err)
		}
		if err := n.StartKubelet(config); err != nil {
			t.Fatal(err)
		}
	}
	run("kubelet", framework.KubeletConfig{Gate: true, Exclude: exclude})
	if !waitDeleted(t, n, map[string]string{"u0": unkept[0].Ref, "u1": unkept[1].Ref}) {
		t.Fatalf("the unkept images were not collected; present: %v", keys(present(t, n)))
	}
	waitGCPasses(t, n, 2)
	assertPresent(t, n, kept...)
	n.StopKubelet()

	// What the kubelet will observe: the image filesystem's available bytes, now that only the
	// kept images are left and nothing else writes to it.
	var fs syscall.Statfs_t
	if err := syscall.Statfs(n.ImageStore(), &fs); err != nil {
		t.Fatal(err)
	}
	available := int64(fs.Bavail) * fs.Bsize
	// Removing k3 alone frees too little, k3 and k2 enough: the threshold needs
	// size(k3) + size(k2)/2 more bytes.
	enough := available + size[kept[3].Ref] + size[kept[2].Ref]/2
	t.Logf("image filesystem: %d bytes available; kept images %d bytes; threshold %d", available, keptBytes, enough)

	t.Run("EvictPods keeps every kept image", func(t *testing.T) {
		run("kubelet-evict-pods", framework.KubeletConfig{Gate: true, Exclude: exclude,
			ImagefsAvailable: strconv.FormatInt(enough, 10), EvictionPolicy: "EvictPods"})
		waitGCPasses(t, n, 3)
		assertPresent(t, n, kept...)
		// The eviction pass's own line (V(2)), not the start-up warning about EvictPods without a
		// budget, which names the policy too.
		if n.Kubelet.CountInLog("Keeping the images imageGCExclude keeps under disk pressure: imageGCExcludeEvictionPolicy is EvictPods") == 0 {
			t.Error("the kubelet did not log that EvictPods keeps the images under eviction")
		}
		if n.Kubelet.CountInLog("Warning: imageGCExcludeEvictionPolicy is EvictPods and imageGCExcludeBudgetPercent is 100") == 0 {
			t.Error("the kubelet did not warn that EvictPods without a budget is unbounded")
		}
		n.StopKubelet()
	})
	t.Run("pressure the kept images cannot relieve removes none", func(t *testing.T) {
		run("kubelet-unrelievable", framework.KubeletConfig{Gate: true, Exclude: exclude,
			ImagefsAvailable: strconv.FormatInt(available+keptBytes+8<<20, 10)})
		waitGCPasses(t, n, 3)
		assertPresent(t, n, kept...)
		if n.Kubelet.CountInLog("removing all of them would not relieve disk pressure") == 0 {
			t.Error("the kubelet did not log why it kept the images")
		}
		n.StopKubelet()
	})
	t.Run("relievable pressure removes as many as needed, latest entries first", func(t *testing.T) {
		run("kubelet-relievable", framework.KubeletConfig{Gate: true, Exclude: exclude,
			ImagefsAvailable: strconv.FormatInt(enough, 10)})
		if !waitDeleted(t, n, map[string]string{"k3": kept[3].Ref, "k2": kept[2].Ref}) {
			t.Fatalf("the kept images of the last two entries were not removed; present: %v", keys(present(t, n)))
		}
		// The removal relieved the pressure: the eviction manager finds nothing starved on its
		// next passes, and no further kept image goes.
		starved := n.Kubelet.CountInLog("Eviction manager: no resources are starved")
		const sync = "Eviction manager: synchronize housekeeping"
		target := n.Kubelet.CountInLog(sync) + 3
		if !framework.Eventually(time.Minute, time.Second, func() bool { return n.Kubelet.CountInLog(sync) >= target }) {
			t.Fatalf("the eviction manager ran %d passes; waited for %d", n.Kubelet.CountInLog(sync), target)
		}
		if n.Kubelet.CountInLog("Eviction manager: no resources are starved") <= starved {
			t.Error("the eviction manager still finds the image filesystem starved after the kept images went")
		}
		assertPresent(t, n, kept[0], kept[1])
		events := grepLines(grepLines(n.Kubelet.LogText(), "ImageGCExclusionReclaimed"), "Removed 2 of 4 unused images kept by imageGCExclude")
		if got := strings.Count(events, "\n") + 1; events == "" || got != 1 {
			t.Errorf("ImageGCExclusionReclaimed events for 2 of 4 images: %q; want one", events)
		}
		if got := collectedTotal(t, n, "exclusion_eviction"); got != 2 {
			t.Errorf(`kubelet_image_garbage_collected_total{reason="exclusion_eviction"} = %v; want 2`, got)
		}
	})
}

func assertPresent(t *testing.T, n *framework.Node, images ...*framework.Image) {
	t.Helper()
	p := present(t, n)
	for _, img := range images {
		if !p[img.Ref] {
			t.Errorf("kept image %s was removed; present: %v", img.Ref, keys(p))
		}
	}
}

// collectedTotal reads kubelet_image_garbage_collected_total for one reason from the kubelet.
func collectedTotal(t *testing.T, n *framework.Node, reason string) float64 {
	t.Helper()
	text, err := n.KubeletMetrics()
	if err != nil {
		t.Fatal(err)
	}
	v, err := framework.MetricSum(text, "kubelet_image_garbage_collected_total", "reason", reason)
	if err != nil {
		t.Fatal(err)
	}
	return v
}
