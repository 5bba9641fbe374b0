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

// End-to-end tests on a real node: Debian's containerd and runc, Debian's docker-registry on
// loopback, the patched kubelet in standalone mode and image-keeper. Run with `make e2e`.
package e2e

import (
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kubelet-imagecache/kubelet-imagecache/test/e2e/framework"
)

// The kubelets of the other series (hack/lib.sh SERIES), built by make e2e: the upstream tier
// alone, what docs/kep proposes, and upstream as released, the downgrade target.
func upstreamTierKubelet() string { return filepath.Join(binDir, "upstream-tier", "kubelet") }
func stockKubelet() string        { return filepath.Join(binDir, "stock", "kubelet") }

// TestUpstreamTier runs scenario 1 on the upstream tier alone (patches 0001-0004, no fork
// extras) on containerd 2.4, with the fork's config: every pattern form keeps its images under
// pressure, as in the fork. imageGCExcludeSelectors is a field that kubelet does not know: its
// v1beta1 decoding falls back to lenient and warns, and the images only selectors keep are
// collected like the unprotected ones. This is what a node moving from the fork to a kubelet
// built from the upstream proposal sees.
func TestUpstreamTier(t *testing.T) {
	t.Parallel()
	n := newNode(t)
	n.KubeletBinary = upstreamTierKubelet()
	s := buildScenario(t, n)
	keep, gone := s.protected(), s.unprotected()
	for _, name := range []string{"labeled", "tiered"} {
		gone[name+" (selector only)"] = keep[name]
		delete(keep, name)
	}

	// The fork's wildcards stop the upstream tier's kubelet, naming each entry.
	full := s.allowlist(n.RegistryAddr)
	config, err := n.WriteKubeletConfig("kubelet-fork-wildcards", full)
	if err != nil {
		t.Fatal(err)
	}
	p, err := n.RunKubelet("kubelet-fork-wildcards", config)
	if err != nil {
		t.Fatal(err)
	}
	if exited, exitErr := p.Wait(60 * time.Second); !exited || exitErr == nil {
		p.Stop(5 * time.Second)
		t.Fatalf("the upstream tier's kubelet started with the fork's wildcards (exited %v, %v)", exited, exitErr)
	}
	for _, entry := range []string{n.RegistryAddr + "/e2e/*/mid", n.RegistryAddr + "/e2e/glob:1.*"} {
		if want := `\"` + entry + `\": '*' is allowed only as the whole last path component after a registry host`; !strings.Contains(p.LogText(), want) {
			t.Errorf("the upstream tier's kubelet error does not contain %s:\n%s", want, framework.Tail(p, 5))
		}
	}

	// Rewritten in the tier's forms, the list keeps what the fork's kept, selectors aside.
	tier := full
	tier.Exclude = slices.Clone(full.Exclude)
	for i, entry := range tier.Exclude {
		switch entry {
		case n.RegistryAddr + "/e2e/*/mid":
			tier.Exclude[i] = n.RegistryAddr + "/e2e/team-a/mid"
		case n.RegistryAddr + "/e2e/glob:1.*":
			tier.Exclude[i] = s.globTag.Ref
		}
	}
	runScenario(t, n, tier, keep, gone)
	log := n.Kubelet.LogText()
	for _, want := range []string{
		`"Using lenient decoding as strict decoding failed"`,
		`unknown field \"imageGCExcludeSelectors\"`,
		`"Image garbage collection allowlist" repositoryPatterns=3 tagPatterns=3 digestPatterns=1 idPatterns=2 budgetPercent=100`,
	} {
		if !strings.Contains(log, want) {
			t.Errorf("the upstream tier's kubelet log has no %s", want)
		}
	}
	if !regexp.MustCompile(`"Kubelet version" kubeletVersion="v1\.37\.2-imagecache\.\d+-upstream-tier"`).MatchString(log) {
		t.Error("the kubelet's log does not show the upstream tier's version (v1.37.2-imagecache.<n>-upstream-tier)")
	}
}

