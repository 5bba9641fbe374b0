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
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/yaml"

	"github.com/kubelet-imagecache/kubelet-imagecache/pkg/nodestatus"
	"github.com/kubelet-imagecache/kubelet-imagecache/test/e2e/framework"
)

// clusterNode is a throwaway node joined to a throwaway control plane: the patched kubelet on
// containerd 2.x, registered with image-keeper's startup taint.
type clusterNode struct {
	*framework.Node
	cp     *framework.ControlPlane
	client kubernetes.Interface
}

func newClusterNode(t *testing.T) *clusterNode {
	t.Helper()
	n := newNode(t)
	n.PodNetwork = true
	gateway, err := n.PodNetworkGateway()
	if err != nil {
		t.Fatal(err)
	}
	cp, err := framework.StartControlPlane(filepath.Join(n.Root, "control-plane"), binDir, gateway)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			dest := filepath.Join(logsDir, strings.ReplaceAll(t.Name(), "/", "_"))
			_ = os.MkdirAll(dest, 0o755)
			for _, p := range []*framework.Process{cp.Etcd, cp.APIServer, cp.ControllerManager, cp.Scheduler} {
				if p == nil {
					continue
				}
				data, _ := os.ReadFile(p.Log)
				_ = os.WriteFile(filepath.Join(dest, filepath.Base(p.Log)), data, 0o644)
				t.Logf("--- tail of %s (full log in %s):\n%s", p.Name, dest, framework.Tail(p, 15))
			}
		}
		_ = cp.Stop()
	})
	restConfig, err := clientcmd.BuildConfigFromFlags("", cp.AdminKubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	client, err := kubernetes.NewForConfig(restConfig)
	if err != nil {
		t.Fatal(err)
	}
	// The controller manager is up once it made the default namespace's service account, which
	// every pod needs.
	if !framework.Eventually(time.Minute, 500*time.Millisecond, func() bool {
		_, err := client.CoreV1().ServiceAccounts("default").Get(context.Background(), "default", metav1.GetOptions{})
		return err == nil
	}) {
		t.Fatalf("no default service account; kube-controller-manager: %s", framework.Tail(cp.ControllerManager, 20))
	}
	if n.KubeletKubeconfig, err = cp.NodeKubeconfig(framework.NodeName); err != nil {
		t.Fatal(err)
	}
	n.RegisterWithTaints = []string{nodestatus.StartupTaintKey + "=:NoSchedule"}
	return &clusterNode{Node: n, cp: cp, client: client}
}

// applyFile creates (or leaves) every object of a manifest of this repo's deploy/ that client
// knows: a ClusterRole, ClusterRoleBinding, ServiceAccount, Namespace.
func (c *clusterNode) applyRBAC(t *testing.T, userName string) {
	t.Helper()
	ctx := context.Background()
	data, err := os.ReadFile(filepath.Join(repoRoot, "deploy", "rbac.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, doc := range strings.Split(string(data), "\n---\n") {
		if !strings.Contains(doc, "\nkind: ClusterRole\n") {
			continue
		}
		var role rbacv1.ClusterRole
		if err := yaml.UnmarshalStrict([]byte(doc), &role); err != nil {
			t.Fatal(err)
		}
		if _, err := c.client.RbacV1().ClusterRoles().Create(ctx, &role, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatal(err)
		}
		binding := &rbacv1.ClusterRoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: role.Name + "-" + userName},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role.Name},
			Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: "User", Name: userName}},
		}
		if _, err := c.client.RbacV1().ClusterRoleBindings().Create(ctx, binding, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Fatal("deploy/rbac.yaml has no ClusterRole")
}

