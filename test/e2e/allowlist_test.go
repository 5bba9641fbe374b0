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
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"k8s.io/utils/ptr"

	"github.com/kubelet-imagecache/kubelet-imagecache/pkg/explain"
	"github.com/kubelet-imagecache/kubelet-imagecache/test/e2e/framework"
)

// scenarioImages is the node of scenario 1: an image protected by each form of entry, and
// unprotected images next to them, each a near miss of one entry.
type scenarioImages struct {
	pause                                            *framework.Image
	exact, repo1, repo2, wild, digest, byID, labeled *framework.Image
	// midWild is kept by "<registry>/e2e/*/mid" (a '*' in the middle); midMiss is not.
	midWild, midMiss *framework.Image
	// globTag is kept by the tag glob "<registry>/e2e/glob:1.*"; globDigestOnly is the same
	// repository pulled by digest only, which a tag glob never matches; globOther is tag 2.0.
	globTag, globDigestOnly, globOther *framework.Image
	// repoDigest is kept by "sha256:<hex>" of its repo digest, as crictl images --digests shows it.
	repoDigest *framework.Image
	// tiered is kept by "e2e.kubelet-imagecache.io/tier in (edge),!e2e.kubelet-imagecache.io/deprecated";
	// deprecated has both labels and is not.
	tiered, deprecated  *framework.Image
	junk1, junk2, decoy *framework.Image
}

func (s *scenarioImages) protected() map[string]string {
	return map[string]string{
		"pause":       s.pause.Ref,
		"exact":       s.exact.Ref,
		"repo:1":      s.repo1.Ref,
		"repo:2":      s.repo2.Ref,
		"wild":        s.wild.Ref,
		"digest":      s.digest.DigestRef,
		"byID":        s.byID.Ref,
		"labeled":     s.labeled.Ref,
		"mid-wild":    s.midWild.Ref,
		"glob:1.2":    s.globTag.Ref,
		"repo-digest": s.repoDigest.DigestRef,
		"tiered":      s.tiered.Ref,
	}
}

func (s *scenarioImages) unprotected() map[string]string {
	return map[string]string{
		"junk:1":           s.junk1.Ref,
		"junk:2":           s.junk2.Ref,
		"decoy":            s.decoy.Ref,
		"mid-miss":         s.midMiss.Ref,
		"glob digest-only": s.globDigestOnly.DigestRef,
		"glob:2.0":         s.globOther.Ref,
		"deprecated":       s.deprecated.Ref,
	}
}

func buildScenario(t *testing.T, n *framework.Node) *scenarioImages {
	t.Helper()
	const label = "e2e.kubelet-imagecache.io/"
	s := &scenarioImages{
		pause:   push(t, n, framework.ImageSpec{Repository: "e2e/pause", Tag: "1"}),
		exact:   push(t, n, framework.ImageSpec{Repository: "e2e/exact", Tag: "1"}),
		repo1:   push(t, n, framework.ImageSpec{Repository: "e2e/repo", Tag: "1"}),
		repo2:   push(t, n, framework.ImageSpec{Repository: "e2e/repo", Tag: "2", Labels: map[string]string{"tag": "2"}}),
		wild:    push(t, n, framework.ImageSpec{Repository: "e2e/wild/a", Tag: "1"}),
		digest:  push(t, n, framework.ImageSpec{Repository: "e2e/digest", Tag: "1"}),
		byID:    push(t, n, framework.ImageSpec{Repository: "e2e/byid", Tag: "1"}),
		labeled: push(t, n, framework.ImageSpec{Repository: "e2e/labeled", Tag: "1", Labels: map[string]string{label + "keep": "true"}}),
		midWild: push(t, n, framework.ImageSpec{Repository: "e2e/team-a/mid", Tag: "1"}),
		midMiss: push(t, n, framework.ImageSpec{Repository: "e2e/team-a/mid-other", Tag: "1"}),
		globTag: push(t, n, framework.ImageSpec{Repository: "e2e/glob", Tag: "1.2"}),
		// Another image of the same repository, pulled by digest only.
		globDigestOnly: push(t, n, framework.ImageSpec{Repository: "e2e/glob", Tag: "untagged", Labels: map[string]string{"variant": "digest-only"}}),
		globOther:      push(t, n, framework.ImageSpec{Repository: "e2e/glob", Tag: "2.0"}),
		repoDigest:     push(t, n, framework.ImageSpec{Repository: "e2e/repodigest", Tag: "1"}),
		tiered:         push(t, n, framework.ImageSpec{Repository: "e2e/tiered", Tag: "1", Labels: map[string]string{label + "tier": "edge"}}),
		deprecated:     push(t, n, framework.ImageSpec{Repository: "e2e/tiered", Tag: "old", Labels: map[string]string{label + "tier": "edge", label + "deprecated": "true"}}),
		junk1:          push(t, n, framework.ImageSpec{Repository: "e2e/junk", Tag: "1"}),
		junk2:          push(t, n, framework.ImageSpec{Repository: "e2e/junk", Tag: "2", Labels: map[string]string{label + "keep": "false"}}),
		decoy:          push(t, n, framework.ImageSpec{Repository: "e2e/repo-decoy", Tag: "1"}),
	}
	startRuntime(t, n, s.pause)
	for _, ref := range s.protected() {
		pull(t, n, ref)
	}
	for _, ref := range s.unprotected() {
		pull(t, n, ref)
	}
	return s
}