// TestDowngradeUpgrade is the upgrade -> downgrade -> upgrade path of the KEP's Production
// Readiness Review, on one node (containerd 2.4), between the upstream tier and upstream
// v1.37.2 as released:
//  1. the upstream tier with the gate and imageGCExclude keeps the listed image;
//  2. v1.37.2 with the same config refuses to start: the gate is unknown to it;
//  3. v1.37.2 with the gate removed and the field left starts, ignores the field with a
//     warning (lenient decoding), and collects the image the list kept;
//  4. the upstream tier again: the list applies from its first pass, and what went meanwhile is
//     not restored until pulled again.
func TestDowngradeUpgrade(t *testing.T) {
	t.Parallel()
	n := newNode(t)
	kept := push(t, n, framework.ImageSpec{Repository: "e2e/kept", Tag: "1"})
	junk1 := push(t, n, framework.ImageSpec{Repository: "e2e/junk", Tag: "1"})
	junk2 := push(t, n, framework.ImageSpec{Repository: "e2e/junk", Tag: "2"})
	pause := startRuntimeWithPause(t, n)
	pull(t, n, pause.Ref, kept.Ref, junk1.Ref)
	withGate, err := n.WriteKubeletConfig("with-gate", framework.KubeletConfig{Gate: true, Exclude: []string{kept.Ref}})
	if err != nil {
		t.Fatal(err)
	}
	noGate, err := n.WriteKubeletConfig("no-gate", framework.KubeletConfig{Exclude: []string{kept.Ref}})
	if err != nil {
		t.Fatal(err)
	}

	t.Log("1. upstream tier, gate and imageGCExclude")
	n.KubeletBinary = upstreamTierKubelet()
	keeps(t, n, withGate, kept, junk1)
	n.StopKubelet()

	t.Log("2. v1.37.2 with the same config")
	n.KubeletBinary = stockKubelet()
	p, err := n.RunKubelet("kubelet-stock-with-gate", withGate)
	if err != nil {
		t.Fatal(err)
	}
	exited, exitErr := p.Wait(60 * time.Second)
	if !exited {
		p.Stop(5 * time.Second)
		t.Fatal("v1.37.2 kept running with featureGates.ImageGCExclusion set")
	}
	if exitErr == nil || !strings.Contains(p.LogText(), "unrecognized feature gate: ImageGCExclusion") {
		t.Fatalf("v1.37.2 with featureGates.ImageGCExclusion: exit %v, want an unrecognized feature gate error:\n%s", exitErr, framework.Tail(p, 5))
	}
	if !present(t, n)[kept.Ref] {
		t.Fatal("the kept image went while no kubelet ran")
	}

	t.Log("3. v1.37.2, gate removed, imageGCExclude left")
	if err := n.StartKubelet(noGate); err != nil {
		t.Fatal(err)
	}
	if !waitDeleted(t, n, map[string]string{"kept": kept.Ref}) {
		t.Fatalf("v1.37.2 did not collect the image imageGCExclude listed; present: %v", keys(present(t, n)))
	}
	log := n.Kubelet.LogText()
	for _, want := range []string{`"Using lenient decoding as strict decoding failed"`, `unknown field \"imageGCExclude\"`, `"Kubelet version" kubeletVersion="v1.37.2"`} {
		if !strings.Contains(log, want) {
			t.Errorf("v1.37.2's log has no %s", want)
		}
	}
	n.StopKubelet()

	t.Log("4. upstream tier again")
	pull(t, n, junk2.Ref)
	n.KubeletBinary = upstreamTierKubelet()
	if err := n.StartKubelet(withGate); err != nil {
		t.Fatal(err)
	}
	if !waitDeleted(t, n, map[string]string{"junk:2": junk2.Ref}) {
		t.Fatalf("the upstream tier did not collect junk:2; present: %v", keys(present(t, n)))
	}
	if present(t, n)[kept.Ref] {
		t.Fatal("the image v1.37.2 collected is back without a pull")
	}
	pull(t, n, kept.Ref)
	waitGCPasses(t, n, 3)
	if !present(t, n)[kept.Ref] {
		t.Error("the upstream tier collected the listed image after the upgrade")
	}
}

// keeps starts the kubelet with config and waits until it has collected junk and run two more
// GC passes, with kept still present.
func keeps(t *testing.T, n *framework.Node, config string, kept, junk *framework.Image) {
	t.Helper()
	if err := n.StartKubelet(config); err != nil {
		t.Fatal(err)
	}
	if !waitDeleted(t, n, map[string]string{"junk": junk.Ref}) {
		t.Fatalf("%s not collected; present: %v", junk.Ref, keys(present(t, n)))
	}
	waitGCPasses(t, n, 2)
	if !present(t, n)[kept.Ref] {
		t.Fatalf("%s, listed in imageGCExclude, was collected", kept.Ref)
	}
}