func (c *clusterNode) node(t *testing.T) *corev1.Node {
	t.Helper()
	node, err := c.client.CoreV1().Nodes().Get(context.Background(), framework.NodeName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return node
}

func condition(node *corev1.Node, typ corev1.NodeConditionType) *corev1.NodeCondition {
	for i := range node.Status.Conditions {
		if node.Status.Conditions[i].Type == typ {
			return &node.Status.Conditions[i]
		}
	}
	return nil
}

func tainted(node *corev1.Node) bool {
	for _, taint := range node.Spec.Taints {
		if taint.Key == nodestatus.StartupTaintKey {
			return true
		}
	}
	return false
}

// A warm-node gate on a real control plane: the node registers with the startup taint; a pod
// that tolerates nothing special stays Pending; image-keeper (a user bound to deploy/rbac.yaml's
// ClusterRole, nothing more) pulls the wanted images, sets ImageCacheReady=True and removes the
// taint; the scheduler then places the pod, which starts from the cache without asking the
// registry for its image. Removing an image by hand turns the condition False, naming it, until
// image-keeper restores it; a new image list changes the wanted-hash annotation.
func TestWarmNodeGate(t *testing.T) {
	c := newClusterNode(t)
	ctx := context.Background()
	pause := push(t, c.Node, framework.ImageSpec{Repository: "e2e/pause", Tag: "1"})
	app := push(t, c.Node, framework.ImageSpec{Repository: "e2e/app", Tag: "1", PadBytes: 4 << 20})
	second := push(t, c.Node, framework.ImageSpec{Repository: "e2e/second", Tag: "1"})
	startContainerd(t, c.Node, pause)
	config, err := c.WriteKubeletConfig("kubelet", framework.KubeletConfig{Gate: true, Exclude: []string{app.Ref, second.Ref}, NoPressure: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.StartKubelet(config); err != nil {
		t.Fatal(err)
	}
	// Ready (the node lifecycle controller's not-ready taint gone), and only our taint left.
	if !framework.Eventually(2*time.Minute, time.Second, func() bool {
		node, err := c.client.CoreV1().Nodes().Get(ctx, framework.NodeName, metav1.GetOptions{})
		if err != nil {
			return false
		}
		ready := condition(node, corev1.NodeReady)
		return ready != nil && ready.Status == corev1.ConditionTrue && len(node.Spec.Taints) == 1 && tainted(node)
	}) {
		node, _ := c.client.CoreV1().Nodes().Get(ctx, framework.NodeName, metav1.GetOptions{})
		t.Fatalf("the node is not Ready with the startup taint alone: %+v; kubelet: %s", node, framework.Tail(c.Kubelet, 20))
	}

	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "app", Namespace: "default"},
		Spec: corev1.PodSpec{
			TerminationGracePeriodSeconds: new(int64),
			Containers:                    []corev1.Container{{Name: "app", Image: app.Ref, ImagePullPolicy: corev1.PullIfNotPresent}},
		},
	}
	if _, err := c.client.CoreV1().Pods("default").Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// The scheduler says why it cannot place the pod: the untolerated taint (the node's only one).
	if !framework.Eventually(time.Minute, time.Second, func() bool {
		p, err := c.client.CoreV1().Pods("default").Get(ctx, "app", metav1.GetOptions{})
		if err != nil {
			return false
		}
		for _, cond := range p.Status.Conditions {
			if cond.Type == corev1.PodScheduled && cond.Status == corev1.ConditionFalse && strings.Contains(cond.Message, "untolerated taint") {
				return true
			}
		}
		return false
	}) {
		t.Fatal("the pod was not reported unschedulable because of the startup taint")
	}
	if present(t, c.Node)[app.Ref] {
		t.Fatal("the app image is on the node before image-keeper ran")
	}

	// image-keeper, with a kubeconfig of a user that only has deploy/rbac.yaml's ClusterRole.
	const user = "image-keeper-e2e"
	c.applyRBAC(t, user)
	kubeconfig, err := c.cp.UserKubeconfig(user, nil)
	if err != nil {
		t.Fatal(err)
	}
	keeperConfig := filepath.Join(c.Root, "image-keeper.yaml")
	if err := os.WriteFile(keeperConfig, []byte("apiVersion: imagekeeper.kubelet-imagecache.io/v1alpha1\nkind: ImageKeeperConfiguration\nimages: ["+app.Ref+"]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := c.StartKeeper("--config", keeperConfig, "--kubeconfig", kubeconfig, "--node-name", framework.NodeName,
		"--interval", "2s", "--node-status-heartbeat", "10s"); err != nil {
		t.Fatal(err)
	}
	var warmHash string
	if !framework.Eventually(2*time.Minute, time.Second, func() bool {
		node := c.node(t)
		cond := condition(node, nodestatus.ConditionType)
		warmHash = node.Annotations[nodestatus.WantedHashAnnotation]
		return cond != nil && cond.Status == corev1.ConditionTrue && !tainted(node) && warmHash != ""
	}) {
		t.Fatalf("no ImageCacheReady=True and untainted node; node: %+v\nimage-keeper: %s", c.node(t).Status.Conditions, framework.Tail(c.Keeper, 20))
	}
	pullsBefore := c.Registry.CountInLog("/v2/e2e/app/")
	if !framework.Eventually(2*time.Minute, time.Second, func() bool {
		p, err := c.client.CoreV1().Pods("default").Get(ctx, "app", metav1.GetOptions{})
		return err == nil && p.Status.Phase == corev1.PodRunning
	}) {
		t.Fatalf("the pod did not run after the taint was removed; kubelet: %s", framework.Tail(c.Kubelet, 20))
	}
	if after := c.Registry.CountInLog("/v2/e2e/app/"); after != pullsBefore {
		t.Errorf("the pod's start asked the registry for its image (%d requests); the cache was warm", after-pullsBefore)
	}

	// Removed by hand: the condition goes False naming the image, then True after the restore.
	if err := c.RemoveImage(second.Ref); err != nil {
		t.Fatal(err) // not wanted by image-keeper yet: stays removed
	}
	if err := os.WriteFile(keeperConfig, []byte("apiVersion: imagekeeper.kubelet-imagecache.io/v1alpha1\nkind: ImageKeeperConfiguration\nimages: ["+app.Ref+", "+second.Ref+"]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if !framework.Eventually(time.Minute, time.Second, func() bool {
		return c.node(t).Annotations[nodestatus.WantedHashAnnotation] != warmHash
	}) {
		t.Error("the wanted-hash annotation did not change with the image list")
	}
	if !framework.Eventually(time.Minute, time.Second, func() bool {
		cond := condition(c.node(t), nodestatus.ConditionType)
		return cond != nil && cond.Status == corev1.ConditionTrue && present(t, c.Node)[second.Ref]
	}) {
		t.Fatal("the new image was not pulled and reported")
	}
	// Stop image-keeper's pulls from winning the race: take the registry away, remove an image.
	c.StopRegistry()
	if err := c.RemoveImage(second.Ref); err != nil {
		t.Fatal(err)
	}
	if !framework.Eventually(time.Minute, time.Second, func() bool {
		cond := condition(c.node(t), nodestatus.ConditionType)
		return cond != nil && cond.Status == corev1.ConditionFalse && cond.Reason == nodestatus.ReasonMissing && strings.Contains(cond.Message, second.Ref)
	}) {
		t.Fatalf("the condition did not turn False naming %s: %+v", second.Ref, condition(c.node(t), nodestatus.ConditionType))
	}
	if tainted(c.node(t)) {
		t.Error("the startup taint came back on a node that runs pods")
	}
	if err := c.StartRegistry(); err != nil {
		t.Fatal(err)
	}
	if !framework.Eventually(2*time.Minute, time.Second, func() bool {
		cond := condition(c.node(t), nodestatus.ConditionType)
		return cond != nil && cond.Status == corev1.ConditionTrue
	}) {
		t.Fatal("the condition did not turn True after the restore")
	}
}
