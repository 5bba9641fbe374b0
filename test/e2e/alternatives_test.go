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
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kubeletv1beta1 "k8s.io/kubelet/config/v1beta1"

	"github.com/kubelet-imagecache/kubelet-imagecache/test/e2e/framework"
)

// The "why not the runtime" question, measured (docs/kep "Alternatives"): one list of four
// entries in the allowlist's four forms (an exact tag, a repo digest, a bare repository for
// every tag, a repository prefix), given as it is to containerd 2.4's and CRI-O 1.34's own
// pinned_images under the stock v1.37.2 kubelet, to image-keeper's image-volume holder under the
// stock kubelet, and to the patched kubelet's imageGCExclude. Each node pulls the six images the
// list names and one it does not, and its kubelet's eviction manager deletes unused images every
// ~10 s (an always-crossed imagefs threshold) until the unlisted image is gone: what is left is
// what each mechanism keeps. The runtime columns also record how the runtime took each entry
// (pinned in CRI, or not); image-keeper's holder-manifest refuses the list, naming the two entries
// an image volume cannot mount, and the holder then holds what it accepts, the exact references.
func TestRuntimePinsAlternative(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, runtime string
		// pins: the list goes to the runtime's pinned_images and the stock kubelet runs;
		// holder: to image-keeper's static holder, and the stock kubelet runs; else to the
		// patched kubelet's imageGCExclude.
		pins, holder bool
		// want are the images (by the list's names below) left after the GC passes.
		want []string
	}{
		// containerd pins exact references, tag or digest: a tagless entry pins no tag
		// (containerd#13314), and an entry with '*' pins nothing (containerd starts all the same).
		{name: "containerd-2.4-pinned_images", runtime: "containerd-2.4", pins: true, want: []string{"exact:1", "bydigest:1"}},
		// CRI-O's patterns (exact, a trailing '*' glob, *keyword*): the prefix works as a glob,
		// the repo digest pinned nothing here, and a repository alone is an exact pattern no
		// tagged name equals.
		{name: "cri-o-1.34-pinned_images", runtime: "cri-o-1.34", pins: true, want: []string{"exact:1", "team/a:1", "team/b:1"}},
		// An image volume mounts one pullable image: the holder refuses a repository and a
		// prefix, and holds the exact tag and the repo digest.
		{name: "holder-image-volumes", runtime: "containerd-2.4", holder: true, want: []string{"exact:1", "bydigest:1"}},
		{name: "kubelet-imageGCExclude", runtime: "containerd-2.4", want: []string{"exact:1", "bydigest:1", "repo:1", "repo:2", "team/a:1", "team/b:1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			n := newNodeOn(t, runtimes(t, tc.runtime)[0])
			images := map[string]*framework.Image{}
			var names []string
			for _, name := range []string{"exact:1", "bydigest:1", "repo:1", "repo:2", "team/a:1", "team/b:1", "other:1"} {
				repo, tag, _ := strings.Cut(name, ":")
				images[name] = push(t, n, framework.ImageSpec{Repository: "e2e/" + repo, Tag: tag})
				names = append(names, name)
			}
			list := []string{images["exact:1"].Ref, images["bydigest:1"].DigestRef, n.RegistryAddr + "/e2e/repo", n.RegistryAddr + "/e2e/team/*"}
			config := framework.KubeletConfig{Gate: true, Exclude: list}
			if tc.pins {
				n.RuntimePins = list
			}
			var keeperRef string
			if tc.pins || tc.holder {
				n.KubeletBinary = filepath.Join(binDir, "stock", "kubelet")
				config = framework.KubeletConfig{}
			}
			if tc.holder {
				n.PodNetwork = true // the holder pod is not on the host network
				keeperRef = pushKeeperImage(t, n)
				// The images are pulled before the holder runs: none may go before it holds them.
				config.Customize = func(c *kubeletv1beta1.KubeletConfiguration) {
					c.ImageMinimumGCAge = metav1.Duration{Duration: time.Minute}
				}
			}
			pause := startRuntimeWithPause(t, n)
			// The sandbox image is pulled for pods only; pull it so that its pin is checked too.
			pull(t, n, pause.Ref)
			for _, name := range names {
				pull(t, n, images[name].Ref)
			}
			if tc.pins {
				pinned := pinnedNames(t, n, images)
				t.Logf("%s: the runtime reports pinned: %v", tc.name, pinned)
				if want := slices.Sorted(slices.Values(tc.want)); !slices.Equal(pinned, want) {
					t.Errorf("the runtime pins %v; want %v", pinned, want)
				}
			}
			kubeletConfig, err := n.WriteKubeletConfig("kubelet", config)
			if err != nil {
				t.Fatal(err)
			}
			if err := n.StartKubelet(kubeletConfig); err != nil {
				t.Fatal(err)
			}
			if tc.holder {
				holdAlternative(t, n, keeperRef, list)
			}
			if !waitDeleted(t, n, map[string]string{"other": images["other:1"].Ref}) {
				t.Fatalf("the kubelet did not collect the unlisted image; present: %v", keys(present(t, n)))
			}
			waitGCPasses(t, n, 2)
			p := present(t, n)
			var left []string
			for _, name := range names {
				if p[images[name].Ref] {
					left = append(left, name)
				}
			}
			t.Logf("%s: left after %d GC passes: %v", tc.name, n.GCPasses(), left)
			if !p[pause.Ref] && n.Runtime.PinsSandboxImage() {
				t.Errorf("the runtime's sandbox image %s was collected: the list displaced its pin", pause.Ref)
			}
			if !slices.Equal(left, tc.want) {
				t.Errorf("left after GC %v; want %v", left, tc.want)
			}
			// Kept, not removed and pulled back (image-keeper pulls what it wants).
			for _, name := range tc.want {
				if removed := removalsOf(n, runtimeImageID(t, n, images[name].Ref)); removed != 0 {
					t.Errorf("the kubelet removed %s (%d times) before it was left", name, removed)
				}
			}
		})
	}
}

