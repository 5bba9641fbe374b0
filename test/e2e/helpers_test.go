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
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/kubelet-imagecache/kubelet-imagecache/test/e2e/framework"
)

// newNode starts a registry under a fresh temp root for a node that runs the runtime of
// E2E_RUNTIME (default containerd 2.4); see newBareNode for its logs and teardown.
func newNode(t *testing.T) *framework.Node {
	t.Helper()
	runtime, err := framework.RuntimeFromEnv(repoRoot)
	if err != nil {
		t.Fatal(err)
	}
	return newNodeOn(t, runtime)
}

// podRuntime is the runtime of E2E_RUNTIME for a scenario that runs pods; the test is skipped
// on a runtime that cannot start them here (CRI-O).
func podRuntime(t *testing.T) framework.Runtime {
	t.Helper()
	runtime, err := framework.RuntimeFromEnv(repoRoot)
	if err != nil {
		t.Fatal(err)
	}
	if !runtime.RunsPods() {
		t.Skipf("%s cannot start pod sandboxes on this machine", runtime.Name())
	}
	return runtime
}

// runtimes are the legs of a scenario: the named runtimes, or every runtime the framework
// knows (containerd 2.4, containerd 1.6, CRI-O).
func runtimes(t *testing.T, names ...string) []framework.Runtime {
	if len(names) == 0 {
		names = framework.RuntimeNames
	}
	var out []framework.Runtime
	for _, name := range names {
		r, err := framework.RuntimeNamed(repoRoot, name)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	return out
}

// legs runs f once per runtime (the named ones, or every runtime the framework knows), each in
// a subtest named for it. The legs run side by side (go test -parallel): each has a node of its
// own (runtime, registry, kubelet root, cgroup root, ports), and they spend most of their time
// waiting for the kubelet's GC passes.
func legs(t *testing.T, names []string, f func(t *testing.T, runtime framework.Runtime)) {
	for _, runtime := range runtimes(t, names...) {
		t.Run(runtime.Name(), func(t *testing.T) {
			t.Parallel()
			f(t, runtime)
		})
	}
}

// newNodeOn is newNode on a given runtime; before, if given, sets the node up before its
// registry starts.
func newNodeOn(t *testing.T, runtime framework.Runtime, before ...func(*framework.Node)) *framework.Node {
	t.Helper()
	n := newBareNode(t, runtime)
	for _, f := range before {
		f(n)
	}
	if err := n.StartRegistry(); err != nil {
		t.Fatal(err)
	}
	return n
}

// newBareNode prepares a node on runtime under a fresh temp root and starts nothing. On failure
// the components' logs are copied to _output/e2e-logs/<test>[/<node name>] (the node's name when
// it is not the default, as for the further nodes of a cluster) and their tails printed;
// everything the node started is stopped.
func newBareNode(t *testing.T, runtime framework.Runtime) *framework.Node {
	t.Helper()
	root, err := os.MkdirTemp("", "imagecache-e2e-")
	if err != nil {
		t.Fatal(err)
	}
	n, err := framework.NewNode(root, binDir, repoRoot, runtime)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	// Logs of an earlier failed run go now; components that outlive the node (a control plane)
	// add theirs beside the node's.
	dest := filepath.Join(logsDir, strings.ReplaceAll(t.Name(), "/", "_"))
	_ = os.RemoveAll(dest)
	t.Cleanup(func() {
		if t.Failed() {
			nodeDest := dest
			if n.Name != framework.NodeName {
				nodeDest = filepath.Join(dest, n.Name)
			}
			harvest(t, nodeDest, 25, n.Registry, n.RuntimeProcess, n.Kubelet, n.Keeper)
		}
		if err := n.Teardown(false); err != nil {
			t.Errorf("teardown: %v", err)
		}
		t.Logf("%s took %v", t.Name(), time.Since(start).Round(time.Second))
	})
	return n
}

// harvest keeps the logs of a failed test's components in dest and prints their tails.
func harvest(t *testing.T, dest string, lines int, procs ...*framework.Process) {
	t.Helper()
	tails, err := framework.HarvestLogs(dest, lines, procs...)
	t.Log(tails)
	if err != nil {
		t.Log(err)
	}
}

func push(t *testing.T, n *framework.Node, spec framework.ImageSpec) *framework.Image {
	t.Helper()
	img, err := framework.BuildAndPush(n.RegistryAddr, n.Sleeper, spec)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func startRuntime(t *testing.T, n *framework.Node, pause *framework.Image) {
	t.Helper()
	if err := n.StartRuntime(pause.Ref); err != nil {
		t.Fatal(err)
	}
}

// startRuntimeWithPause pushes the pause image (e2e/pause:1) and starts the node's runtime with
// it as the sandbox image.
func startRuntimeWithPause(t *testing.T, n *framework.Node) *framework.Image {
	t.Helper()
	pause := push(t, n, framework.ImageSpec{Repository: "e2e/pause", Tag: "1"})
	startRuntime(t, n, pause)
	return pause
}

func pull(t *testing.T, n *framework.Node, refs ...string) {
	t.Helper()
	for _, ref := range refs {
		if err := n.Pull(ref); err != nil {
			t.Fatalf("pull %s: %v", ref, err)
		}
	}
}

func present(t *testing.T, n *framework.Node) map[string]bool {
	t.Helper()
	p, err := n.Present()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func keys(m map[string]bool) []string {
	var out []string
	for k := range m {
		if !strings.HasPrefix(k, "sha256:") {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

// waitGCPasses waits until the kubelet has run `more` further DeleteUnusedImages passes.
func waitGCPasses(t *testing.T, n *framework.Node, more int) {
	t.Helper()
	target := n.GCPasses() + more
	if !framework.Eventually(time.Duration(more)*30*time.Second, time.Second, func() bool {
		kubeletRuns(t, n, "its image GC passes")
		return n.GCPasses() >= target
	}) {
		t.Fatalf("the kubelet ran %d image GC passes; waited for %d", n.GCPasses(), target)
	}
}

// kubeletRuns fails the test at once when the kubelet a wait depends on has exited, instead of
// letting the wait run out minutes later with a misleading message.
func kubeletRuns(t *testing.T, n *framework.Node, waitingFor string) {
	t.Helper()
	if n.Kubelet != nil && n.Kubelet.Exited() {
		t.Fatalf("the kubelet exited while the test waited for %s; its log:\n%s", waitingFor, framework.Tail(n.Kubelet, 20))
	}
}

// waitDeleted waits up to 2 minutes for the kubelet's GC to delete every image in refs.
func waitDeleted(t *testing.T, n *framework.Node, refs map[string]string) bool {
	t.Helper()
	return framework.Eventually(2*time.Minute, time.Second, func() bool {
		kubeletRuns(t, n, "its image GC to delete images")
		p := present(t, n)
		for _, ref := range refs {
			if p[ref] {
				return false
			}
		}
		return true
	})
}

func getURL(url string) (int, string) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

func runtimeImageID(t *testing.T, n *framework.Node, ref string) string {
	t.Helper()
	id, err := n.RuntimeImageID(ref)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// grepLines returns the lines of s that contain substr.
func grepLines(s, substr string) string {
	var out []string
	for _, line := range strings.Split(s, "\n") {
		if strings.Contains(line, substr) {
			out = append(out, line)
		}
	}
	return strings.Join(out, "\n")
}