func (s *scenarioImages) allowlist(reg string) framework.KubeletConfig {
	return framework.KubeletConfig{
		Gate: true,
		Exclude: []string{
			s.pause.Ref,           // exact tag
			s.exact.Ref,           // exact tag
			reg + "/e2e/repo",     // bare repository: both tags, not e2e/repo-decoy
			reg + "/e2e/wild/*",   // trailing wildcard
			s.digest.DigestRef,    // repo digest
			s.byID.ID,             // image ID
			reg + "/e2e/*/mid",    // wildcard in the middle, every tag and digest
			reg + "/e2e/glob:1.*", // tag glob: not the digest-only image, not 2.0
			s.repoDigest.Digest,   // sha256:<hex> of a repo digest
		},
		Selectors: []string{
			"e2e.kubelet-imagecache.io/keep=true",
			"e2e.kubelet-imagecache.io/tier in (edge),!e2e.kubelet-imagecache.io/deprecated",
		},
	}
}

// runScenario starts the kubelet with kc on a node built by buildScenario, waits until the
// images of gone are collected and three more GC passes have run, and reports any image of keep
// that was deleted or of gone that is back. It returns what is present at the end.
func runScenario(t *testing.T, n *framework.Node, kc framework.KubeletConfig, keep, gone map[string]string) map[string]bool {
	t.Helper()
	config, err := n.WriteKubeletConfig("kubelet", kc)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.StartKubelet(config); err != nil {
		t.Fatal(err)
	}
	if !waitDeleted(t, n, gone) {
		t.Fatalf("images not deleted; present: %v", keys(present(t, n)))
	}
	waitGCPasses(t, n, 3)
	p := present(t, n)
	for name, ref := range keep {
		if !p[ref] {
			t.Errorf("protected image %s (%s) was deleted", name, ref)
		}
	}
	for name, ref := range gone {
		if p[ref] {
			t.Errorf("unprotected image %s (%s) is still present", name, ref)
		}
	}
	return p
}

// Scenario 1: every protected image survives at least three GC passes under an always-crossed
// imagefs threshold, while the unprotected images and the near misses go; with the gate off
// (control) the protected images go too. The allowlist runs on containerd 2.4 and 1.6.
func TestAllowlistUnderPressure(t *testing.T) {
	t.Parallel()
	legs(t, nil, func(t *testing.T, runtime framework.Runtime) {
		n := newNodeOn(t, runtime)
		s := buildScenario(t, n)
		p := runScenario(t, n, s.allowlist(n.RegistryAddr), s.protected(), s.unprotected())
		if !strings.Contains(n.Kubelet.LogText(), `"Image garbage collection allowlist" repositoryPatterns=3 tagPatterns=3 digestPatterns=1 idPatterns=2 selectors=2 budgetPercent=100`) {
			t.Error("the kubelet did not log the allowlist at start-up")
		}
		t.Logf("after %d GC passes present: %v", n.GCPasses(), keys(p))
	})
	t.Run("control: gate off", func(t *testing.T) {
		t.Parallel()
		n := newNode(t)
		s := buildScenario(t, n)
		config, err := n.WriteKubeletConfig("kubelet", framework.KubeletConfig{})
		if err != nil {
			t.Fatal(err)
		}
		if err := n.StartKubelet(config); err != nil {
			t.Fatal(err)
		}
		// containerd 2.x pins its sandbox image (pinned_images.sandbox): the kubelet keeps it as
		// upstream does, with or without the allowlist.
		others := s.protected()
		delete(others, "pause")
		if !waitDeleted(t, n, others) {
			t.Fatalf("without the allowlist the kubelet kept images: %v", keys(present(t, n)))
		}
	})
}

