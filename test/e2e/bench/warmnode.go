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

package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubelet-imagecache/kubelet-imagecache/pkg/nodestatus"
	"github.com/kubelet-imagecache/kubelet-imagecache/test/e2e/framework"
)

// Shape of the warm-node runs: five wanted images behind a shaped link, the first pod needing
// the last of them.
const (
	warmImages    = 5
	warmImageSize = 8 << 20
	warmLatency   = 50 * time.Millisecond
	warmBandwidth = 4 << 20 // bytes per second, per connection
)

// warmNodeTimes are the moments of one run, in seconds after the node's kubelet and
// image-keeper started (a node booting), each as first observed by a poll of the API.
type warmNodeTimes struct {
	registered, warm, untainted, scheduled, running float64
}

// warmNode measures, on a throwaway cluster node whose allowlist is warmImages images behind a
// shaped link: node registered → cache warm → taint removed → first pod running, with the
// startup taint (gate) and without it (the pod is scheduled at once and pulls on its critical
// path, while image-keeper pulls the rest). Runs alternate gate and no gate.
func warmNode(repo, bin, out string, runs int) error {
	var gate, noGate []warmNodeTimes
	for i := 0; i < runs; i++ {
		for _, withGate := range []bool{true, false} {
			t, err := warmNodeRun(repo, bin, withGate)
			if err != nil {
				return fmt.Errorf("run %d (gate %v): %w", i+1, withGate, err)
			}
			fmt.Printf("warm-node run %d gate=%v: registered %.2fs warm %.2fs untainted %.2fs scheduled %.2fs running %.2fs\n",
				i+1, withGate, t.registered, t.warm, t.untainted, t.scheduled, t.running)
			if withGate {
				gate = append(gate, t)
			} else {
				noGate = append(noGate, t)
			}
		}
	}
	return writeWarmNode(out, gate, noGate, runs)
}

func warmNodeRun(repo, bin string, gate bool) (times warmNodeTimes, err error) {
	repo, _ = filepath.Abs(repo)
	bin, _ = filepath.Abs(bin)
	root, err := os.MkdirTemp("", "imagecache-bench-")
	if err != nil {
		return times, err
	}
	runtime, err := framework.RuntimeFromEnv(repo)
	if err != nil {
		return times, err
	}
	runtimeName = runtime.Name()
	n, err := framework.NewNode(root, bin, repo, runtime)
	if err != nil {
		return times, err
	}
	defer func() { _ = n.Teardown(false) }()
	if err := n.StartRegistry(); err != nil {
		return times, err
	}
	cp, client, err := n.JoinControlPlane()
	if cp != nil {
		defer func() { _ = cp.Stop() }()
	}
	if err != nil {
		return times, err
	}
	pause, err := framework.BuildAndPush(n.RegistryAddr, n.Sleeper, framework.ImageSpec{Repository: "bench/pause", Tag: "1"})
	if err != nil {
		return times, err
	}
	if err := n.StartRuntime(pause.Ref); err != nil {
		return times, err
	}
	if err := n.Pull(pause.Ref); err != nil {
		return times, err
	}
	proxy, err := n.StartShapingProxy(warmLatency, warmBandwidth)
	if err != nil {
		return times, err
	}
	defer proxy.Stop()
	var wanted []string
	for i := 0; i < warmImages; i++ {
		img, err := framework.BuildAndPush(n.RegistryAddr, n.Sleeper, framework.ImageSpec{Repository: "bench/cache-" + strconv.Itoa(i), Tag: "1", PadBytes: warmImageSize})
		if err != nil {
			return times, err
		}
		wanted = append(wanted, strings.Replace(img.Ref, n.RegistryAddr, proxy.Addr, 1))
	}
	config, err := n.WriteKubeletConfig("kubelet", framework.KubeletConfig{Gate: true, Exclude: []string{proxy.Addr + "/bench/*"}, NoPressure: true})
	if err != nil {
		return times, err
	}
	keeperConfig := filepath.Join(root, "image-keeper.yaml")
	if err := framework.WriteKeeperConfig(keeperConfig, wanted...); err != nil {
		return times, err
	}
	if gate {
		n.RegisterWithTaints = []string{nodestatus.StartupTaintKey + "=:NoSchedule"}
	}

	// A pod waiting for capacity, as when an autoscaler adds the node for it: it needs the last
	// of the wanted images.
	ctx := context.Background()
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "first", Namespace: "default"},
		Spec: corev1.PodSpec{
			TerminationGracePeriodSeconds: new(int64),
			Containers:                    []corev1.Container{{Name: "app", Image: wanted[len(wanted)-1], ImagePullPolicy: corev1.PullIfNotPresent}},
		},
	}
	if _, err := client.CoreV1().Pods("default").Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		return times, err
	}

	// The node boots: kubelet and image-keeper start together.
	start := time.Now()
	if err := n.StartKubelet(config); err != nil {
		return times, err
	}
	if err := n.StartKeeper("--config", keeperConfig, "--kubeconfig", cp.AdminKubeconfig, "--node-name", framework.NodeName, "--interval", "2s"); err != nil {
		return times, err
	}
	seen := func(at *float64, cond bool) {
		if cond && *at == 0 {
			*at = time.Since(start).Seconds()
		}
	}
	if !framework.Eventually(5*time.Minute, 100*time.Millisecond, func() bool {
		// The pod first: what the node shows next happened before (the taint goes before the
		// pod is scheduled), so the times keep causal order within the 100 ms resolution.
		p, podErr := client.CoreV1().Pods("default").Get(ctx, "first", metav1.GetOptions{})
		node, err := client.CoreV1().Nodes().Get(ctx, framework.NodeName, metav1.GetOptions{})
		if err == nil {
			seen(&times.registered, true)
			cond := framework.NodeCondition(node, nodestatus.ConditionType)
			seen(&times.warm, cond != nil && cond.Status == corev1.ConditionTrue)
			seen(&times.untainted, !framework.HasTaint(node, nodestatus.StartupTaintKey))
		}
		if podErr == nil {
			seen(&times.scheduled, p.Spec.NodeName != "")
			seen(&times.running, p.Status.Phase == corev1.PodRunning)
		}
		return times.running > 0 && times.warm > 0
	}) {
		return times, fmt.Errorf("no warm cache and running pod within 5 minutes: %+v; image-keeper: %s", times, framework.Tail(n.Keeper, 10))
	}
	return times, nil
}

