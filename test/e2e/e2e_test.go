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
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"sigs.k8s.io/yaml"

	"github.com/kubelet-imagecache/kubelet-imagecache/pkg/explain"
	"github.com/kubelet-imagecache/kubelet-imagecache/pkg/keeper"
	"github.com/kubelet-imagecache/kubelet-imagecache/pkg/kubelet/images/allowlist"
	"github.com/kubelet-imagecache/kubelet-imagecache/test/e2e/framework"
)

var repoRoot, binDir, logsDir string

func TestMain(m *testing.M) {
	wd, _ := os.Getwd()
	repoRoot = filepath.Join(wd, "..", "..")
	binDir = envOr("E2E_BIN", filepath.Join(repoRoot, "_output", "bin"))
	logsDir = envOr("E2E_LOGS", filepath.Join(repoRoot, "_output", "e2e-logs"))
	for _, bin := range []string{"kubelet", "image-keeper"} {
		if _, err := os.Stat(filepath.Join(binDir, bin)); err != nil {
			fmt.Fprintf(os.Stderr, "e2e: %s not built (%v); run make e2e\n", bin, err)
			os.Exit(1)
		}
	}
	os.Exit(m.Run())
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

// newNode starts a registry under a fresh temp root for a node that runs the containerd of
// E2E_RUNTIME (default containerd 2.4). On failure the components' logs are copied to
// _output/e2e-logs/<test> and their tails printed; everything is stopped.
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
		t.Skipf("%s cannot start pod sandboxes on this machine", runtime.Name)
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

// newNodeOn is newNode on a given containerd; before, if given, sets the node up before its
// registry starts.
func newNodeOn(t *testing.T, runtime framework.Runtime, before ...func(*framework.Node)) *framework.Node {
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
			_ = os.MkdirAll(dest, 0o755)
			for _, p := range []*framework.Process{n.Registry, n.RuntimeProcess, n.Kubelet, n.Keeper} {
				if p == nil {
					continue
				}
				data, _ := os.ReadFile(p.Log)
				_ = os.WriteFile(filepath.Join(dest, filepath.Base(p.Log)), data, 0o644)
				t.Logf("--- tail of %s (full log in %s):\n%s", p.Name, dest, framework.Tail(p, 25))
			}
		}
		if err := n.Teardown(false); err != nil {
			t.Errorf("teardown: %v", err)
		}
		t.Logf("%s took %v", t.Name(), time.Since(start).Round(time.Second))
	})
	for _, f := range before {
		f(n)
	}
	if err := n.StartRegistry(); err != nil {
		t.Fatal(err)
	}
	return n
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
	if !framework.Eventually(time.Duration(more)*30*time.Second, time.Second, func() bool { return n.GCPasses() >= target }) {
		t.Fatalf("the kubelet ran %d image GC passes; waited for %d", n.GCPasses(), target)
	}
}