// Scenario: imageGCExcludeBudgetPercent. On a 256 MiB image filesystem with a 10% budget, three
// allowlisted unused images of ~10 MiB do not fit: the one ranked last (none was used, one entry
// keeps all three: the greatest image ID) is collected like any other image, with an ImageGCExclusionOverBudget event; the two others stay.
// On containerd 2.4 and CRI-O (whose image filesystem is its storage root, measured through CRI
// ImageFsInfo as containerd's is).
func TestAllowlistBudget(t *testing.T) {
	t.Parallel()
	legs(t, []string{"containerd-2.4", "cri-o-1.34"}, allowlistBudget)
}

func allowlistBudget(t *testing.T, runtime framework.Runtime) {
	n := newNodeOn(t, runtime)
	if err := n.LimitImageFS(256 << 20); err != nil {
		t.Fatal(err)
	}
	var budgeted []*framework.Image
	for _, tag := range []string{"a", "b", "c"} {
		budgeted = append(budgeted, push(t, n, framework.ImageSpec{Repository: "e2e/budget", Tag: tag, PadBytes: 10 << 20}))
	}
	startRuntimeWithPause(t, n)
	config, err := n.WriteKubeletConfig("kubelet", framework.KubeletConfig{
		Gate:          true,
		Exclude:       []string{n.RegistryAddr + "/e2e/budget"},
		BudgetPercent: ptr.To[int32](10),
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := n.StartKubelet(config); err != nil {
		t.Fatal(err)
	}
	for _, img := range budgeted {
		pull(t, n, img.Ref)
	}
	// Two of the three fit 10% of 256 MiB. None has been used, and one entry keeps all three, so
	// the kubelet ranks them by image ID: the greatest is over the budget, whatever the order
	// they were pulled or detected in.
	slices.SortFunc(budgeted, func(a, b *framework.Image) int { return strings.Compare(a.ID, b.ID) })
	victim := budgeted[2]
	if !waitDeleted(t, n, map[string]string{"over budget": victim.Ref}) {
		t.Fatalf("the allowlisted image ranked over the budget (%s, %s) was not collected; present: %v", victim.Ref, victim.ID, keys(present(t, n)))
	}
	waitGCPasses(t, n, 2)
	p := present(t, n)
	for _, img := range budgeted[:2] {
		if !p[img.Ref] {
			t.Errorf("%s is within the budget but was deleted", img.Ref)
		}
	}
	if n.Kubelet.CountInLog("ImageGCExclusionOverBudget") == 0 {
		t.Error("no ImageGCExclusionOverBudget event in the kubelet's log")
	}
	if n.Kubelet.CountInLog(`"Image garbage collection allowlist is over its budget" images=1`) == 0 {
		t.Error("the kubelet did not log that the allowlist is over its budget by one image")
	}

	// explain reads the image filesystem's capacity as the kubelet does and applies the same
	// budget rule: the two images left fit 10% of 256 MiB; with 5% at least one must go.
	explained := func(config string) *explain.Budget {
		t.Helper()
		out, stderr, code := runExplain(t, n, "", "--kubelet-config", config, "-o", "json")
		var r explain.Report
		if err := json.Unmarshal([]byte(out), &r); code != 0 || err != nil || r.Budget == nil {
			t.Fatalf("explain: exit %d, %v, %s\n%s", code, err, stderr, out)
		}
		return r.Budget
	}
	if b := explained(config); b.CapacityBytes != 256<<20 || b.Bytes != (256<<20)/10 || b.Over() || b.KeptBytes < 20<<20 {
		t.Errorf("explain's budget with 10%%: %+v; want the 256 MiB capacity, within budget", b)
	}
	tight, err := n.WriteKubeletConfig("kubelet-tight", framework.KubeletConfig{
		Gate:          true,
		Exclude:       []string{n.RegistryAddr + "/e2e/budget"},
		BudgetPercent: ptr.To[int32](5),
	})
	if err != nil {
		t.Fatal(err)
	}
	if b := explained(tight); !b.Over() || b.AtLeast != 1 {
		t.Errorf("explain's budget with 5%%: %+v; want over, at least one image collected", b)
	}
}