// holdAlternative gives list to image-keeper's holder: holder-manifest refuses it, naming the
// repository and the prefix (an image volume mounts one pullable image); image-keeper then runs
// with the entries the holder accepts, and its static holder runs.
func holdAlternative(t *testing.T, n *framework.Node, keeperRef string, list []string) {
	t.Helper()
	manifest := []string{"holder-manifest", "--kind", "Pod", "--holder-image", keeperRef}
	for _, ref := range list {
		manifest = append(manifest, "--image", ref)
	}
	out, err := exec.Command(filepath.Join(binDir, "image-keeper"), manifest...).CombinedOutput()
	if err == nil {
		t.Fatalf("holder-manifest took the list %q:\n%s", list, out)
	}
	t.Logf("the holder refuses the list: %s", strings.TrimSpace(string(out)))
	for i, reason := range []string{"a repository without a tag or digest cannot be pulled", "a pattern with '*' cannot be pulled"} {
		if refused := list[2+i]; !strings.Contains(string(out), strconv.Quote(refused)+": "+reason) {
			t.Errorf("holder-manifest's refusal does not name %q with %q:\n%s", refused, reason, out)
		}
	}
	for _, accepted := range list[:2] {
		if strings.Contains(string(out), strconv.Quote(accepted)) {
			t.Errorf("holder-manifest refused %q, an exact reference:\n%s", accepted, out)
		}
	}
	config := filepath.Join(n.Root, "keeper.yaml")
	if err := framework.WriteKeeperConfig(config, list[:2]...); err != nil {
		t.Fatal(err)
	}
	startStaticHolderKeeper(t, n, config, keeperRef)
	waitHolderRunning(t, n, staticHolderName(t, keeperRef, list[:2]...))
}

// pinnedNames are the names (keys of images) of the images the runtime reports as pinned in CRI.
func pinnedNames(t *testing.T, n *framework.Node, images map[string]*framework.Image) []string {
	t.Helper()
	svc, err := n.ImageService()
	if err != nil {
		t.Fatal(err)
	}
	list, err := svc.ListImages(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	var pinned []string
	for name, img := range images {
		for _, ri := range list {
			if ri.Pinned && slices.Contains(ri.RepoTags, img.Ref) {
				pinned = append(pinned, name)
			}
		}
	}
	slices.Sort(pinned)
	return pinned
}
