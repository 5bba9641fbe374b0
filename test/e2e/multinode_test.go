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
	"fmt"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubelet-imagecache/kubelet-imagecache/test/e2e/framework"
)

// newCluster is newClusterNode and count-1 further nodes joined to its control plane, named
// e2e-node-2, e2e-node-3, ...: each with a runtime, kubelet root, cgroup root, pod network
// bridge and subnet of its own, all pulling from the first node's registry (one registry, as a
// fleet has). Nothing is started on the further nodes.
func newCluster(t *testing.T, count int) []*clusterNode {
	t.Helper()
	first := newClusterNode(t)
	nodes := []*clusterNode{first}
	for i := 2; i <= count; i++ {
		n := newBareNode(t, first.Runtime)
		n.Name = fmt.Sprintf("%s-%d", framework.NodeName, i)
		n.RegistryAddr = first.RegistryAddr
		if err := n.Join(first.cp); err != nil {
			t.Fatal(err)
		}
		nodes = append(nodes, &clusterNode{Node: n, cp: first.cp, client: first.client})
	}
	return nodes
}

// waitNodesReady waits for every node of a cluster to be Ready.
func waitNodesReady(t *testing.T, nodes []*clusterNode) {
	t.Helper()
	for _, n := range nodes {
		if !framework.Eventually(2*time.Minute, time.Second, func() bool {
			node, err := n.client.CoreV1().Nodes().Get(context.Background(), n.Name, metav1.GetOptions{})
			ready := framework.NodeCondition(node, corev1.NodeReady)
			return err == nil && ready != nil && ready.Status == corev1.ConditionTrue
		}) {
			t.Fatalf("node %s is not Ready; kubelet: %s", n.Name, framework.Tail(n.Kubelet, 20))
		}
	}
}

// The harness runs several nodes on one machine against one control plane (what the fleet
// scenarios build on): three nodes register and become Ready, a DaemonSet runs a pod on each,
// each pod's address is in its own node's subnet, and each kubelet keeps its pods under its own
// cgroup root.
func TestClusterThreeNodes(t *testing.T) {
	t.Parallel()
	nodes := newCluster(t, 3)
	ctx := context.Background()
	first := nodes[0]
	pause := push(t, first.Node, framework.ImageSpec{Repository: "e2e/pause", Tag: "1"})
	app := push(t, first.Node, framework.ImageSpec{Repository: "e2e/app", Tag: "1"})
	for _, n := range nodes {
		startRuntime(t, n.Node, pause)
		config, err := n.WriteKubeletConfig("kubelet", framework.KubeletConfig{NoPressure: true})
		if err != nil {
			t.Fatal(err)
		}
		if err := n.StartKubelet(config); err != nil {
			t.Fatal(err)
		}
	}
	waitNodesReady(t, nodes)

	labels := map[string]string{"app": "everywhere"}
	ds := &appsv1.DaemonSet{
		ObjectMeta: metav1.ObjectMeta{Name: "everywhere", Namespace: "default"},
		Spec: appsv1.DaemonSetSpec{
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					TerminationGracePeriodSeconds: new(int64),
					Containers:                    []corev1.Container{{Name: "app", Image: app.Ref, ImagePullPolicy: corev1.PullIfNotPresent}},
				},
			},
		},
	}
	if _, err := first.client.AppsV1().DaemonSets("default").Create(ctx, ds, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	var pods *corev1.PodList
	if !framework.Eventually(2*time.Minute, time.Second, func() bool {
		var err error
		pods, err = first.client.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: "app=everywhere"})
		if err != nil || len(pods.Items) != len(nodes) {
			return false
		}
		for _, p := range pods.Items {
			if p.Status.Phase != corev1.PodRunning || p.Status.PodIP == "" {
				return false
			}
		}
		return true
	}) {
		t.Fatalf("the DaemonSet did not run a pod on each of %d nodes: %+v", len(nodes), pods)
	}
	byNode := map[string]corev1.Pod{}
	for _, p := range pods.Items {
		byNode[p.Spec.NodeName] = p
	}
	for _, n := range nodes {
		pod, ok := byNode[n.Name]
		if !ok {
			t.Errorf("no DaemonSet pod on %s", n.Name)
			continue
		}
		gateway, err := n.PodNetworkGateway()
		if err != nil {
			t.Fatal(err)
		}
		_, subnet, err := net.ParseCIDR(gateway + "/24")
		if err != nil {
			t.Fatal(err)
		}
		if !subnet.Contains(net.ParseIP(pod.Status.PodIP)) {
			t.Errorf("pod %s on %s has address %s, outside its node's subnet %s", pod.Name, n.Name, pod.Status.PodIP, subnet)
		}
		// The QoS cgroups the kubelet made under its root: in the memory hierarchy on cgroup v1, in
		// the unified one on v2.
		kubepods := filepath.Join("/sys/fs/cgroup/memory", n.CgroupRoot(), "kubepods")
		if _, err := os.Stat("/sys/fs/cgroup/memory"); err != nil {
			kubepods = filepath.Join("/sys/fs/cgroup", n.CgroupRoot(), "kubepods")
		}
		if _, err := os.Stat(kubepods); err != nil {
			t.Errorf("node %s keeps no pods under its own cgroup root: %v", n.Name, err)
		}
	}
	t.Logf("%d nodes Ready, one DaemonSet pod on each in its node's subnet", len(nodes))
}
