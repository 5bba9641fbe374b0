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
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubelet-imagecache/kubelet-imagecache/pkg/nodestatus"
	"github.com/kubelet-imagecache/kubelet-imagecache/test/e2e/framework"
)

// The readiness conventions of docs/warm-nodes.md on a real node registered with
// node-readiness-controller's kind of taint, readiness.k8s.io/image-cache=pending:NoSchedule.
// With the doc's flags (--startup-taint-mode=none) image-keeper publishes ImageCacheReady=True
// and leaves the taint to its owner. Restarted with --startup-taint-mode=rearm and that taint's
// key, it removes the taint; a wanted image removed by hand (the registry away, so that it is not
// restored at once) brings the taint back as NoSchedule while the running pod stays; the image
// restored, the taint goes again.
func TestClusterRearm(t *testing.T) {
	t.Parallel()
	c := newClusterNode(t)
	ctx := context.Background()
	const taintKey = "readiness.k8s.io/image-cache"
	app := push(t, c.Node, framework.ImageSpec{Repository: "e2e/app", Tag: "1"})
	second := push(t, c.Node, framework.ImageSpec{Repository: "e2e/second", Tag: "1"})
	startRuntimeWithPause(t, c.Node)
	c.RegisterWithTaints = []string{taintKey + "=pending:NoSchedule"}
	config, err := c.WriteKubeletConfig("kubelet", framework.KubeletConfig{Gate: true, Exclude: []string{app.Ref, second.Ref}, NoPressure: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.StartKubelet(config); err != nil {
		t.Fatal(err)
	}
	hasTaint := func(node *corev1.Node) bool { return framework.HasTaint(node, taintKey) }
	if !framework.Eventually(2*time.Minute, time.Second, func() bool {
		node, err := c.client.CoreV1().Nodes().Get(ctx, framework.NodeName, metav1.GetOptions{})
		if err != nil {
			return false // not registered yet
		}
		ready := condition(node, corev1.NodeReady)
		return ready != nil && ready.Status == corev1.ConditionTrue && hasTaint(node)
	}) {
		t.Fatalf("the node is not Ready with %s: %+v", taintKey, c.node(t).Spec.Taints)
	}

	const user = "image-keeper-e2e"
	kubeconfig, err := c.cp.UserKubeconfig(user, nil)
	if err != nil {
		t.Fatal(err)
	}
	c.applyRBAC(t, user)
	keeperConfig := filepath.Join(c.Root, "image-keeper.yaml")
	if err := framework.WriteKeeperConfig(keeperConfig, app.Ref, second.Ref); err != nil {
		t.Fatal(err)
	}
	common := []string{"--kubeconfig", kubeconfig, "--node-name", framework.NodeName, "--interval", "2s", "--node-status-heartbeat", "10s", "--pull-slots", "0"}

	// docs/warm-nodes.md's flags: the condition only.
	block, err := framework.DocBlock(filepath.Join(repoRoot, "docs", "warm-nodes.md"), "<!-- readiness-flags -->", "console")
	if err != nil {
		t.Fatal(err)
	}
	args := strings.Fields(strings.TrimPrefix(strings.TrimSpace(block), "$ image-keeper"))
	for i := range args {
		if args[i] == "--config" {
			args[i+1] = keeperConfig // the doc's path, on this node
		}
	}
	if err := c.StartKeeper(append(args, common...)...); err != nil {
		t.Fatal(err)
	}
	if !framework.Eventually(2*time.Minute, time.Second, func() bool {
		cond := condition(c.node(t), nodestatus.ConditionType)
		return cond != nil && cond.Status == corev1.ConditionTrue
	}) {
		t.Fatalf("no ImageCacheReady=True with the doc's flags; image-keeper: %s", framework.Tail(c.Keeper, 20))
	}
	time.Sleep(3 * time.Second) // passes after the warm one
	if !hasTaint(c.node(t)) {
		t.Fatalf("with --startup-taint-mode=none image-keeper removed %s", taintKey)
	}
	t.Log("--startup-taint-mode=none: condition True, the controller's taint left alone")

	// rearm, on that taint.
	c.Keeper.Stop(10 * time.Second)
	if err := c.StartKeeper(append([]string{"--config", keeperConfig, "--startup-taint-mode=rearm", "--startup-taint-key", taintKey}, common...)...); err != nil {
		t.Fatal(err)
	}
	if !framework.Eventually(time.Minute, 500*time.Millisecond, func() bool { return !hasTaint(c.node(t)) }) {
		t.Fatalf("--startup-taint-mode=rearm did not remove %s from a warm node; image-keeper: %s", taintKey, framework.Tail(c.Keeper, 20))
	}
	if _, err := c.client.CoreV1().Pods("default").Create(ctx, framework.Pod("app", app.Ref), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	running := func() bool {
		p, err := c.client.CoreV1().Pods("default").Get(ctx, "app", metav1.GetOptions{})
		return err == nil && p.Status.Phase == corev1.PodRunning
	}
	if !framework.Eventually(2*time.Minute, time.Second, running) {
		t.Fatalf("the pod did not run on the warm node; kubelet: %s", framework.Tail(c.Kubelet, 20))
	}

	c.StopRegistry()
	if err := c.RemoveImage(second.Ref); err != nil {
		t.Fatal(err)
	}
	removed := time.Now()
	var taint corev1.Taint
	if !framework.Eventually(time.Minute, 500*time.Millisecond, func() bool {
		for _, tt := range c.node(t).Spec.Taints {
			if tt.Key == taintKey {
				taint = tt
				return true
			}
		}
		return false
	}) {
		t.Fatalf("a wanted image went and %s did not come back; image-keeper: %s", taintKey, framework.Tail(c.Keeper, 20))
	}
	if taint.Effect != corev1.TaintEffectNoSchedule {
		t.Errorf("the re-armed taint is %s; want NoSchedule", taint.Effect)
	}
	t.Logf("image removed → %s back (%s) in %v", taintKey, taint.Effect, time.Since(removed).Round(100*time.Millisecond))
	time.Sleep(3 * time.Second)
	if !running() {
		t.Error("the running pod did not stay on the re-armed node")
	}

	if err := c.StartRegistry(); err != nil {
		t.Fatal(err)
	}
	if !framework.Eventually(2*time.Minute, time.Second, func() bool {
		node := c.node(t)
		cond := condition(node, nodestatus.ConditionType)
		return cond != nil && cond.Status == corev1.ConditionTrue && !hasTaint(node)
	}) {
		t.Fatalf("restored, the node is not warm and untainted: %+v, taints %+v", condition(c.node(t), nodestatus.ConditionType), c.node(t).Spec.Taints)
	}
	t.Log("image restored → taint removed again")
}
