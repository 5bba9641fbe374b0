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

// The cluster story (make demo-cluster): a throwaway cluster (etcd, kube-apiserver,
// kube-controller-manager, kube-scheduler, one node with the patched kubelet on containerd)
// shows the warm-node gate: the node registers with image-keeper's startup taint, a Deployment
// waits, image-keeper pulls the cache, sets ImageCacheReady and removes the taint, the pod starts
// from the cache; then an image removed by hand turns the condition False until it is restored.

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/kubelet-imagecache/kubelet-imagecache/pkg/nodestatus"
	"github.com/kubelet-imagecache/kubelet-imagecache/test/e2e/framework"
)

func runCluster(d *demo) (err error) {
	n, root, repo, bin := d.n, d.root, d.repo, d.bin
	say("starting a throwaway cluster under %s", root)
	if err := n.StartRegistry(); err != nil {
		return err
	}
	var client kubernetes.Interface
	if d.cp, client, err = n.JoinControlPlane(); err != nil {
		return err
	}
	cp := d.cp
	say("control plane up: etcd, kube-apiserver (%s), kube-controller-manager, kube-scheduler", cp.Server)
	pause, err := framework.BuildAndPush(n.RegistryAddr, n.Sleeper, framework.ImageSpec{Repository: "demo/pause", Tag: "3.10"})
	if err != nil {
		return err
	}
	var wanted []string
	for _, spec := range []framework.ImageSpec{
		{Repository: "edge/app", Tag: "v1", PadBytes: 8 << 20},
		{Repository: "edge/agent", Tag: "v2", PadBytes: 4 << 20},
		{Repository: "edge/sidecar", Tag: "v3", PadBytes: 4 << 20},
	} {
		img, err := framework.BuildAndPush(n.RegistryAddr, n.Sleeper, spec)
		if err != nil {
			return err
		}
		wanted = append(wanted, img.Ref)
	}
	say("pushed %d images to the registry on %s; the node has none of them", len(wanted), n.RegistryAddr)
	if err := n.StartRuntime(pause.Ref); err != nil {
		return err
	}
	if err := n.Pull(pause.Ref); err != nil {
		return err
	}
	dropIn, err := os.ReadFile(filepath.Join(repo, "deploy", "kubelet", "60-imagecache-warm.conf"))
	if err != nil {
		return err
	}
	config, err := n.WriteKubeletConfig("kubelet", framework.KubeletConfig{Gate: true, Exclude: []string{n.RegistryAddr + "/edge/*"}, NoPressure: true, DropIn: string(dropIn)})
	if err != nil {
		return err
	}
	if err := n.StartKubelet(config); err != nil {
		return err
	}
	say("the node boots: the patched kubelet joins with deploy/kubelet/60-imagecache-warm.conf in its --config-dir")
	ctx := context.Background()
	node := func() *corev1.Node {
		nd, _ := client.CoreV1().Nodes().Get(ctx, framework.NodeName, metav1.GetOptions{})
		return nd
	}
	if !framework.Eventually(2*time.Minute, 200*time.Millisecond, func() bool {
		nd := node()
		return nd != nil && ready(nd) && len(nd.Spec.Taints) == 1
	}) {
		return fmt.Errorf("the node did not become Ready; kubelet: %s", framework.Tail(n.Kubelet, 20))
	}
	say("node %s Ready, taints: %s", framework.NodeName, taints(node()))

	if _, err := client.AppsV1().Deployments("default").Create(ctx, framework.Deployment("web", wanted[0]), metav1.CreateOptions{}); err != nil {
		return err
	}
	webPod := func() *corev1.Pod {
		pods, err := client.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: "app=web"})
		if err != nil || len(pods.Items) == 0 {
			return nil
		}
		return &pods.Items[0]
	}
	if !framework.Eventually(time.Minute, 200*time.Millisecond, func() bool { p := webPod(); return p != nil && unschedulable(p) != "" }) {
		return fmt.Errorf("the Deployment's pod was not reported unschedulable")
	}
	say("Deployment web created: its pod is Pending, the scheduler says %q", unschedulable(webPod()))

	keeperConfig := filepath.Join(root, "image-keeper.yaml")
	if err := framework.WriteKeeperConfig(keeperConfig, wanted...); err != nil {
		return err
	}
	if err := n.StartKeeper("--config", keeperConfig, "--kubeconfig", cp.AdminKubeconfig, "--node-name", framework.NodeName, "--interval", "2s", "--node-status-heartbeat", "10s"); err != nil {
		return err
	}
	say("image-keeper started with %d wanted images and the API server: it pulls, then publishes", len(wanted))
	keeperStarted := time.Now()
	var last string
	if !framework.Eventually(3*time.Minute, 100*time.Millisecond, func() bool {
		nd := node()
		if c := cacheCondition(nd); c != nil && string(c.Status)+" "+c.Message != last {
			last = string(c.Status) + " " + c.Message
			say("  ImageCacheReady=%s (%s): %s", c.Status, c.Reason, c.Message)
		}
		return nd != nil && !hasTaint(nd)
	}) {
		return fmt.Errorf("the taint was not removed; image-keeper: %s", framework.Tail(n.Keeper, 20))
	}
	say("cache warm %.1fs after image-keeper started: startup taint removed, taints now: %s", time.Since(keeperStarted).Seconds(), taints(node()))
	requests := n.Registry.CountInLog("/v2/edge/app/")
	if !framework.Eventually(2*time.Minute, 100*time.Millisecond, func() bool { p := webPod(); return p != nil && p.Status.Phase == corev1.PodRunning }) {
		return fmt.Errorf("the Deployment's pod did not start")
	}
	say("web's pod scheduled and Running; registry requests for its image during the start: %d", n.Registry.CountInLog("/v2/edge/app/")-requests)
	if err := kubectlWatch(repo, bin, cp.AdminKubeconfig); err != nil {
		return err
	}

	say("taking the registry away and removing %s by hand (crictl rmi)", wanted[2])
	n.StopRegistry()
	if err := n.RemoveImage(wanted[2]); err != nil {
		return err
	}
	if !framework.Eventually(time.Minute, 200*time.Millisecond, func() bool {
		c := cacheCondition(node())
		return c != nil && c.Status == corev1.ConditionFalse
	}) {
		return fmt.Errorf("the condition did not turn False")
	}
	c := cacheCondition(node())
	say("  ImageCacheReady=%s (%s): %s; taints: %s (never added back: the node runs pods)", c.Status, c.Reason, c.Message, taints(node()))
	if err := n.StartRegistry(); err != nil {
		return err
	}
	if !framework.Eventually(2*time.Minute, 200*time.Millisecond, func() bool {
		c := cacheCondition(node())
		return c != nil && c.Status == corev1.ConditionTrue
	}) {
		return fmt.Errorf("the condition did not turn True again")
	}
	c = cacheCondition(node())
	say("registry back: image-keeper restored it; ImageCacheReady=%s: %s", c.Status, c.Message)
	return nil
}