// waitDeleted waits up to 2 minutes for the kubelet's GC to delete every image in refs.
func waitDeleted(t *testing.T, n *framework.Node, refs map[string]string) bool {
	t.Helper()
	return framework.Eventually(2*time.Minute, time.Second, func() bool {
		p := present(t, n)
		for _, ref := range refs {
			if p[ref] {
				return false
			}
		}
		return true
	})
}

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
	for _, runtime := range runtimes(t) {
		t.Run(runtime.Name, func(t *testing.T) {
			n := newNodeOn(t, runtime)
			s := buildScenario(t, n)
			p := runScenario(t, n, s.allowlist(n.RegistryAddr), s.protected(), s.unprotected())
			if !strings.Contains(n.Kubelet.LogText(), `"Image garbage collection allowlist" repositoryPatterns=3 tagPatterns=3 digestPatterns=1 idPatterns=2 selectors=2 budgetPercent=100`) {
				t.Error("the kubelet did not log the allowlist at start-up")
			}
			t.Logf("after %d GC passes present: %v", n.GCPasses(), keys(p))
		})
	}
	t.Run("control: gate off", func(t *testing.T) {
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

// Scenario 2: a bad allowlist stops the kubelet at start-up, naming the entry.
func TestBadConfigurationStopsKubelet(t *testing.T) {
	root := t.TempDir()
	n, err := framework.NewNode(root, binDir, repoRoot, framework.Runtime{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		kc   framework.KubeletConfig
		want string
	}{
		{"empty entry", framework.KubeletConfig{Gate: true, Exclude: []string{"nginx", ""}}, `imageGCExclude[1] \"\": must not be empty`},
		{"uppercase", framework.KubeletConfig{Gate: true, Exclude: []string{"ghcr.io/Acme/app"}}, `imageGCExclude[0] \"ghcr.io/Acme/app\": repository name must be lowercase`},
		{"bad digest", framework.KubeletConfig{Gate: true, Exclude: []string{"nginx@sha256:abc"}}, `imageGCExclude[0] \"nginx@sha256:abc\": invalid digest`},
		{"bad image ID", framework.KubeletConfig{Gate: true, Exclude: []string{"sha256:xyz"}}, `imageGCExclude[0] \"sha256:xyz\": image ID must be`},
		{"only a wildcard", framework.KubeletConfig{Gate: true, Exclude: []string{"*"}}, `imageGCExclude[0] \"*\": its repository part has no literal name, so it would keep (nearly) every image; to turn off disk-usage image garbage collection set imageGCHighThresholdPercent: 100`},
		{"catch-all", framework.KubeletConfig{Gate: true, Exclude: []string{"*/*"}}, `imageGCExclude[0] \"*/*\": its repository part has no literal name`},
		{"registry host wildcard", framework.KubeletConfig{Gate: true, Exclude: []string{"*.io/*"}}, `imageGCExclude[0] \"*.io/*\": a '*' in the registry host \"*.io\" must leave at least 2 labels literal`},
		{"bare registry host", framework.KubeletConfig{Gate: true, Exclude: []string{"localhost:5000"}}, `imageGCExclude[0] \"localhost:5000\": a registry host alone names no image; to keep every image from it write \"localhost:5000/*\"`},
		{"duplicate", framework.KubeletConfig{Gate: true, Exclude: []string{"nginx", "docker.io/library/nginx"}}, `imageGCExclude[1] \"docker.io/library/nginx\": means the same as imageGCExclude[0] \"nginx\"`},
		{"negative-only selector", framework.KubeletConfig{Gate: true, Selectors: []string{"!deprecated"}}, `imageGCExcludeSelectors[0] \"!deprecated\": requires no label to be present`},
		{"budget out of range", framework.KubeletConfig{Gate: true, Exclude: []string{"nginx"}, Extra: "imageGCExcludeBudgetPercent: 0\n"}, "imageGCExcludeBudgetPercent 0 must be between 1 and 100"},
		{"bad selector", framework.KubeletConfig{Gate: true, Selectors: []string{"tier in (edge"}}, `imageGCExcludeSelectors[0] \"tier in (edge\"`},
		{"empty selector", framework.KubeletConfig{Gate: true, Selectors: []string{" "}}, `imageGCExcludeSelectors[0] \" \": must not be empty`},
		{"contradictory selector", framework.KubeletConfig{Gate: true, Selectors: []string{"a=1,a=2"}}, `imageGCExcludeSelectors[0] \"a=1,a=2\": selects no image`},
		{"eviction policy typo", framework.KubeletConfig{Gate: true, Exclude: []string{"nginx"}, Extra: "imageGCExcludeEvictionPolicy: evictpods\n"}, `imageGCExcludeEvictionPolicy \"evictpods\" must be \"RemoveKeptImages\" (the default: kept images go last, and only when that relieves the pressure) or \"EvictPods\"`},
		{"eviction policy without the gate", framework.KubeletConfig{Exclude: nil, Extra: "imageGCExcludeEvictionPolicy: EvictPods\n"}, "ImageGCExclusion feature gate is required for Kubelet configuration option imageGCExcludeEvictionPolicy"},
		{"gate off", framework.KubeletConfig{Exclude: []string{"nginx"}}, "ImageGCExclusion feature gate is required"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			config, err := n.WriteKubeletConfig(strings.ReplaceAll(tc.name, " ", "-"), tc.kc)
			if err != nil {
				t.Fatal(err)
			}
			p, err := n.RunKubelet("kubelet-"+strings.ReplaceAll(tc.name, " ", "-"), config)
			if err != nil {
				t.Fatal(err)
			}
			exited, exitErr := p.Wait(60 * time.Second)
			if !exited {
				p.Stop(5 * time.Second)
				t.Fatalf("the kubelet kept running with a bad config")
			}
			if exitErr == nil {
				t.Fatalf("the kubelet exited 0 with a bad config")
			}
			if log := p.LogText(); !strings.Contains(log, tc.want) {
				t.Errorf("the kubelet's error does not contain %q:\n%s", tc.want, framework.Tail(p, 5))
			}
		})
	}
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

// keeperNode is a node on runtime with the kubelet (allowlist on, protecting e2e/kept) and
// image-keeper keeping e2e/kept:1 and, unprotected, e2e/unprotected:1.
func keeperNode(t *testing.T, runtime framework.Runtime) (n *framework.Node, pause, kept, unprotected *framework.Image) {
	t.Helper()
	n = newNodeOn(t, runtime)
	pause = push(t, n, framework.ImageSpec{Repository: "e2e/pause", Tag: "1"})
	kept = push(t, n, framework.ImageSpec{Repository: "e2e/kept", Tag: "1"})
	unprotected = push(t, n, framework.ImageSpec{Repository: "e2e/unprotected", Tag: "1"})
	startRuntime(t, n, pause)
	pull(t, n, pause.Ref)
	config, err := n.WriteKubeletConfig("kubelet", framework.KubeletConfig{Gate: true, Exclude: []string{pause.Ref, kept.Ref}})
	if err != nil {
		t.Fatal(err)
	}
	if err := n.StartKubelet(config); err != nil {
		t.Fatal(err)
	}
	if err := n.StartKeeper("--kubelet-config", config, "--image", kept.Ref, "--image", unprotected.Ref, "--interval", "2s", "--max-backoff", "2s"); err != nil {
		t.Fatal(err)
	}
	if !framework.Eventually(60*time.Second, 500*time.Millisecond, func() bool { return present(t, n)[kept.Ref] }) {
		t.Fatalf("image-keeper did not pull %s", kept.Ref)
	}
	return n, pause, kept, unprotected
}

// keeperLegs are the runtimes of the image-keeper scenarios that need no pod: containerd 2.4 and
// CRI-O. (containerd 1.6 answers the same CRI image calls; its leg of TestKeeperPrivateRegistry
// pulls, fails and removes through image-keeper there.)
var keeperLegs = []string{"containerd-2.4", "cri-o-1.34"}

// Scenario 3: image-keeper restores an image removed behind its back, and warns about a wanted
// image the kubelet's allowlist does not protect.
func TestKeeperRestores(t *testing.T) {
	for _, runtime := range runtimes(t, keeperLegs...) {
		t.Run(runtime.Name, func(t *testing.T) { keeperRestores(t, runtime) })
	}
}

func keeperRestores(t *testing.T, runtime framework.Runtime) {
	n, _, kept, unprotected := keeperNode(t, runtime)
	if !strings.Contains(n.Keeper.LogText(), "wanted image is not protected by the kubelet's allowlist") || !strings.Contains(n.Keeper.LogText(), unprotected.Ref) {
		t.Errorf("no warning about %s, which the allowlist does not protect:\n%s", unprotected.Ref, framework.Tail(n.Keeper, 10))
	}
	_, before := getURL("http://" + n.KeeperAddr + "/metrics")
	if err := n.RemoveImage(kept.Ref); err != nil {
		t.Fatal(err)
	}
	removed := time.Now()
	if !framework.Eventually(2*time.Second+15*time.Second, 200*time.Millisecond, func() bool { return present(t, n)[kept.Ref] }) {
		t.Fatalf("%s not restored within interval + 15s", kept.Ref)
	}
	t.Logf("restored %s %v after crictl rmi", kept.Ref, time.Since(removed).Round(100*time.Millisecond))
	// The image shows up in containerd just before image-keeper counts its pull.
	var after string
	if !framework.Eventually(5*time.Second, 100*time.Millisecond, func() bool {
		_, after = getURL("http://" + n.KeeperAddr + "/metrics")
		return pullsOK(after) > pullsOK(before)
	}) {
		t.Errorf("image_keeper_pulls_total{result=\"success\"} did not grow: %v -> %v", pullsOK(before), pullsOK(after))
	}
	// `image-keeper status`, against the daemon and against the runtime directly.
	for _, args := range [][]string{
		{"status", "--server", "http://" + n.KeeperAddr},
		{"status", "--runtime-endpoint", n.RuntimeEndpoint(), "--image", kept.Ref, "--kubelet-config", filepath.Join(n.Root, "kubelet", "kubelet.yaml")},
	} {
		out, err := exec.Command(filepath.Join(binDir, "image-keeper"), args...).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "PROTECTED") || !strings.Contains(string(out), kept.Ref) || !strings.Contains(string(out), "yes: "+kept.Ref) {
			t.Errorf("image-keeper %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	code, body := getURL("http://" + n.KeeperAddr + "/status")
	var status keeper.Status
	if err := json.Unmarshal([]byte(body), &status); code != http.StatusOK || err != nil {
		t.Fatalf("/status = %d, %v:\n%s", code, err, body)
	}
	protection := map[string]keeper.Protection{}
	for _, img := range status.Images {
		protection[img.Reference] = img.Protected
	}
	if p := protection[kept.Ref]; p.State != keeper.Protected || p.Entry != kept.Ref {
		t.Errorf("/status: %s protected %+v; want yes by its own entry", kept.Ref, p)
	}
	if p := protection[unprotected.Ref]; p.State != keeper.Unprotected || !strings.Contains(p.Reason, "the kubelet's garbage collection would delete it") {
		t.Errorf("/status: %s protected %+v; want no", unprotected.Ref, p)
	}
}

// pullsOK reads image_keeper_pulls_total{result="success"}, -1 if absent.
func pullsOK(metrics string) float64 {
	for _, line := range strings.Split(metrics, "\n") {
		if v, ok := strings.CutPrefix(line, `image_keeper_pulls_total{result="success"} `); ok {
			if f, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil {
				return f
			}
		}
	}
	return -1
}

// Scenario 4: a static pod whose image is kept starts without a request to the registry, and
// with the registry down; a pod whose image was never pulled goes to image pull back-off.
func TestOfflineEdgeNode(t *testing.T) {
	n, _, kept, _ := keeperNode(t, podRuntime(t))
	never := push(t, n, framework.ImageSpec{Repository: "e2e/never", Tag: "1"})

	// Registry up: IfNotPresent uses the cached image; the registry's access log stays silent.
	registryLog := n.Registry.LogText()
	if !strings.Contains(registryLog, "/v2/e2e/kept/manifests/") {
		t.Fatal("the registry's access log does not show image-keeper's pull: it cannot show the absence of one either")
	}
	registryLogBefore := len(registryLog)
	if err := n.WriteStaticPod("cached-online", kept.Ref, "IfNotPresent"); err != nil {
		t.Fatal(err)
	}
	if !framework.Eventually(2*time.Minute, 200*time.Millisecond, func() bool { ok, _ := n.ContainerRunning("cached-online"); return ok }) {
		t.Fatal("static pod with the kept image did not start")
	}
	if log := n.Registry.LogText()[registryLogBefore:]; strings.Contains(log, "/v2/e2e/kept/") {
		t.Errorf("the registry was asked for the kept image although it was cached:\n%s", log)
	}

	// Registry down: the edge node is offline.
	n.StopRegistry()
	if err := n.WriteStaticPod("cached", kept.Ref, "IfNotPresent"); err != nil {
		t.Fatal(err)
	}
	if err := n.WriteStaticPod("uncached", never.Ref, "IfNotPresent"); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if !framework.Eventually(2*time.Minute, 200*time.Millisecond, func() bool { ok, _ := n.ContainerRunning("cached"); return ok }) {
		t.Fatalf("static pod with the kept image did not start offline")
	}
	t.Logf("cached pod running %v after its manifest was written, registry down", time.Since(start).Round(100*time.Millisecond))
	if !framework.Eventually(2*time.Minute, time.Second, func() bool {
		return strings.Contains(n.Kubelet.LogText(), "Back-off pulling image") && strings.Contains(n.Kubelet.LogText(), never.Ref)
	}) {
		t.Errorf("the never-pulled image did not go to image pull back-off")
	}
	if running, _ := n.ContainerRunning("uncached"); running {
		t.Errorf("a pod whose image was never pulled is running")
	}
}

// Scenario 5: image-keeper recovers from a runtime restart by itself, and the allowlist still
// protects after a kubelet restart.
func TestRestarts(t *testing.T) {
	for _, runtime := range runtimes(t, keeperLegs...) {
		t.Run(runtime.Name, func(t *testing.T) { restarts(t, runtime) })
	}
}

func restarts(t *testing.T, runtime framework.Runtime) {
	n, pause, kept, _ := keeperNode(t, runtime)
	keeperPID := n.Keeper.PID()
	if !framework.Eventually(30*time.Second, 500*time.Millisecond, func() bool {
		code, body := getURL("http://" + n.KeeperAddr + "/readyz")
		return code == http.StatusOK || strings.Contains(body, "e2e/unprotected") // may be mid-fight with GC
	}) {
		t.Fatal("image-keeper never reported its images")
	}
	n.StopRuntime()
	if !framework.Eventually(30*time.Second, 500*time.Millisecond, func() bool {
		_, body := getURL("http://" + n.KeeperAddr + "/readyz")
		return strings.Contains(body, "container runtime unreachable")
	}) {
		t.Fatal("image-keeper did not notice the runtime going away")
	}
	if err := n.StartRuntime(pause.Ref); err != nil {
		t.Fatal(err)
	}
	if !framework.Eventually(60*time.Second, 500*time.Millisecond, func() bool {
		_, body := getURL("http://" + n.KeeperAddr + "/status")
		return !strings.Contains(body, "runtimeError")
	}) {
		t.Fatal("image-keeper did not reconnect to the restarted runtime")
	}
	if n.Keeper.Exited() || n.Keeper.PID() != keeperPID {
		t.Fatal("image-keeper restarted instead of recovering")
	}

	// Kubelet restart: the allowlist applies again from the config file.
	if err := n.RemoveImage(kept.Ref); err != nil {
		t.Fatal(err)
	}
	n.Keeper.Stop(5 * time.Second) // nothing may bring the image back but the cache itself
	pull(t, n, kept.Ref)
	n.StopKubelet()
	config := filepath.Join(n.Root, "kubelet", "kubelet.yaml")
	if err := n.StartKubelet(config); err != nil {
		t.Fatal(err)
	}
	waitGCPasses(t, n, 3)
	if !present(t, n)[kept.Ref] {
		t.Errorf("after a kubelet restart and 3 GC passes %s is gone", kept.Ref)
	}
}

// The labels the kubelet's selectors read come from the runtime's verbose ImageStatus; the
// label reader is checked against each real runtime here. With
// E2E_RECORD_IMAGESTATUS=<dir> the info is also written to <dir>/<runtime>.json, which is
// how pkg/kubelet/images/allowlist/testdata/imagestatus was recorded.
func TestVerboseImageStatusLabels(t *testing.T) {
	want := map[string]string{"cache.example.com/keep": "true", "tier": "edge", "org.opencontainers.image.title": "keep-label"}
	for _, runtime := range runtimes(t) {
		t.Run(runtime.Name, func(t *testing.T) {
			n := newNodeOn(t, runtime)
			pause := push(t, n, framework.ImageSpec{Repository: "e2e/pause", Tag: "1"})
			labelled := push(t, n, framework.ImageSpec{Repository: "e2e/labelled", Tag: "1", Labels: want})
			startRuntime(t, n, pause)
			pull(t, n, labelled.Ref)
			svc, err := n.ImageService()
			if err != nil {
				t.Fatal(err)
			}
			// The kubelet asks by the image ID the runtime listed: CRI-O lists the config digest's
			// hex without "sha256:" and does not resolve "sha256:<hex>" in ImageStatus (it takes
			// it for a short name); containerd lists and resolves "sha256:<hex>".
			id := runtimeImageID(t, n, labelled.Ref)
			wantID := labelled.ID
			if runtime.Kind == framework.KindCRIO {
				wantID = strings.TrimPrefix(labelled.ID, "sha256:")
			}
			if id != wantID {
				t.Errorf("%s reports the image ID %q; want %q", runtime.Name, id, wantID)
			}
			byPrefixedID, err := svc.ImageStatus(context.Background(), &runtimeapi.ImageSpec{Image: labelled.ID}, false)
			if runtime.Kind == framework.KindCRIO {
				if err == nil || !strings.Contains(err.Error(), "short-name") {
					t.Errorf("CRI-O's ImageStatus of %s: %v, %v; want the short-name refusal docs/allowlist.md shows", labelled.ID, byPrefixedID, err)
				}
			} else if err != nil || byPrefixedID.GetImage().GetId() != labelled.ID {
				t.Errorf("%s's ImageStatus of %s: %v, %v; want the image", runtime.Name, labelled.ID, byPrefixedID, err)
			}
			resp, err := svc.ImageStatus(context.Background(), &runtimeapi.ImageSpec{Image: id}, true)
			if err != nil {
				t.Fatal(err)
			}
			got, err := allowlist.LabelsFromVerboseInfo(resp.GetInfo())
			if err != nil {
				t.Fatalf("verbose ImageStatus of %s on %s: %v; info: %v", labelled.Ref, runtime.Name, err, resp.GetInfo())
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("labels on %s = %v; want %v", runtime.Name, got, want)
			}
			if dir := os.Getenv("E2E_RECORD_IMAGESTATUS"); dir != "" {
				var pretty bytes.Buffer
				if err := json.Compact(&pretty, []byte(resp.GetInfo()["info"])); err != nil {
					t.Fatal(err)
				}
				pretty.WriteByte('\n')
				if err := os.WriteFile(filepath.Join(dir, runtime.Name+".json"), pretty.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}

func runtimeImageID(t *testing.T, n *framework.Node, ref string) string {
	t.Helper()
	id, err := n.RuntimeImageID(ref)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// Label look-up failures on a real runtime: a CRI proxy between the kubelet and the runtime
// refuses the verbose ImageStatus of two unused images, one whose labels match a selector and
// one whose labels do not. While the look-ups fail both are kept (a failure keeps the image for
// the pass) and reported as labels_unknown, not as kept by the allowlist; an unlabelled image
// next to them is collected. Once the look-ups succeed, the image the selector does not match
// is collected and the other stays, kept by the selector. On every runtime: each lists image
// IDs in its own form, which is what the kubelet asks by.
func TestLabelLookupFailures(t *testing.T) {
	for _, runtime := range runtimes(t) {
		t.Run(runtime.Name, func(t *testing.T) {
			n := newNodeOn(t, runtime)
			const label = "e2e.kubelet-imagecache.io/keep"
			pause := push(t, n, framework.ImageSpec{Repository: "e2e/pause", Tag: "1"})
			match := push(t, n, framework.ImageSpec{Repository: "e2e/lookup-match", Tag: "1", Labels: map[string]string{label: "true"}})
			miss := push(t, n, framework.ImageSpec{Repository: "e2e/lookup-miss", Tag: "1", Labels: map[string]string{label: "false"}})
			junk := push(t, n, framework.ImageSpec{Repository: "e2e/junk", Tag: "1"})
			startRuntime(t, n, pause)
			pull(t, n, pause.Ref, match.Ref, miss.Ref, junk.Ref)
			proxy, err := framework.StartCRIProxy(filepath.Join(n.Root, "cri-proxy.sock"), n.RuntimeEndpoint())
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(proxy.Stop)
			matchID, missID := runtimeImageID(t, n, match.Ref), runtimeImageID(t, n, miss.Ref)
			proxy.FailVerboseImageStatus(matchID, missID)
			config, err := n.WriteKubeletConfig("kubelet", framework.KubeletConfig{
				Gate:            true,
				Exclude:         []string{pause.Ref},
				Selectors:       []string{label + "=true"},
				RuntimeEndpoint: proxy.Endpoint,
			})
			if err != nil {
				t.Fatal(err)
			}
			if err := n.StartKubelet(config); err != nil {
				t.Fatal(err)
			}
			if !waitDeleted(t, n, map[string]string{"junk": junk.Ref}) {
				t.Fatalf("the unlabelled image was not collected; present: %v", keys(present(t, n)))
			}
			waitGCPasses(t, n, 2)
			p := present(t, n)
			for _, img := range []*framework.Image{match, miss} {
				if !p[img.Ref] {
					t.Fatalf("%s was collected although its labels could not be read", img.Ref)
				}
			}
			for _, id := range []string{matchID, missID} {
				if n.Kubelet.CountInLog(`"Keeping image: its labels could not be read for imageGCExcludeSelectors; will retry on later passes" imageID="`+id+`"`) == 0 {
					t.Errorf("the kubelet did not log the failed look-up of %s", id)
				}
			}
			metrics, err := n.KubeletMetrics()
			if err != nil {
				t.Fatal(err)
			}
			// Kept by the allowlist: the pause image's own entry, unless the runtime pins it (then
			// the kubelet never considers it).
			kept := 1
			if runtime.PinsSandboxImage() {
				kept = 0
			}
			for _, want := range []string{
				`kubelet_image_garbage_collection_excluded_images{state="labels_unknown"} 2`,
				fmt.Sprintf(`kubelet_image_garbage_collection_excluded_images{state="kept"} %d`, kept),
			} {
				if !strings.Contains(metrics, want) {
					t.Errorf("the kubelet's metrics lack %s:\n%s", want, grepLines(metrics, "kubelet_image_garbage_collection_excluded"))
				}
			}

			// The runtime answers again: labels decide.
			proxy.FailVerboseImageStatus()
			if !waitDeleted(t, n, map[string]string{"miss": miss.Ref}) {
				t.Fatalf("%s, whose labels the selector does not match, was not collected once they could be read", miss.Ref)
			}
			waitGCPasses(t, n, 2)
			if !present(t, n)[match.Ref] {
				t.Errorf("%s, kept by the selector, was collected", match.Ref)
			}
		})
	}
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

// Scenario: imageGCExcludeBudgetPercent. On a 256 MiB image filesystem with a 10% budget, three
// allowlisted unused images of ~10 MiB do not fit: the one ranked last (none was used, one entry
// keeps all three: the greatest image ID) is collected like any other image, with an ImageGCExclusionOverBudget event; the two others stay.
// On containerd 2.4 and CRI-O (whose image filesystem is its storage root, measured through CRI
// ImageFsInfo as containerd's is).
func TestAllowlistBudget(t *testing.T) {
	for _, runtime := range runtimes(t, "containerd-2.4", "cri-o-1.34") {
		t.Run(runtime.Name, func(t *testing.T) { allowlistBudget(t, runtime) })
	}
}

func allowlistBudget(t *testing.T, runtime framework.Runtime) {
	n := newNodeOn(t, runtime)
	if err := n.LimitImageFS(256 << 20); err != nil {
		t.Fatal(err)
	}
	pause := push(t, n, framework.ImageSpec{Repository: "e2e/pause", Tag: "1"})
	var budgeted []*framework.Image
	for _, tag := range []string{"a", "b", "c"} {
		budgeted = append(budgeted, push(t, n, framework.ImageSpec{Repository: "e2e/budget", Tag: tag, PadBytes: 10 << 20}))
	}
	startRuntime(t, n, pause)
	config, err := n.WriteKubeletConfig("kubelet", framework.KubeletConfig{
		Gate:    true,
		Exclude: []string{n.RegistryAddr + "/e2e/budget"},
		Extra:   "imageGCExcludeBudgetPercent: 10\n",
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
		Gate:    true,
		Exclude: []string{n.RegistryAddr + "/e2e/budget"},
		Extra:   "imageGCExcludeBudgetPercent: 5\n",
	})
	if err != nil {
		t.Fatal(err)
	}
	if b := explained(tight); !b.Over() || b.AtLeast != 1 {
		t.Errorf("explain's budget with 5%%: %+v; want over, at least one image collected", b)
	}
}

// runKeeperOnce runs `image-keeper --once` against the node's containerd and returns its exit
// error and output.
func runKeeperOnce(t *testing.T, n *framework.Node, name string, args ...string) (string, error) {
	t.Helper()
	p, err := framework.Start(n.LogDir, name, append([]string{filepath.Join(n.Bin, "image-keeper"),
		"--runtime-endpoint", n.RuntimeEndpoint(), "--listen", "127.0.0.1:0", "--once", "-v=2"}, args...))
	if err != nil {
		t.Fatal(err)
	}
	exited, exitErr := p.Wait(2 * time.Minute)
	if !exited {
		p.Stop(5 * time.Second)
		t.Fatalf("image-keeper --once did not exit; log:\n%s", framework.Tail(p, 20))
	}
	return p.LogText(), exitErr
}

// Private registry: a registry that requires a login (htpasswd). image-keeper pulls with the
// docker config.json login under each key form people write ("host:port", "https://host:port",
// "http://host:port/v2/"), passed as the kubelet passes it, on containerd 2.4, 1.6 and CRI-O;
// without a login the pull fails and --once says so.
func TestKeeperPrivateRegistry(t *testing.T) {
	for _, runtime := range runtimes(t) {
		t.Run(runtime.Name, func(t *testing.T) {
			n := newNodeOn(t, runtime, func(n *framework.Node) {
				n.RegistryUser, n.RegistryPassword = "e2e", fmt.Sprintf("pw-%d", time.Now().UnixNano())
			})
			root := n.Root
			pause := push(t, n, framework.ImageSpec{Repository: "e2e/pause", Tag: "1"})
			private := push(t, n, framework.ImageSpec{Repository: "e2e/private", Tag: "1"})
			startRuntime(t, n, pause)

			out, exitErr := runKeeperOnce(t, n, "keeper-anonymous", "--image", private.Ref)
			if exitErr == nil || present(t, n)[private.Ref] {
				t.Fatalf("an anonymous pull from a registry that requires a login succeeded:\n%s", out)
			}
			// What the runtime says of the refusal reaches the operator unchanged (docs/allowlist.md,
			// "Runtimes").
			refusal := map[string]string{
				"containerd-2.4": "authorization failed: no basic auth credentials",
				"containerd-1.6": "401 Unauthorized",
				"cri-o-1.34":     "authentication required",
			}[runtime.Name]
			if !strings.Contains(out, refusal) {
				t.Errorf("the failed anonymous pull does not say %q:\n%s", refusal, out)
			}
			auth := base64.StdEncoding.EncodeToString([]byte(n.RegistryUser + ":" + n.RegistryPassword))
			for i, key := range []string{n.RegistryAddr, "https://" + n.RegistryAddr, "http://" + n.RegistryAddr + "/v2/"} {
				config := filepath.Join(root, fmt.Sprintf("config-%d.json", i))
				if err := os.WriteFile(config, []byte(fmt.Sprintf(`{"auths":{%q:{"auth":%q}}}`, key, auth)), 0o600); err != nil {
					t.Fatal(err)
				}
				out, exitErr := runKeeperOnce(t, n, fmt.Sprintf("keeper-login-%d", i), "--image", private.Ref, "--docker-config", config)
				if exitErr != nil || !present(t, n)[private.Ref] {
					t.Fatalf("key %q: the pull with the login failed (%v):\n%s", key, exitErr, out)
				}
				if strings.Contains(out, n.RegistryPassword) || strings.Contains(out, auth) {
					t.Fatalf("image-keeper logged the secret")
				}
				if err := n.RemoveImage(private.Ref); err != nil {
					t.Fatal(err)
				}
			}

			// The kubelet's image credential provider protocol: an exec plugin gives the login.
			binDir := filepath.Join(root, "credential-plugins")
			if err := os.MkdirAll(binDir, 0o755); err != nil {
				t.Fatal(err)
			}
			answer := fmt.Sprintf(`{"apiVersion":"credentialprovider.kubelet.k8s.io/v1","kind":"CredentialProviderResponse","cacheKeyType":"Registry","auth":{%q:{"username":%q,"password":%q}}}`, n.RegistryAddr, n.RegistryUser, n.RegistryPassword)
			if err := os.WriteFile(filepath.Join(binDir, "e2e-login"), []byte("#!/bin/sh\ncat >/dev/null\nprintf '%s' '"+answer+"'\n"), 0o755); err != nil {
				t.Fatal(err)
			}
			providers := filepath.Join(root, "credential-providers.yaml")
			if err := os.WriteFile(providers, []byte(fmt.Sprintf("apiVersion: kubelet.config.k8s.io/v1\nkind: CredentialProviderConfig\nproviders:\n  - name: e2e-login\n    matchImages: [%q]\n    defaultCacheDuration: 1m\n    apiVersion: credentialprovider.kubelet.k8s.io/v1\n", n.RegistryAddr)), 0o644); err != nil {
				t.Fatal(err)
			}
			out, exitErr = runKeeperOnce(t, n, "keeper-plugin", "--image", private.Ref, "--image-credential-provider-config", providers, "--image-credential-provider-bin-dir", binDir)
			if exitErr != nil || !present(t, n)[private.Ref] {
				t.Fatalf("the pull with the credential provider's login failed (%v):\n%s", exitErr, out)
			}
		})
	}
}

// The allowlist set in a kubelet config drop-in (--config-dir), as deploy/ ships it: the
// kubelet honours it, and image-keeper, reading the same file and directory with the kubelet's
// merge, reports the image as protected; reading the file alone it would not.
func TestKubeletConfigDropIn(t *testing.T) {
	n := newNode(t)
	pause := push(t, n, framework.ImageSpec{Repository: "e2e/pause", Tag: "1"})
	kept := push(t, n, framework.ImageSpec{Repository: "e2e/dropin", Tag: "1"})
	other := push(t, n, framework.ImageSpec{Repository: "e2e/other", Tag: "1"})
	startRuntime(t, n, pause)
	pull(t, n, kept.Ref, other.Ref)
	config, err := n.WriteKubeletConfig("kubelet", framework.KubeletConfig{
		DropIn: fmt.Sprintf("apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\nfeatureGates:\n  ImageGCExclusion: true\nimageGCExclude:\n  - %q\n", n.RegistryAddr+"/e2e/dropin"),
	})
	if err != nil {
		t.Fatal(err)
	}
	dir := framework.KubeletConfigDir(config)
	if dir == "" {
		t.Fatal("no drop-in directory written")
	}
	if err := n.StartKubelet(config); err != nil {
		t.Fatal(err)
	}
	if !waitDeleted(t, n, map[string]string{"other": other.Ref}) {
		t.Fatalf("the unprotected image was not collected; present: %v", keys(present(t, n)))
	}
	waitGCPasses(t, n, 2)
	if !present(t, n)[kept.Ref] {
		t.Fatalf("the image allowlisted in the drop-in was collected")
	}

	status := func(name string, args ...string) (string, error) {
		p, err := framework.Start(n.LogDir, name, append([]string{filepath.Join(n.Bin, "image-keeper"), "status",
			"--runtime-endpoint", n.RuntimeEndpoint(), "--image", kept.Ref, "--kubelet-config", config}, args...))
		if err != nil {
			t.Fatal(err)
		}
		exited, exitErr := p.Wait(time.Minute)
		if !exited {
			p.Stop(5 * time.Second)
			t.Fatal("image-keeper status did not exit")
		}
		return p.LogText(), exitErr
	}
	if out, exitErr := status("status-with-dir", "--kubelet-config-dir", dir); exitErr != nil || !strings.Contains(out, "yes: "+n.RegistryAddr+"/e2e/dropin") {
		t.Errorf("with --kubelet-config-dir, status (%v) does not say the kubelet protects %s:\n%s", exitErr, kept.Ref, out)
	}
	if out, _ := status("status-without-dir"); strings.Contains(out, "yes: ") {
		t.Errorf("without --kubelet-config-dir, status still finds the drop-in's allowlist:\n%s", out)
	}
}

// The shipped DaemonSet's pod, run as it is deployed: image-keeper's own OCI image
// (`make image`, pushed to the node's registry) with the pod template of deploy/daemonset.yaml,
// as a static pod on the throwaway node, in the pod network (a CNI bridge), with the kubelet's
// probes on its pod IP. Only node-specific values change: the hostPaths (containerd's socket
// directory, the kubelet's config and drop-ins), the ConfigMap (a static pod cannot use one; the
// same config.yaml from a hostPath) and the image. The pod restores an image removed behind its
// back, and again after containerd restarts (the socket is recreated: the directory mount sees
// the new one).
func TestDaemonSetPodOnNode(t *testing.T) {
	n := newNodeOn(t, podRuntime(t))
	n.PodNetwork = true
	pause := push(t, n, framework.ImageSpec{Repository: "e2e/pause", Tag: "1"})
	kept := push(t, n, framework.ImageSpec{Repository: "e2e/kept", Tag: "1"})
	keeperRef := pushKeeperImage(t, n)
	startRuntime(t, n, pause)
	pull(t, n, kept.Ref)
	config, err := n.WriteKubeletConfig("kubelet", framework.KubeletConfig{Gate: true, Exclude: []string{kept.Ref, keeperRef}, NoPressure: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := n.StartKubelet(config); err != nil {
		t.Fatal(err)
	}

	// The pod template as shipped.
	data, err := os.ReadFile(filepath.Join(repoRoot, "deploy", "daemonset.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var ds appsv1.DaemonSet
	for _, doc := range strings.Split(string(data), "\n---\n") {
		if strings.Contains(doc, "\nkind: DaemonSet\n") {
			if err := yaml.UnmarshalStrict([]byte(doc), &ds); err != nil {
				t.Fatal(err)
			}
		}
	}
	spec := ds.Spec.Template.Spec
	if len(spec.Containers) != 1 {
		t.Fatalf("the DaemonSet has %d containers", len(spec.Containers))
	}
	keeperConfig := filepath.Join(n.Root, "image-keeper-config")
	if err := os.MkdirAll(keeperConfig, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(keeperConfig, "config.yaml"), []byte("apiVersion: imagekeeper.kubelet-imagecache.io/v1alpha1\nkind: ImageKeeperConfiguration\nimages: ["+kept.Ref+"]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	dropIns := filepath.Join(n.Root, "kubelet", "conf.d")
	hostPaths := map[string]string{
		"/run/containerd":                filepath.Dir(strings.TrimPrefix(n.RuntimeEndpoint(), "unix://")),
		"/var/lib/kubelet/config.yaml":   config,
		"/etc/kubernetes/kubelet.conf.d": dropIns,
	}
	for i, v := range spec.Volumes {
		switch {
		case v.HostPath != nil:
			path, ok := hostPaths[v.HostPath.Path]
			if !ok {
				t.Fatalf("volume %q: hostPath %s has no node path in this test", v.Name, v.HostPath.Path)
			}
			spec.Volumes[i].HostPath.Path = path
		case v.ConfigMap != nil:
			spec.Volumes[i].VolumeSource = corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: keeperConfig}}
		}
	}
	// Nor a service account: with no API server, image-keeper publishes nothing (its cluster
	// side is TestClusterDaemonSet's).
	spec.ServiceAccountName, spec.AutomountServiceAccountToken = "", nil
	c := &spec.Containers[0]
	c.Image = keeperRef
	c.Args = append(c.Args, "--interval=2s", "--max-backoff=2s")
	pod := corev1.Pod{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{Name: "image-keeper", Namespace: "kube-system", Labels: ds.Spec.Template.Labels},
		Spec:       spec,
	}
	manifest, err := yaml.Marshal(pod)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(n.Root, "manifests", "image-keeper.yaml"), manifest, 0o644); err != nil {
		t.Fatal(err)
	}
	// /readyz on the pod IP, as the kubelet's readiness probe asks it.
	ready := func(timeout time.Duration) bool {
		return framework.Eventually(timeout, 500*time.Millisecond, func() bool {
			ip, err := n.PodIP("image-keeper")
			if err != nil {
				return false
			}
			code, _ := getURL(fmt.Sprintf("http://%s/readyz", net.JoinHostPort(ip, strconv.Itoa(int(c.Ports[0].ContainerPort)))))
			return code == http.StatusOK
		})
	}
	if !ready(2 * time.Minute) {
		t.Fatalf("the DaemonSet's pod did not become ready; manifest:\n%s\nkubelet: %s", manifest, framework.Tail(n.Kubelet, 30))
	}
	restored := func(what string) {
		t.Helper()
		if err := n.RemoveImage(kept.Ref); err != nil {
			t.Fatal(err)
		}
		if !framework.Eventually(time.Minute, 500*time.Millisecond, func() bool { return present(t, n)[kept.Ref] }) {
			t.Fatalf("%s: the pod did not restore %s", what, kept.Ref)
		}
	}
	restored("running")
	n.StopRuntime()
	if err := n.StartRuntime(pause.Ref); err != nil {
		t.Fatal(err)
	}
	if !ready(time.Minute) {
		t.Fatal("the pod did not become ready again after containerd restarted")
	}
	restored("after a containerd restart")
	if running, err := n.ContainerRunning("image-keeper"); err != nil || !running {
		t.Errorf("the image-keeper container is not running: %v", err)
	}
}

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
	for _, runtime := range runtimes(t, "containerd-2.4", "cri-o-1.34") {
		t.Run(runtime.Name, func(t *testing.T) { explainPredictsGC(t, runtime) })
	}
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
