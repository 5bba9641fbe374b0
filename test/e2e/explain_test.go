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
	"bytes"
	"encoding/json"
	"errors"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kubelet-imagecache/kubelet-imagecache/pkg/explain"
	"github.com/kubelet-imagecache/kubelet-imagecache/test/e2e/framework"
)

// runExplain runs `image-keeper explain` and returns its stdout, stderr and exit status.
func runExplain(t *testing.T, n *framework.Node, stdin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(filepath.Join(n.Bin, "image-keeper"), append([]string{"explain", "--runtime-endpoint", n.RuntimeEndpoint()}, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var exitErr *exec.ExitError
	switch {
	case errors.As(err, &exitErr):
		code = exitErr.ExitCode()
	case err != nil:
		t.Fatal(err)
	}
	return out.String(), errOut.String(), code
}

// `image-keeper explain` predicts, before any GC pass, what the kubelet's image GC keeps and
// deletes on the scenario node (every kind of entry, near misses, selectors, the pinned sandbox
// image, and an image a running static pod uses); then the kubelet runs under an always-crossed
// imagefs threshold and exactly the images predicted collectable are deleted. --strict fails
// on an entry with a typo, naming it. On containerd 2.4 and CRI-O (which lists image IDs
// without "sha256:"; it runs no pods here, so no image is in use there).
func TestExplainPredictsGC(t *testing.T) {
	t.Parallel()
	legs(t, []string{"containerd-2.4", "cri-o-1.34"}, explainPredictsGC)
}

func explainPredictsGC(t *testing.T, runtime framework.Runtime) {
	n := newNodeOn(t, runtime)
	s := buildScenario(t, n)
	al := s.allowlist(n.RegistryAddr)
	calm := al
	calm.NoPressure = true
	quiet, err := n.WriteKubeletConfig("kubelet-quiet", calm)
	if err != nil {
		t.Fatal(err)
	}
	pressure, err := n.WriteKubeletConfig("kubelet-pressure", al)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.StartKubelet(quiet); err != nil {
		t.Fatal(err)
	}
	var inUse *framework.Image // unprotected, but a running container uses it
	if runtime.RunsPods() {
		inUse = s.junk1
		if err := n.WriteStaticPod("uses-junk", inUse.Ref, "IfNotPresent"); err != nil {
			t.Fatal(err)
		}
		if !framework.Eventually(time.Minute, 500*time.Millisecond, func() bool { ok, _ := n.ContainerRunning("uses-junk"); return ok }) {
			t.Fatalf("the static pod did not start; kubelet: %s", framework.Tail(n.Kubelet, 20))
		}
	}

	out, stderr, code := runExplain(t, n, "", "--kubelet-config", pressure, "-o", "json", "--strict")
	if code != 0 {
		t.Fatalf("explain --strict exited %d: %s\n%s", code, stderr, out)
	}
	var report explain.Report
	if err := json.Unmarshal([]byte(out), &report); err != nil {
		t.Fatalf("explain -o json: %v\n%s", err, out)
	}
	decision := map[string]explain.Explanation{} // by every name of the image
	for _, x := range report.Images {
		for _, name := range append(append([]string{x.ID}, x.RepoTags...), x.RepoDigests...) {
			decision[name] = x
		}
	}
	// The prediction agrees with what the scenario was built to show.
	for name, ref := range s.protected() {
		x := decision[ref]
		want := explain.Kept
		if name == "pause" && n.Runtime.PinsSandboxImage() {
			want = explain.Pinned
		}
		if x.Decision != want || (want == explain.Kept && x.Entry == "") {
			t.Errorf("%s (%s): explain says %q by %q; want %q", name, ref, x.Decision, x.Entry, want)
		}
	}
	for name, ref := range s.unprotected() {
		want := explain.Collectable
		if inUse != nil && ref == inUse.Ref {
			want = explain.InUse
		}
		if x := decision[ref]; x.Decision != want {
			t.Errorf("%s (%s): explain says %q by %q; want %q", name, ref, x.Decision, x.Entry, want)
		}
	}
	if x := decision[s.labeled.Ref]; x.Field != "imageGCExcludeSelectors" || !strings.Contains(x.MatchedBy, "keep=true") {
		t.Errorf("the labelled image is kept by %s %q (%q); want the selector, by its label", x.Field, x.Entry, x.MatchedBy)
	}

	// Now the kubelet decides: under pressure, exactly the collectable images go.
	n.StopKubelet()
	if err := n.StartKubelet(pressure); err != nil {
		t.Fatal(err)
	}
	collectable := map[string]string{}
	for _, x := range report.Images {
		if x.Decision == explain.Collectable {
			collectable[x.Name()] = x.ID
		}
	}
	if len(collectable) == 0 {
		t.Fatal("explain predicted nothing collectable")
	}
	if !waitDeleted(t, n, collectable) {
		t.Errorf("images explain called collectable are still there: %v", keys(present(t, n)))
	}
	waitGCPasses(t, n, 3)
	p := present(t, n)
	for _, x := range report.Images {
		if x.Decision != explain.Collectable && !p[x.ID] {
			t.Errorf("%s: explain said %q, but the kubelet deleted it", x.Name(), x.Decision)
		}
	}
	t.Logf("explain predicted %d collectable of %d images; after %d GC passes exactly those are gone", len(collectable), len(report.Images), n.GCPasses())

	// A typo in an entry: --strict exits 3 and names it; the table says it matches nothing.
	typo := al
	typo.Exclude = append(append([]string{}, al.Exclude...), strings.Replace(n.RegistryAddr, "127.0.0.1", "127.0.0.2", 1)+"/e2e/exact:1")
	typoConfig, err := n.WriteKubeletConfig("kubelet-typo", typo)
	if err != nil {
		t.Fatal(err)
	}
	out, stderr, code = runExplain(t, n, "", "--kubelet-config", typoConfig, "--strict")
	if code != 3 || !strings.Contains(stderr, "127.0.0.2") || !strings.Contains(out, "matches nothing") {
		t.Errorf("explain --strict with a typo: exit %d, stderr %q; want 3 naming the entry\n%s", code, stderr, out)
	}
}
