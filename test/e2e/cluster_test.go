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
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"
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

func newClusterNode(t *testing.T, before ...func(*framework.Node)) *clusterNode {
	t.Helper()
	n := newNodeOn(t, podRuntime(t), before...)
	cp, client, err := n.JoinControlPlane()
	if cp != nil {
		t.Cleanup(func() {
			if t.Failed() {
				harvest(t, filepath.Join(logsDir, strings.ReplaceAll(t.Name(), "/", "_")), 15, cp.Etcd, cp.APIServer, cp.ControllerManager, cp.Scheduler)
			}
			_ = cp.Stop()
		})
	}
	if err != nil {
		t.Fatal(err)
	}
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
	return framework.NodeCondition(node, typ)
}

func tainted(node *corev1.Node) bool { return framework.HasTaint(node, nodestatus.StartupTaintKey) }

// A warm-node gate on a real control plane: the node registers with the startup taint; a pod
// that tolerates nothing special stays Pending; image-keeper (a user bound to deploy/rbac.yaml's
// ClusterRole, nothing more) pulls the wanted images, sets ImageCacheReady=True and removes the
// taint; the scheduler then places the pod, which starts from the cache without asking the
// registry for its image. Removing an image by hand turns the condition False, naming it, until
// image-keeper restores it; a new image list changes the wanted-hash annotation.
func TestWarmNodeGate(t *testing.T) {
	t.Parallel()
	c := newClusterNode(t)
	ctx := context.Background()
	app := push(t, c.Node, framework.ImageSpec{Repository: "e2e/app", Tag: "1", PadBytes: 4 << 20})
	second := push(t, c.Node, framework.ImageSpec{Repository: "e2e/second", Tag: "1"})
	startRuntimeWithPause(t, c.Node)
	// Registered with the startup taint by the shipped kubelet config drop-in.
	warmDropIn, err := os.ReadFile(filepath.Join(repoRoot, "deploy", "kubelet", "60-imagecache-warm.conf"))
	if err != nil {
		t.Fatal(err)
	}
	config, err := c.WriteKubeletConfig("kubelet", framework.KubeletConfig{Gate: true, Exclude: []string{app.Ref, second.Ref}, NoPressure: true, DropIn: string(warmDropIn)})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.StartKubelet(config); err != nil {
		t.Fatal(err)
	}
	c.waitTaintedReady(t)

	if _, err := c.client.CoreV1().Pods("default").Create(ctx, framework.Pod("app", app.Ref), metav1.CreateOptions{}); err != nil {
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

	// image-keeper, with a kubeconfig of a user that will only have deploy/rbac.yaml's
	// ClusterRole. It starts before the role is bound: publishing is refused, logged once, and
	// retried until the binding exists.
	const user = "image-keeper-e2e"
	kubeconfig, err := c.cp.UserKubeconfig(user, nil)
	if err != nil {
		t.Fatal(err)
	}
	keeperConfig := filepath.Join(c.Root, "image-keeper.yaml")
	if err := framework.WriteKeeperConfig(keeperConfig, app.Ref); err != nil {
		t.Fatal(err)
	}
	if err := c.StartKeeper("--config", keeperConfig, "--kubeconfig", kubeconfig, "--node-name", framework.NodeName,
		"--interval", "2s", "--node-status-heartbeat", "10s"); err != nil {
		t.Fatal(err)
	}
	const failed = "Publishing the node's image cache state failed"
	if !framework.Eventually(time.Minute, 500*time.Millisecond, func() bool { return c.Keeper.CountInLog(failed) > 0 }) {
		t.Fatalf("no failure to publish without RBAC; image-keeper: %s", framework.Tail(c.Keeper, 20))
	}
	time.Sleep(5 * time.Second) // two more retries, refused the same way
	if n := c.Keeper.CountInLog(failed); n != 1 || !strings.Contains(c.Keeper.LogText(), "forbidden") {
		t.Errorf("the refused publishing was logged %d times (want once, saying forbidden)", n)
	}
	c.applyRBAC(t, user)
	var warmHash string
	var warm corev1.NodeCondition
	if !framework.Eventually(2*time.Minute, time.Second, func() bool {
		node := c.node(t)
		cond := condition(node, nodestatus.ConditionType)
		warmHash = node.Annotations[nodestatus.WantedHashAnnotation]
		if cond != nil {
			warm = *cond
		}
		return cond != nil && cond.Status == corev1.ConditionTrue && !tainted(node) && warmHash != ""
	}) {
		t.Fatalf("no ImageCacheReady=True and untainted node; node: %+v\nimage-keeper: %s", c.node(t).Status.Conditions, framework.Tail(c.Keeper, 20))
	}
	if !strings.Contains(c.Keeper.LogText(), "Publishing the node's image cache state works again") {
		t.Error("image-keeper did not log that publishing recovered")
	}
	// The kubelet's conditions are untouched by the patch (merged by type).
	if ready := condition(c.node(t), corev1.NodeReady); ready == nil || ready.Status != corev1.ConditionTrue {
		t.Errorf("the node's Ready condition after image-keeper's patches: %+v", ready)
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
	// Nothing changes: the heartbeat (10 s here) moves lastHeartbeatTime, not lastTransitionTime.
	if !framework.Eventually(30*time.Second, time.Second, func() bool {
		cond := condition(c.node(t), nodestatus.ConditionType)
		return cond != nil && cond.LastHeartbeatTime.After(warm.LastHeartbeatTime.Time)
	}) {
		t.Errorf("no heartbeat within 30 s of %v", warm.LastHeartbeatTime)
	} else if cond := condition(c.node(t), nodestatus.ConditionType); !cond.LastTransitionTime.Equal(&warm.LastTransitionTime) || cond.Status != corev1.ConditionTrue {
		t.Errorf("a heartbeat changed the transition time or status: %+v, was %+v", cond, warm)
	}
	// A restarted image-keeper continues from the Node's condition: still True, same transition.
	c.Keeper.Stop(5 * time.Second)
	if err := c.StartKeeper("--config", keeperConfig, "--kubeconfig", kubeconfig, "--node-name", framework.NodeName,
		"--interval", "2s", "--node-status-heartbeat", "10s"); err != nil {
		t.Fatal(err)
	}
	if !framework.Eventually(30*time.Second, time.Second, func() bool {
		cond := condition(c.node(t), nodestatus.ConditionType)
		return cond != nil && cond.LastHeartbeatTime.After(warm.LastHeartbeatTime.Add(10*time.Second))
	}) {
		t.Errorf("the restarted image-keeper published no heartbeat; image-keeper: %s", framework.Tail(c.Keeper, 10))
	}
	if cond := condition(c.node(t), nodestatus.ConditionType); cond.Status != corev1.ConditionTrue || !cond.LastTransitionTime.Equal(&warm.LastTransitionTime) {
		t.Errorf("after a restart the condition is %+v; want True since %v", cond, warm.LastTransitionTime)
	}

	// Removed by hand: the condition goes False naming the image, then True after the restore.
	if err := c.RemoveImage(second.Ref); err != nil {
		t.Fatal(err) // not wanted by image-keeper yet: stays removed
	}
	if err := framework.WriteKeeperConfig(keeperConfig, app.Ref, second.Ref); err != nil {
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

// kubectl runs the kubectl of the same release against the cluster, as its admin.
func (c *clusterNode) kubectl(t *testing.T, args ...string) string {
	t.Helper()
	return c.shell(t, "kubectl "+shellQuote(args))
}

// shell runs a command line with kubectl on PATH and KUBECONFIG set to the admin's, as in a
// doc's console session.
func (c *clusterNode) shell(t *testing.T, line string) string {
	t.Helper()
	cmd := exec.Command("bash", "-c", line)
	cmd.Env = append(os.Environ(), "PATH="+binDir+":"+os.Getenv("PATH"), "KUBECONFIG="+c.cp.AdminKubeconfig)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", line, err, out)
	}
	return string(out)
}

func shellQuote(args []string) string {
	quoted := make([]string, len(args))
	for i, a := range args {
		quoted[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
	}
	return strings.Join(quoted, " ")
}

// overlay is a kustomize overlay of deploy/, as docs/image-keeper.md's "Rollout with
// kustomize" shows: the image, the ConfigMap's list, flags appended to image-keeper's args,
// environment variables, a node selector, and the DaemonSet's hostPaths (a throwaway node's
// live under its root).
type overlay struct {
	image        string
	list         []string
	args         []string
	env          map[string]string
	nodeSelector map[string]string
	hostPaths    map[string]string // by the path in deploy/daemonset.yaml
	// ops are further JSON patch operations on the DaemonSet.
	ops []map[string]any
}

// write writes dir/kustomization.yaml and returns dir, for `kubectl apply -k dir`.
func (o overlay) write(t *testing.T, dir string) string {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	base, err := filepath.Rel(dir, filepath.Join(repoRoot, "deploy"))
	if err != nil {
		t.Fatal(err)
	}
	name, tag := o.image, ""
	if i := strings.LastIndex(o.image, ":"); i > strings.LastIndex(o.image, "/") {
		name, tag = o.image[:i], o.image[i+1:]
	}
	var volumes []map[string]any
	for _, v := range shippedDaemonSet(t).Spec.Template.Spec.Volumes {
		if v.HostPath == nil || o.hostPaths == nil {
			continue
		}
		path, ok := o.hostPaths[v.HostPath.Path]
		if !ok {
			t.Fatalf("volume %q: hostPath %s has no node path in this test", v.Name, v.HostPath.Path)
		}
		volumes = append(volumes, map[string]any{"name": v.Name, "hostPath": map[string]any{"path": path}})
	}
	var env []map[string]any
	for k, v := range o.env {
		env = append(env, map[string]any{"name": k, "value": v})
	}
	podSpec := map[string]any{"containers": []map[string]any{{"name": "image-keeper", "env": env}}}
	if o.nodeSelector != nil {
		podSpec["nodeSelector"] = o.nodeSelector
	}
	if volumes != nil {
		podSpec["volumes"] = volumes
	}
	ds := map[string]any{
		"apiVersion": "apps/v1", "kind": "DaemonSet",
		"metadata": map[string]any{"name": "image-keeper", "namespace": "image-keeper"},
		"spec":     map[string]any{"template": map[string]any{"spec": podSpec}},
	}
	cm := map[string]any{
		"apiVersion": "v1", "kind": "ConfigMap",
		"metadata": map[string]any{"name": "image-keeper", "namespace": "image-keeper"},
		"data":     map[string]any{"config.yaml": string(framework.KeeperConfig(o.list...))},
	}
	ops := slices.Clone(o.ops)
	for _, a := range o.args {
		ops = append(ops, map[string]any{"op": "add", "path": "/spec/template/spec/containers/0/args/-", "value": a})
	}
	patches := []map[string]any{{"patch": mustYAML(t, ds)}, {"patch": mustYAML(t, cm)}}
	if len(ops) > 0 {
		patches = append(patches, map[string]any{"target": map[string]any{"kind": "DaemonSet", "name": "image-keeper"}, "patch": mustYAML(t, ops)})
	}
	k := map[string]any{
		"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
		"resources": []string{base},
		"images":    []map[string]any{{"name": "ghcr.io/kubelet-imagecache/image-keeper", "newName": name, "newTag": tag}},
		"patches":   patches,
	}
	if err := os.WriteFile(filepath.Join(dir, "kustomization.yaml"), []byte(mustYAML(t, k)), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func mustYAML(t *testing.T, v any) string {
	t.Helper()
	data, err := yaml.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// shippedDaemonSet is deploy/daemonset.yaml's DaemonSet.
func shippedDaemonSet(t *testing.T) *appsv1.DaemonSet {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repoRoot, "deploy", "daemonset.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, doc := range strings.Split(string(data), "\n---\n") {
		if strings.Contains(doc, "\nkind: DaemonSet\n") {
			var ds appsv1.DaemonSet
			if err := yaml.UnmarshalStrict([]byte(doc), &ds); err != nil {
				t.Fatal(err)
			}
			return &ds
		}
	}
	t.Fatal("deploy/daemonset.yaml has no DaemonSet")
	return nil
}

// updateDaemonSet changes a DaemonSet's spec, reading it again when the DaemonSet controller
// wrote its status in between (a conflict).
func (c *clusterNode) updateDaemonSet(ctx context.Context, t *testing.T, namespace, name string, change func(*appsv1.DaemonSet)) {
	t.Helper()
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		current, err := c.client.AppsV1().DaemonSets(namespace).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		change(current)
		_, err = c.client.AppsV1().DaemonSets(namespace).Update(ctx, current, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		t.Fatalf("updating DaemonSet %s/%s: %v", namespace, name, err)
	}
}

// pushKeeperImage builds image-keeper's OCI image (`make image`'s builder) and pushes it to the
// node's registry.
func pushKeeperImage(t *testing.T, n *framework.Node) string {
	t.Helper()
	ref, err := n.PushKeeperImage(repoRoot)
	if err != nil {
		t.Fatal(err)
	}
	return ref
}

// deploy/ as a user applies it, on a real cluster: rbac.yaml and daemonset.yaml server-side
// applied, the DaemonSet's image the one `make image` builds, pushed to the registry. The
// DaemonSet controller runs image-keeper on the node registered with the startup taint (the pod
// tolerates it); a Deployment stays Pending until image-keeper, with only its service account's
// RBAC, has pulled the allowlist, set ImageCacheReady and removed the taint; the Deployment's
// pod then starts with no registry request for its image. Changing the ConfigMap's image list
// rolls out to the node: the wanted-hash annotation changes and the new image is pulled.
//
// Changed from the manifests, and why: the hostPaths (the throwaway node's containerd socket
// directory and kubelet config live under its root), the image, the ConfigMap's list (this
// test's images), and KUBERNETES_SERVICE_HOST/PORT: this cluster runs no kube-proxy, so the
// service IP the kubelet would put there leads nowhere; the API server's own address stands in.
func TestClusterDaemonSet(t *testing.T) {
	t.Parallel()
	c := newClusterNode(t)
	ctx := context.Background()
	app := push(t, c.Node, framework.ImageSpec{Repository: "e2e/app", Tag: "1", PadBytes: 4 << 20})
	next := push(t, c.Node, framework.ImageSpec{Repository: "e2e/next", Tag: "1"})
	keeperRef := pushKeeperImage(t, c.Node)
	startRuntimeWithPause(t, c.Node)
	// Registered with the startup taint by the kubelet flag (what kubeadm's nodeRegistration.taints
	// becomes).
	c.RegisterWithTaints = []string{nodestatus.StartupTaintKey + "=:NoSchedule"}
	// The kubelet's allowlist protects the registry's e2e images; a wildcard is not pullable, so
	// what image-keeper pulls is the ConfigMap's list alone.
	config, err := c.WriteKubeletConfig("kubelet", framework.KubeletConfig{Gate: true, Exclude: []string{c.RegistryAddr + "/e2e/*"}, NoPressure: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.StartKubelet(config); err != nil {
		t.Fatal(err)
	}
	c.waitTaintedReady(t)

	// The workload first: it must wait for the cache.
	deployment := framework.Deployment("app", app.Ref)
	if _, err := c.client.AppsV1().Deployments("default").Create(ctx, deployment, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	host, port, err := net.SplitHostPort(strings.TrimPrefix(c.cp.Server, "https://"))
	if err != nil {
		t.Fatal(err)
	}
	o := overlay{
		image: keeperRef,
		list:  []string{app.Ref},
		args:  []string{"--interval=2s", "--node-status-heartbeat=10s"},
		env:   map[string]string{"KUBERNETES_SERVICE_HOST": host, "KUBERNETES_SERVICE_PORT": port},
		hostPaths: map[string]string{
			"/run/containerd":                filepath.Dir(strings.TrimPrefix(c.RuntimeEndpoint(), "unix://")),
			"/var/lib/kubelet/config.yaml":   config,
			"/etc/kubernetes/kubelet.conf.d": filepath.Join(c.Root, "kubelet", "conf.d"),
			"/var/lib/image-keeper":          filepath.Join(c.Root, "image-keeper-state"),
		},
	}
	// docs/image-keeper.md's command, on an overlay of deploy/.
	c.kubectl(t, "apply", "--server-side", "-k", o.write(t, filepath.Join(c.Root, "v1")))
	applied := time.Now()

	var warmHash string
	if !framework.Eventually(3*time.Minute, time.Second, func() bool {
		node := c.node(t)
		cond := condition(node, nodestatus.ConditionType)
		warmHash = node.Annotations[nodestatus.WantedHashAnnotation]
		return cond != nil && cond.Status == corev1.ConditionTrue && !tainted(node) && warmHash != ""
	}) {
		pods, _ := c.client.CoreV1().Pods("image-keeper").List(ctx, metav1.ListOptions{})
		t.Fatalf("no ImageCacheReady=True and untainted node; conditions %+v\nimage-keeper pods: %+v\nkubelet: %s", c.node(t).Status.Conditions, pods.Items, framework.Tail(c.Kubelet, 30))
	}
	t.Logf("deploy/ applied → cache warm, taint removed: %v", time.Since(applied).Round(time.Second))
	c.checkWatchCommand(t, warmHash)
	appRequests := c.Registry.CountInLog("/v2/e2e/app/")
	if !framework.Eventually(2*time.Minute, time.Second, func() bool {
		pods, err := c.client.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: "app=app"})
		return err == nil && len(pods.Items) == 1 && pods.Items[0].Status.Phase == corev1.PodRunning
	}) {
		t.Fatalf("the Deployment's pod did not run after the taint was removed; kubelet: %s", framework.Tail(c.Kubelet, 20))
	}
	t.Logf("deploy/ applied → the Deployment's pod running: %v", time.Since(applied).Round(time.Second))
	if n := c.Registry.CountInLog("/v2/e2e/app/") - appRequests; n != 0 {
		t.Errorf("the Deployment's pod asked the registry for its image %d times; the cache was warm", n)
	}

	// Roll out a longer list: the annotation follows, the new image arrives.
	o.list = []string{app.Ref, next.Ref}
	c.kubectl(t, "apply", "--server-side", "-k", o.write(t, filepath.Join(c.Root, "v2")))
	rollout := time.Now()
	if !framework.Eventually(3*time.Minute, time.Second, func() bool {
		node := c.node(t)
		cond := condition(node, nodestatus.ConditionType)
		return node.Annotations[nodestatus.WantedHashAnnotation] != warmHash && cond != nil && cond.Status == corev1.ConditionTrue && present(t, c.Node)[next.Ref]
	}) {
		t.Fatalf("the new image list did not roll out to the node: annotation %q (was %q), condition %+v", c.node(t).Annotations[nodestatus.WantedHashAnnotation], warmHash, condition(c.node(t), nodestatus.ConditionType))
	}
	t.Logf("ConfigMap changed → new hash, new image present, condition True: %v", time.Since(rollout).Round(time.Second))

	// docs/image-keeper.md's canary overlay, on a base that is this test's overlay: after the
	// apply, the node keeps its pod and list (OnDelete); the doc's delete command, on the node
	// labelled pool=canary, replaces the pod, which publishes the new list warm.
	v3 := filepath.Join(c.Root, "v3")
	o.write(t, filepath.Join(v3, "base"))
	third := push(t, c.Node, framework.ImageSpec{Repository: "e2e/third", Tag: "1"})
	canaryList := []string{app.Ref, next.Ref, third.Ref}
	writeCanaryOverlay(t, v3, canaryList)
	c.kubectl(t, "label", "node", framework.NodeName, "pool=canary")
	block, err := framework.DocBlock(filepath.Join(repoRoot, "docs", "image-keeper.md"), "<!-- kustomize-canary-rollout -->", "console")
	if err != nil {
		t.Fatal(err)
	}
	commands := strings.Split(strings.TrimSpace(block), "\n")
	if len(commands) != 2 {
		t.Fatalf("the rollout block has %d commands; want apply, then delete", len(commands))
	}
	c.shell(t, "cd "+shellQuote([]string{v3})+" && "+strings.TrimPrefix(commands[0], "$ "))
	v2Hash := nodestatus.WantedHash([]string{app.Ref, next.Ref})
	time.Sleep(6 * time.Second) // three passes of image-keeper's, were it replaced
	if got := c.node(t).Annotations[nodestatus.WantedHashAnnotation]; got != v2Hash || present(t, c.Node)[third.Ref] {
		t.Fatalf("after applying the canary overlay (OnDelete) the node moved to hash %q (third image present: %v) before its pod was deleted; want it to stay on %q", got, present(t, c.Node)[third.Ref], v2Hash)
	}
	c.shell(t, "cd "+shellQuote([]string{v3})+" && "+strings.TrimPrefix(commands[1], "$ "))
	canaryStart := time.Now()
	if !framework.Eventually(3*time.Minute, time.Second, func() bool {
		node := c.node(t)
		cond := condition(node, nodestatus.ConditionType)
		return node.Annotations[nodestatus.WantedHashAnnotation] == nodestatus.WantedHash(canaryList) && cond != nil && cond.Status == corev1.ConditionTrue && present(t, c.Node)[third.Ref]
	}) {
		t.Fatalf("the canary node did not move to the canary list: annotation %q, condition %+v", c.node(t).Annotations[nodestatus.WantedHashAnnotation], condition(c.node(t), nodestatus.ConditionType))
	}
	t.Logf("canary pod deleted → new pod warm on the canary list: %v", time.Since(canaryStart).Round(time.Second))
}

// waitTaintedReady waits for the node to be Ready with the startup taint as its only taint.
func (c *clusterNode) waitTaintedReady(t *testing.T) {
	t.Helper()
	if !framework.Eventually(2*time.Minute, time.Second, func() bool {
		node, err := c.client.CoreV1().Nodes().Get(context.Background(), framework.NodeName, metav1.GetOptions{})
		if err != nil {
			return false
		}
		ready := condition(node, corev1.NodeReady)
		return ready != nil && ready.Status == corev1.ConditionTrue && len(node.Spec.Taints) == 1 && tainted(node)
	}) {
		node, _ := c.client.CoreV1().Nodes().Get(context.Background(), framework.NodeName, metav1.GetOptions{})
		t.Fatalf("the node is not Ready with the startup taint alone: %+v; kubelet: %s", node, framework.Tail(c.Kubelet, 20))
	}
}

// checkWatchCommand runs docs/warm-nodes.md's "What to watch" command: its header must be the
// doc's, and the node's row must say the cache is warm, with the hash, and no taint left.
func (c *clusterNode) checkWatchCommand(t *testing.T, hash string) {
	t.Helper()
	block, err := framework.DocBlock(filepath.Join(repoRoot, "docs", "warm-nodes.md"), "<!-- warm-nodes-watch -->", "console")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(block, "\n")
	command, wantHeader := strings.TrimPrefix(lines[0], "$ "), lines[1]
	out := strings.Split(strings.TrimSpace(c.shell(t, command)), "\n")
	if len(out) != 2 || strings.Join(strings.Fields(out[0]), " ") != strings.Join(strings.Fields(wantHeader), " ") {
		t.Fatalf("%s printed:\n%s\nwant the header %q and one node", command, strings.Join(out, "\n"), wantHeader)
	}
	if got, want := strings.Join(strings.Fields(out[1]), " "), framework.NodeName+" True "+nodestatus.ReasonWarm+" "+hash+" <none>"; got != want {
		t.Errorf("the node's row is %q; want %q", got, want)
	}
}

// docs/warm-nodes.md's kubeadm JoinConfiguration is valid for kubeadm of this release (strict
// decoding: a misspelt field fails) and registers the taint image-keeper removes.
func TestWarmNodeDocs(t *testing.T) {
	t.Parallel()
	block, err := framework.DocBlock(filepath.Join(repoRoot, "docs", "warm-nodes.md"), "<!-- warm-nodes-kubeadm -->", "yaml")
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "join.yaml")
	if err := os.WriteFile(file, []byte(block), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(filepath.Join(binDir, "kubeadm"), "config", "validate", "--config", file).CombinedOutput()
	if err != nil {
		t.Fatalf("kubeadm config validate: %v\n%s", err, out)
	}
	var join struct {
		NodeRegistration struct {
			Taints []corev1.Taint `json:"taints"`
		} `json:"nodeRegistration"`
	}
	if err := yaml.Unmarshal([]byte(block), &join); err != nil {
		t.Fatal(err)
	}
	if taints := join.NodeRegistration.Taints; len(taints) != 1 || taints[0].Key != nodestatus.StartupTaintKey || taints[0].Effect != corev1.TaintEffectNoSchedule {
		t.Errorf("the kubeadm example registers taints %+v; want %s:NoSchedule", taints, nodestatus.StartupTaintKey)
	}
}

// The kubelet's allowlist events reach the API server: on a node of the cluster, with a 10%
// budget on a 256 MiB image filesystem and three 10 MiB allowlisted images, the Warning
// ImageGCExclusionOverBudget is an Event of the Node, readable with the API.
func TestClusterGCEvents(t *testing.T) {
	t.Parallel()
	c := newClusterNode(t)
	ctx := context.Background()
	if err := c.LimitImageFS(256 << 20); err != nil {
		t.Fatal(err)
	}
	var budgeted []*framework.Image
	for _, tag := range []string{"a", "b", "c"} {
		budgeted = append(budgeted, push(t, c.Node, framework.ImageSpec{Repository: "e2e/budget", Tag: tag, PadBytes: 10 << 20}))
	}
	startRuntimeWithPause(t, c.Node)
	config, err := c.WriteKubeletConfig("kubelet", framework.KubeletConfig{
		Gate:          true,
		Exclude:       []string{c.RegistryAddr + "/e2e/budget"},
		BudgetPercent: ptr.To[int32](10),
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.StartKubelet(config); err != nil {
		t.Fatal(err)
	}
	for _, img := range budgeted {
		pull(t, c.Node, img.Ref)
		waitGCPasses(t, c.Node, 1)
	}
	var event *corev1.Event
	if !framework.Eventually(2*time.Minute, time.Second, func() bool {
		events, err := c.client.CoreV1().Events("default").List(ctx, metav1.ListOptions{FieldSelector: "reason=ImageGCExclusionOverBudget"})
		if err != nil || len(events.Items) == 0 {
			return false
		}
		event = &events.Items[0]
		return true
	}) {
		t.Fatalf("no ImageGCExclusionOverBudget event through the API; kubelet: %s", framework.Tail(c.Kubelet, 20))
	}
	if event.Type != corev1.EventTypeWarning || event.InvolvedObject.Kind != "Node" || event.InvolvedObject.Name != framework.NodeName ||
		!strings.Contains(event.Message, "exceed imageGCExcludeBudgetPercent (10% of 256.0 MiB)") {
		t.Errorf("event %s %s/%s: %q", event.Type, event.InvolvedObject.Kind, event.InvolvedObject.Name, event.Message)
	}
}

// docs/image-keeper.md's canary overlay, as written, renders with the release's kubectl against
// deploy/: the new image, the list in a ConfigMap named by its hash and mounted by the DaemonSet,
// OnDelete, the flag appended, and the rest of deploy/ unchanged.
func TestKustomizeCanaryOverlay(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := os.CopyFS(filepath.Join(dir, "base"), os.DirFS(filepath.Join(repoRoot, "deploy"))); err != nil {
		t.Fatal(err)
	}
	canary := writeCanaryOverlay(t, dir, nil)
	out, err := exec.Command(filepath.Join(binDir, "kubectl"), "kustomize", canary).CombinedOutput()
	if err != nil {
		t.Fatalf("kubectl kustomize: %v\n%s", err, out)
	}
	var ds *appsv1.DaemonSet
	kinds := map[string]int{}
	var list *corev1.ConfigMap
	for _, doc := range strings.Split(string(out), "\n---\n") {
		var meta struct{ Kind string }
		if err := yaml.Unmarshal([]byte(doc), &meta); err != nil {
			t.Fatal(err)
		}
		kinds[meta.Kind]++
		switch meta.Kind {
		case "DaemonSet":
			ds = &appsv1.DaemonSet{}
			if err := yaml.UnmarshalStrict([]byte(doc), ds); err != nil {
				t.Fatal(err)
			}
		case "ConfigMap":
			var cm corev1.ConfigMap
			if err := yaml.UnmarshalStrict([]byte(doc), &cm); err != nil {
				t.Fatal(err)
			}
			if strings.HasPrefix(cm.Name, "image-keeper-list-") {
				list = &cm
			}
		}
	}
	if ds == nil || list == nil {
		t.Fatalf("no DaemonSet or hashed list ConfigMap in:\n%s", out)
	}
	c := ds.Spec.Template.Spec.Containers[0]
	var volume string
	for _, v := range ds.Spec.Template.Spec.Volumes {
		if v.Name == "config" && v.ConfigMap != nil {
			volume = v.ConfigMap.Name
		}
	}
	switch {
	case c.Image != "ghcr.io/kubelet-imagecache/image-keeper:v0.2.0":
		t.Errorf("image %s", c.Image)
	case ds.Spec.UpdateStrategy.Type != appsv1.OnDeleteDaemonSetStrategyType || ds.Spec.UpdateStrategy.RollingUpdate != nil:
		t.Errorf("update strategy %+v", ds.Spec.UpdateStrategy)
	case volume != list.Name:
		t.Errorf("the config volume mounts %q, not the list %q", volume, list.Name)
	case !strings.Contains(list.Data["config.yaml"], "registry.example.com/edge/agent:2.5"):
		t.Errorf("the list: %q", list.Data["config.yaml"])
	case c.Args[len(c.Args)-1] != "--pull-slots=3":
		t.Errorf("args %v", c.Args)
	}
	if want := map[string]int{"Namespace": 1, "ServiceAccount": 1, "ConfigMap": 2, "DaemonSet": 1, "ClusterRole": 1, "ClusterRoleBinding": 1, "Role": 1, "RoleBinding": 1,
		"ValidatingAdmissionPolicy": 2, "ValidatingAdmissionPolicyBinding": 2, "NetworkPolicy": 1, "ResourceQuota": 1}; fmt.Sprint(kinds) != fmt.Sprint(want) {
		t.Errorf("rendered %v; want %v", kinds, want)
	}
}

// writeCanaryOverlay writes docs/image-keeper.md's canary overlay into dir/overlays/canary, its
// list file with images (the doc's own when nil), and returns the overlay's directory.
func writeCanaryOverlay(t *testing.T, dir string, images []string) string {
	t.Helper()
	doc := filepath.Join(repoRoot, "docs", "image-keeper.md")
	kustomization, err := framework.DocBlock(doc, "<!-- kustomize-canary -->", "yaml")
	if err != nil {
		t.Fatal(err)
	}
	list, err := framework.DocBlock(doc, "<!-- kustomize-canary-list -->", "yaml")
	if err != nil {
		t.Fatal(err)
	}
	if images != nil {
		list = string(framework.KeeperConfig(images...))
	}
	canary := filepath.Join(dir, "overlays", "canary")
	if err := os.MkdirAll(canary, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(canary, "kustomization.yaml"), []byte(kustomization), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(canary, "config.yaml"), []byte(list), 0o644); err != nil {
		t.Fatal(err)
	}
	return canary
}
