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
	"encoding/json"
	"fmt"
	"math"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"

	"github.com/kubelet-imagecache/kubelet-imagecache/pkg/nodestatus"
	"github.com/kubelet-imagecache/kubelet-imagecache/pkg/pullslots"
	"github.com/kubelet-imagecache/kubelet-imagecache/test/e2e/framework"
)

// What a stolen image-keeper token can do, on a real API server with deploy/'s RBAC and
// admission policy applied as shipped. The token is the one image-keeper's pod gets: a service
// account token bound to a pod on node-a (the API server adds the node-name claim). With it,
// image-keeper's own publisher does its whole job on node-a (condition, annotation, startup
// taint); every other change RBAC would allow is refused by the policy, naming the rule: another
// Node, labels (also through nodes/status), other annotations, owner references, finalizers,
// cordoning, other taints, a NoExecute startup taint, other conditions, addresses, capacity. It
// takes and gives back a pull slot; it may not write another Lease or slot 1000, hold a slot in
// another node's name, give back another node's, write a slot with a year's duration, a wrapped
// leaseTransitions, an annotation or without its labels, or delete one. A token bound to no pod
// (as a legacy Secret token) may change nothing. No kubelet runs: the pod
// only needs to be bound to the node for its token to name it.
func TestKeeperAdmissionPolicy(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	// A control plane alone: the API server advertises the address of a node's pod network
	// bridge (it refuses loopback); no runtime or kubelet starts.
	n := newBareNode(t, podRuntime(t))
	cp, admin, err := n.JoinControlPlane()
	if cp != nil {
		t.Cleanup(func() {
			if t.Failed() {
				harvest(t, filepath.Join(logsDir, t.Name()), 15, cp.Etcd, cp.APIServer, cp.ControllerManager, cp.Scheduler)
			}
			_ = cp.Stop()
		})
	}
	if err != nil {
		t.Fatal(err)
	}

	// deploy/ as shipped: the namespace and service account (daemonset.yaml), RBAC, the policy.
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "image-keeper"}}
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "image-keeper", Namespace: "image-keeper"}}
	if _, err := admin.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.CoreV1().ServiceAccounts(sa.Namespace).Create(ctx, sa, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	kubectl := exec.Command(filepath.Join(binDir, "kubectl"), "--kubeconfig", cp.AdminKubeconfig, "apply", "--server-side",
		"-f", filepath.Join(repoRoot, "deploy", "rbac.yaml"), "-f", filepath.Join(repoRoot, "deploy", "admission.yaml"))
	if out, err := kubectl.CombinedOutput(); err != nil {
		t.Fatalf("kubectl apply: %v\n%s", err, out)
	}

	// Two Nodes as a kubelet would have registered them.
	for _, name := range []string{"node-a", "node-b"} {
		node := &corev1.Node{
			ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"kubernetes.io/hostname": name}, Annotations: map[string]string{"node.alpha.kubernetes.io/ttl": "0"}},
			Spec: corev1.NodeSpec{PodCIDR: "10.244.1.0/24", PodCIDRs: []string{"10.244.1.0/24"},
				Taints: []corev1.Taint{{Key: nodestatus.StartupTaintKey, Effect: corev1.TaintEffectNoSchedule}}},
		}
		if _, err := admin.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		// The controller manager may write the new Node first (the node lifecycle
		// controller's taints): read it again on a conflict, as a kubelet does.
		err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
			current, err := admin.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			current.Status = corev1.NodeStatus{
				Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady", LastHeartbeatTime: metav1.Now(), LastTransitionTime: metav1.Now()}},
				Addresses:  []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "192.0.2.1"}},
				Capacity:   corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("2"), corev1.ResourcePods: resource.MustParse("110")},
			}
			_, err = admin.CoreV1().Nodes().UpdateStatus(ctx, current, metav1.UpdateOptions{})
			return err
		})
		if err != nil {
			t.Fatalf("Node %s status: %v", name, err)
		}
	}
	// image-keeper's pod, bound to node-a (nothing runs it), and its token.
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "image-keeper-a", Namespace: "image-keeper"},
		Spec: corev1.PodSpec{ServiceAccountName: "image-keeper", NodeName: "node-a",
			Containers: []corev1.Container{{Name: "image-keeper", Image: "example.com/image-keeper:e2e"}}},
	}
	pod, err = admin.CoreV1().Pods(pod.Namespace).Create(ctx, pod, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	token := func(bound bool) kubernetes.Interface {
		req := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{}}
		if bound {
			req.Spec.BoundObjectRef = &authenticationv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: pod.Name, UID: pod.UID}
		}
		tr, err := admin.CoreV1().ServiceAccounts("image-keeper").CreateToken(ctx, "image-keeper", req, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		client, err := kubernetes.NewForConfig(&rest.Config{Host: cp.Server, BearerToken: tr.Status.Token, TLSClientConfig: rest.TLSClientConfig{CAFile: cp.CAFile()}})
		if err != nil {
			t.Fatal(err)
		}
		return client
	}
	keeperClient, unbound := token(true), token(false)
	before := map[string]*corev1.Node{}
	for _, name := range []string{"node-a", "node-b"} {
		if before[name], err = admin.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{}); err != nil {
			t.Fatal(err)
		}
	}

	// The policy takes effect once the API server has loaded it: wait for its first refusal.
	warm := nodestatus.State{Wanted: []string{"example.com/app:1"}, Reconciled: true}
	if !framework.Eventually(time.Minute, 500*time.Millisecond, func() bool {
		err := nodestatus.NewPublisher(keeperClient, "node-b").Publish(ctx, warm)
		return err != nil && strings.Contains(err.Error(), "may not change Node 'node-b'")
	}) {
		t.Fatalf("image-keeper's token changed another Node, or the policy never took effect: %v", nodestatus.NewPublisher(keeperClient, "node-b").Publish(ctx, warm))
	}

	// Its whole job, on its own Node.
	if err := nodestatus.NewPublisher(keeperClient, "node-a").Publish(ctx, warm); err != nil {
		t.Fatalf("image-keeper could not publish on its own Node under the policy: %v", err)
	}
	a, err := admin.CoreV1().Nodes().Get(ctx, "node-a", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if c := framework.NodeCondition(a, nodestatus.ConditionType); c == nil || c.Status != corev1.ConditionTrue || framework.HasTaint(a, nodestatus.StartupTaintKey) || a.Annotations[nodestatus.WantedHashAnnotation] == "" {
		t.Fatalf("published on node-a: condition %+v, tainted %v, annotations %v", c, framework.HasTaint(a, nodestatus.StartupTaintKey), a.Annotations)
	}
	// Its taint may come back (a gate that re-arms), as NoSchedule only.
	readd := `{"spec":{"taints":[{"key":"` + nodestatus.StartupTaintKey + `","effect":"NoSchedule"}]}}`
	if _, err := keeperClient.CoreV1().Nodes().Patch(ctx, "node-a", types.MergePatchType, []byte(readd), metav1.PatchOptions{}); err != nil {
		t.Errorf("adding the startup taint back: %v", err)
	}

	status := func(field string, value any) []byte {
		data, _ := json.Marshal(map[string]any{"status": map[string]any{field: value}})
		return data
	}
	for _, tc := range []struct {
		name, node string
		status     bool // patch nodes/status instead of nodes
		patch      []byte
		want       string
	}{
		{"another node's taints", "node-b", false, []byte(`{"spec":{"taints":[]}}`), "may not change Node 'node-b'"},
		{"a label", "node-a", false, []byte(`{"metadata":{"labels":{"node-role.kubernetes.io/control-plane":""}}}`), "may not change a Node's labels"},
		{"a label through nodes/status", "node-a", true, []byte(`{"metadata":{"labels":{"evil":"yes"}}}`), "may not change a Node's labels"},
		{"another annotation", "node-a", false, []byte(`{"metadata":{"annotations":{"node.alpha.kubernetes.io/ttl":"60"}}}`), "only its own annotation"},
		{"an owner reference", "node-a", false, []byte(`{"metadata":{"ownerReferences":[{"apiVersion":"v1","kind":"ConfigMap","name":"gone","uid":"00000000-0000-0000-0000-000000000000"}]}}`), "owner references or finalizers"},
		{"a finalizer", "node-a", false, []byte(`{"metadata":{"finalizers":["example.com/hold"]}}`), "owner references or finalizers"},
		{"cordon", "node-a", false, []byte(`{"spec":{"unschedulable":true}}`), "may not cordon"},
		{"a NoExecute taint", "node-a", false, []byte(`{"spec":{"taints":[{"key":"` + nodestatus.StartupTaintKey + `","effect":"NoSchedule"},{"key":"evict","effect":"NoExecute"}]}}`), "only its own taint"},
		{"its taint as NoExecute", "node-a", false, []byte(`{"spec":{"taints":[{"key":"` + nodestatus.StartupTaintKey + `","effect":"NoExecute"}]}}`), "may not evict pods"},
		{"the Ready condition", "node-a", true, status("conditions", []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionFalse, Reason: "Fake"}}), "only its own condition"},
		{"addresses", "node-a", true, status("addresses", []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "203.0.113.66"}}), "addresses, capacity"},
		{"capacity", "node-a", true, status("capacity", corev1.ResourceList{corev1.ResourcePods: resource.MustParse("0")}), "addresses, capacity"},
		{"a huge condition message", "node-a", true, status("conditions", []corev1.NodeCondition{{Type: nodestatus.ConditionType, Status: corev1.ConditionTrue, Reason: "AllImagesPresent", Message: strings.Repeat("x", 5000)}}), "at most 4096"},
		{"a huge annotation", "node-a", false, []byte(`{"metadata":{"annotations":{"` + nodestatus.WantedHashAnnotation + `":"` + strings.Repeat("0", 100) + `"}}}`), "a short hash"},
	} {
		var err error
		if tc.status {
			_, err = keeperClient.CoreV1().Nodes().Patch(ctx, tc.node, types.StrategicMergePatchType, tc.patch, metav1.PatchOptions{}, "status")
		} else {
			_, err = keeperClient.CoreV1().Nodes().Patch(ctx, tc.node, types.StrategicMergePatchType, tc.patch, metav1.PatchOptions{})
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v; want refused, %q", tc.name, err, tc.want)
		}
	}
	if err := keeperClient.CoreV1().Nodes().Delete(ctx, "node-b", metav1.DeleteOptions{}); err == nil {
		t.Error("image-keeper's token deleted a Node")
	}
	if err := nodestatus.NewPublisher(unbound, "node-a").Publish(ctx, nodestatus.State{Wanted: []string{"example.com/other:1"}, Reconciled: true}); err == nil || !strings.Contains(err.Error(), "the token names no node") {
		t.Errorf("a token bound to no pod: %v; want refused, naming the missing node claim", err)
	}

	// The pull slots: image-keeper takes and gives back a slot in its node's name; it may not
	// write another Lease, hold a slot in another node's name, give back another node's slot or
	// delete one.
	slots, err := pullslots.New(keeperClient, "image-keeper", "node-a", 1)
	if err != nil {
		t.Fatal(err)
	}
	slotCtx, cancelSlot := context.WithTimeout(ctx, time.Minute)
	defer cancelSlot()
	release, _, err := slots.Acquire(slotCtx)
	if err != nil || !strings.HasPrefix(slots.State(), "holding "+pullslots.Prefix+"-0") {
		t.Fatalf("image-keeper could not take a pull slot under the policy: %v, %s", err, slots.State())
	}
	release()
	leases := keeperClient.CoordinationV1().Leases("image-keeper")
	slot, err := leases.Get(ctx, pullslots.Prefix+"-0", metav1.GetOptions{})
	if err != nil || slot.Spec.HolderIdentity != nil {
		t.Fatalf("the slot after image-keeper gave it back: %+v, %v", slot, err)
	}
	other := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: "kube-scheduler", Namespace: "image-keeper"}}
	if _, err := leases.Create(ctx, other, metav1.CreateOptions{}); err == nil || !strings.Contains(err.Error(), "only the Leases of its pull slots") {
		t.Errorf("creating another Lease: %v; want refused", err)
	}
	impersonate := slot.DeepCopy()
	impersonate.Spec.HolderIdentity = ptr.To("node-b")
	if _, err := leases.Update(ctx, impersonate, metav1.UpdateOptions{}); err == nil || !strings.Contains(err.Error(), "in its own node's name only") {
		t.Errorf("holding a slot in node-b's name: %v; want refused", err)
	}
	for _, tc := range []struct {
		name string
		edit func(*coordinationv1.Lease)
		want string
	}{
		{"a year's duration", func(l *coordinationv1.Lease) { l.Spec.LeaseDurationSeconds = ptr.To(int32(365 * 24 * 3600)) }, "lasts 5 to 600 seconds"},
		{"leaseTransitions at its maximum", func(l *coordinationv1.Lease) { l.Spec.LeaseTransitions = ptr.To(int32(math.MaxInt32)) }, "grows by at most one"},
		{"an annotation", func(l *coordinationv1.Lease) { l.Annotations = map[string]string{"x": strings.Repeat("x", 1000)} }, "no other labels, annotations"},
		{"no label", func(l *coordinationv1.Lease) { l.Labels = nil }, "no other labels, annotations"},
	} {
		bad := slot.DeepCopy()
		tc.edit(bad)
		if _, err := leases.Update(ctx, bad, metav1.UpdateOptions{}); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("a slot with %s: %v; want refused, %q", tc.name, err, tc.want)
		}
	}
	beyond := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: pullslots.Prefix + "-1000", Namespace: "image-keeper"}}
	if _, err := leases.Create(ctx, beyond, metav1.CreateOptions{}); err == nil || !strings.Contains(err.Error(), "only the Leases of its pull slots") {
		t.Errorf("creating slot 1000: %v; want refused", err)
	}
	// RBAC grants no delete; the policy would refuse it too.
	if err := leases.Delete(ctx, slot.Name, metav1.DeleteOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("deleting a slot: %v; want forbidden", err)
	}
	held := slot.DeepCopy()
	held.Spec.HolderIdentity = ptr.To("node-b")
	if held, err = admin.CoordinationV1().Leases("image-keeper").Update(ctx, held, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	steal := held.DeepCopy()
	steal.Spec.HolderIdentity = nil
	if _, err := leases.Update(ctx, steal, metav1.UpdateOptions{}); err == nil || !strings.Contains(err.Error(), "give back only a pull slot its node holds") {
		t.Errorf("giving back node-b's slot: %v; want refused", err)
	}

	// Nothing the refusals tried is on the Nodes.
	for _, name := range []string{"node-a", "node-b"} {
		after, err := admin.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		b := before[name]
		same := fmt.Sprint(after.Labels, after.OwnerReferences, after.Finalizers, after.Spec.Unschedulable, after.Status.Addresses, after.Status.Capacity, after.Annotations["node.alpha.kubernetes.io/ttl"]) ==
			fmt.Sprint(b.Labels, b.OwnerReferences, b.Finalizers, b.Spec.Unschedulable, b.Status.Addresses, b.Status.Capacity, b.Annotations["node.alpha.kubernetes.io/ttl"])
		if ready := framework.NodeCondition(after, corev1.NodeReady); !same || ready == nil || ready.Status != corev1.ConditionTrue {
			t.Errorf("%s changed: %+v", name, after)
		}
	}
}