func writeWarmNode(out string, gate, noGate []warmNodeTimes, runs int) error {
	col := func(ts []warmNodeTimes, name string, f func(warmNodeTimes) float64) sample {
		s := sample{name: name}
		for _, t := range ts {
			s.seconds = append(s.seconds, f(t))
		}
		return s
	}
	cell := func(s sample) string {
		lo, hi := s.minMax()
		return fmt.Sprintf("%.2f s (%.2f – %.2f)", s.median(), lo, hi)
	}
	rows := []struct {
		what string
		f    func(warmNodeTimes) float64
	}{
		{"node registered", func(t warmNodeTimes) float64 { return t.registered }},
		{"cache warm (ImageCacheReady=True)", func(t warmNodeTimes) float64 { return t.warm }},
		{"startup taint gone", func(t warmNodeTimes) float64 { return t.untainted }},
		{"first pod scheduled", func(t warmNodeTimes) float64 { return t.scheduled }},
		{"first pod running", func(t warmNodeTimes) float64 { return t.running }},
		{"first pod: scheduled → running", func(t warmNodeTimes) float64 { return t.running - t.scheduled }},
	}
	var b strings.Builder
	fmt.Fprintf(&b, `# Warm nodes: the first pod, with the startup taint and without

Reproduce with `+"`make bench-e2e`"+` (root; `+"`go run ./test/e2e/bench --what warm-node`"+` for this one alone, about
%d minutes). Generated by test/e2e/bench on %s.

Each run is a fresh throwaway cluster (etcd, kube-apiserver, kube-controller-manager,
kube-scheduler, and one node: the patched kubelet on %s). The node's allowlist and
image-keeper's list are %d images of %d MiB each (incompressible), behind a proxy that adds %v
to every registry request and delivers %d MiB/s per connection (image-keeper pulls 2 at a time).
A pod that needs the last of them exists before the node boots, as when an autoscaler adds the
node for it. Times are seconds after the node's kubelet and image-keeper start, each first seen
by a poll of the API (a Pod and a Node GET, then 100 ms: about 0.2 s between polls, which is the
resolution of every number here). **With the gate** the node registers with the startup taint
(`+"`registerWithTaints`"+`), which image-keeper removes once every image is present; **without** it
the scheduler places the pod as soon as the node is Ready and the pod pulls its image itself, in
competition with image-keeper's pulls. %d runs each, alternating, in one session.

| | with the gate: median (min – max) | without: median (min – max) |
| --- | --- | --- |
`, runs*2, time.Now().UTC().Format("2006-01-02"), runtimeName, warmImages, warmImageSize>>20, warmLatency, warmBandwidth>>20, runs)
	for _, r := range rows {
		g, ng := col(gate, "gate", r.f), col(noGate, "no gate", r.f)
		noGateCell := cell(ng)
		if r.what == "startup taint gone" {
			noGateCell = "(never tainted)"
		}
		fmt.Fprintf(&b, "| %s | %s | %s |\n", r.what, cell(g), noGateCell)
	}
	gRun, ngRun := col(gate, "gate: first pod running", func(t warmNodeTimes) float64 { return t.running }), col(noGate, "no-gate: first pod running", func(t warmNodeTimes) float64 { return t.running })
	gStart, ngStart := col(gate, "gate: scheduled → running", func(t warmNodeTimes) float64 { return t.running - t.scheduled }), col(noGate, "no-gate: scheduled → running", func(t warmNodeTimes) float64 { return t.running - t.scheduled })
	fmt.Fprintf(&b, `
Ratios of medians, side by side in this run: the first pod is running at **%.2f×** the time
without the gate (it waits for the whole cache, not only its own image), and once scheduled it
starts in **%.2f×** the time (its image is already there).

![medians with min–max whiskers](warm-node.svg)

Raw seconds (registered, warm, untainted, scheduled, running):

`, gRun.median()/ngRun.median(), gStart.median()/ngStart.median())
	for _, set := range []struct {
		name string
		ts   []warmNodeTimes
	}{{"with the gate", gate}, {"without", noGate}} {
		for i, t := range set.ts {
			fmt.Fprintf(&b, "- %s, run %d: %.2f, %.2f, %.2f, %.2f, %.2f\n", set.name, i+1, t.registered, t.warm, t.untainted, t.scheduled, t.running)
		}
	}
	b.WriteString(`
What the gate buys is not a faster first pod on an idle link: it is that no pod on the node
waits for a pull, so a node added for a burst of pods serves all of them from the cache, and a
pod never starts against a registry that is slow or away. What it costs is the time to pull the
whole list before the node takes work; keep the list to what the node's pods need.
`)
	if err := os.WriteFile(filepath.Join(out, "warm-node.md"), []byte(b.String()), 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(out, "warm-node.svg"), []byte(barChart("First pod", []sample{gRun, ngRun, gStart, ngStart})), 0o644)
}