// kubectlWatch runs docs/warm-nodes.md's watch command with the kubectl of the same release.
func kubectlWatch(repo, bin, kubeconfig string) error {
	block, err := framework.DocBlock(filepath.Join(repo, "docs", "warm-nodes.md"), "<!-- warm-nodes-watch -->", "console")
	if err != nil {
		return err
	}
	command := strings.TrimPrefix(strings.SplitN(block, "\n", 2)[0], "$ ")
	cmd := exec.Command("bash", "-c", command)
	cmd.Env = append(os.Environ(), "PATH="+bin+":"+os.Getenv("PATH"), "KUBECONFIG="+kubeconfig)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %v: %s", command, err, out)
	}
	say("what an operator sees (docs/warm-nodes.md):\n$ %s\n%s", command, strings.TrimRight(string(out), "\n"))
	return nil
}

func ready(node *corev1.Node) bool {
	c := framework.NodeCondition(node, corev1.NodeReady)
	return c != nil && c.Status == corev1.ConditionTrue
}

func cacheCondition(node *corev1.Node) *corev1.NodeCondition {
	return framework.NodeCondition(node, nodestatus.ConditionType)
}

func hasTaint(node *corev1.Node) bool { return framework.HasTaint(node, nodestatus.StartupTaintKey) }

func taints(node *corev1.Node) string {
	if node == nil || len(node.Spec.Taints) == 0 {
		return "none"
	}
	var out []string
	for _, t := range node.Spec.Taints {
		out = append(out, t.Key+":"+string(t.Effect))
	}
	return strings.Join(out, ", ")
}

func unschedulable(p *corev1.Pod) string {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse {
			return c.Message
		}
	}
	return ""
}
