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

package nodestatus

import (
	"context"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

const testNode = "edge-1"

var otherTaint = corev1.Taint{Key: "example.com/maintenance", Effect: corev1.TaintEffectNoSchedule}

// newFakeNode is a clientset holding one Node registered with the startup taint and another.
func newFakeNode() *fake.Clientset {
	return fake.NewClientset(&corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: testNode},
		Spec:       corev1.NodeSpec{Taints: []corev1.Taint{{Key: StartupTaintKey, Effect: corev1.TaintEffectNoSchedule}, otherTaint}},
	})
}

func getNode(t *testing.T, client *fake.Clientset) *corev1.Node {
	t.Helper()
	node, err := client.CoreV1().Nodes().Get(context.Background(), testNode, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return node
}

func condition(t *testing.T, node *corev1.Node) corev1.NodeCondition {
	t.Helper()
	for _, c := range node.Status.Conditions {
		if c.Type == ConditionType {
			return c
		}
	}
	t.Fatalf("node has no %s condition: %+v", ConditionType, node.Status.Conditions)
	return corev1.NodeCondition{}
}

// patches counts the patch actions on the Node's status and on the Node.
func patches(client *fake.Clientset) (status, node int) {
	for _, a := range client.Actions() {
		if a.GetVerb() != "patch" {
			continue
		}
		if a.GetSubresource() == "status" {
			status++
		} else {
			node++
		}
	}
	return status, node
}

// The publisher against a fake API server, on the bubble's clock: a cold cache is published as
// a False condition with the wanted hash; nothing is patched again until the heartbeat is due,
// which keeps the transition time; a warm cache flips the condition and removes only the
// startup taint, once; a restarted publisher keeps the Node's condition until its first pass.
func TestPublisher(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		client := newFakeNode()
		p := NewPublisher(client, testNode)
		cold := State{Wanted: []string{"registry.example.com/a:1", "registry.example.com/b:1"}, Missing: []string{"registry.example.com/b:1"}, Reconciled: true}

		if err := p.Publish(ctx, cold); err != nil {
			t.Fatal(err)
		}
		node := getNode(t, client)
		first := condition(t, node)
		if first.Status != corev1.ConditionFalse || first.Reason != ReasonMissing || first.Message != "1 of 2 wanted images missing: registry.example.com/b:1" {
			t.Errorf("cold cache: condition %+v", first)
		}
		if got, want := node.Annotations[WantedHashAnnotation], WantedHash(cold.Wanted); got != want {
			t.Errorf("annotation %s = %q, want %q", WantedHashAnnotation, got, want)
		}
		if len(node.Spec.Taints) != 2 {
			t.Errorf("a cold cache removed a taint: %+v", node.Spec.Taints)
		}

		// Unchanged, before the heartbeat: no request.
		time.Sleep(p.Heartbeat / 2)
		status, annotate := patches(client)
		if err := p.Publish(ctx, cold); err != nil {
			t.Fatal(err)
		}
		if s, a := patches(client); s != status || a != annotate {
			t.Errorf("an unchanged state before the heartbeat patched the node (%d → %d status, %d → %d node patches)", status, s, annotate, a)
		}

		// The heartbeat: a new heartbeat time, the same transition time.
		time.Sleep(p.Heartbeat / 2)
		if err := p.Publish(ctx, cold); err != nil {
			t.Fatal(err)
		}
		beat := condition(t, getNode(t, client))
		if !beat.LastHeartbeatTime.After(first.LastHeartbeatTime.Time) || !beat.LastTransitionTime.Equal(&first.LastTransitionTime) {
			t.Errorf("heartbeat: %+v after %+v; want a later heartbeat and the same transition", beat, first)
		}
		if s, _ := patches(client); s != status+1 {
			t.Errorf("%d status patches after the heartbeat; want %d", s, status+1)
		}

		// Warm: True, a new transition time, the startup taint gone and the other kept.
		time.Sleep(time.Second)
		warm := State{Wanted: cold.Wanted, Reconciled: true}
		if err := p.Publish(ctx, warm); err != nil {
			t.Fatal(err)
		}
		node = getNode(t, client)
		if c := condition(t, node); c.Status != corev1.ConditionTrue || c.Reason != ReasonWarm || !c.LastTransitionTime.After(first.LastTransitionTime.Time) {
			t.Errorf("warm cache: condition %+v", c)
		}
		if len(node.Spec.Taints) != 1 || node.Spec.Taints[0].Key != otherTaint.Key {
			t.Errorf("taints after the cache got warm: %+v; want only %s", node.Spec.Taints, otherTaint.Key)
		}

		// The startup taint is never added back, and never looked for again.
		gets := 0
		client.PrependReactor("get", "nodes", func(k8stesting.Action) (bool, runtime.Object, error) { gets++; return false, nil, nil })
		if err := p.Publish(ctx, cold); err != nil {
			t.Fatal(err)
		}
		if err := p.Publish(ctx, warm); err != nil {
			t.Fatal(err)
		}
		if gets != 0 {
			t.Errorf("the publisher read the node %d times after removing the startup taint", gets)
		}

		// A restarted image-keeper, before its first pass, leaves the Node's condition alone.
		status, _ = patches(client)
		restarted := NewPublisher(client, testNode)
		if err := restarted.Publish(ctx, State{Wanted: cold.Wanted}); err != nil {
			t.Fatal(err)
		}
		if s, _ := patches(client); s != status {
			t.Error("a restarted publisher patched the condition before its first pass")
		}
	})
}

// The startup taint is removed with the Node's resourceVersion: when the taints changed in
// between (a conflict), the publisher reads the Node again and keeps the new taint.
func TestPublisherTaintConflict(t *testing.T) {
	ctx := context.Background()
	client := newFakeNode()
	conflicts := 0
	client.PrependReactor("patch", "nodes", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if a.GetSubresource() != "" || a.(k8stesting.PatchAction).GetPatchType() != "application/merge-patch+json" || conflicts > 0 {
			return false, nil, nil
		}
		conflicts++
		// Someone adds a taint while image-keeper is about to remove its own.
		node, err := client.Tracker().Get(schema.GroupVersionResource{Version: "v1", Resource: "nodes"}, "", testNode)
		if err != nil {
			return true, nil, err
		}
		n := node.(*corev1.Node).DeepCopy()
		n.Spec.Taints = append(n.Spec.Taints, corev1.Taint{Key: "example.com/late", Effect: corev1.TaintEffectNoSchedule})
		if err := client.Tracker().Update(schema.GroupVersionResource{Version: "v1", Resource: "nodes"}, n, ""); err != nil {
			return true, nil, err
		}
		return true, nil, apierrors.NewConflict(schema.GroupResource{Resource: "nodes"}, testNode, nil)
	})
	p := NewPublisher(client, testNode)
	if err := p.Publish(ctx, State{Wanted: []string{"registry.example.com/a:1"}, Reconciled: true}); err != nil {
		t.Fatal(err)
	}
	if conflicts != 1 {
		t.Fatalf("%d conflicts injected; want 1", conflicts)
	}
	var keys []string
	for _, taint := range getNode(t, client).Spec.Taints {
		keys = append(keys, taint.Key)
	}
	if len(keys) != 2 || keys[0] != otherTaint.Key || keys[1] != "example.com/late" {
		t.Errorf("taints after a conflicting removal: %v; want %s and example.com/late", keys, otherTaint.Key)
	}
}

func taintKeys(node *corev1.Node) []string {
	var keys []string
	for _, taint := range node.Spec.Taints {
		keys = append(keys, taint.Key+":"+string(taint.Effect))
	}
	return keys
}

// The readiness conventions of node-readiness-controller: another condition type and taint key;
// TaintNone publishes the condition and never touches a taint; TaintRearm removes the taint when
// warm, adds it back (NoSchedule) when wanted images go missing, removes it again when warm, and
// leaves the other taints alone.
func TestPublisherTaintModes(t *testing.T) {
	ctx := context.Background()
	const key, typ = "readiness.k8s.io/image-cache", "example.com/ImageCacheReady"
	wanted := []string{"registry.example.com/a:1"}
	warm := State{Wanted: wanted, Reconciled: true}
	missing := State{Wanted: wanted, Missing: wanted, Reconciled: true}
	newNode := func() *fake.Clientset {
		return fake.NewClientset(&corev1.Node{
			ObjectMeta: metav1.ObjectMeta{Name: testNode},
			Spec:       corev1.NodeSpec{Taints: []corev1.Taint{{Key: key, Value: "pending", Effect: corev1.TaintEffectNoSchedule}, otherTaint}},
		})
	}

	t.Run("none", func(t *testing.T) {
		client := newNode()
		p := NewPublisher(client, testNode)
		p.ConditionType, p.TaintKey, p.TaintMode = typ, key, TaintNone
		for _, s := range []State{missing, warm, missing, warm} {
			if err := p.Publish(ctx, s); err != nil {
				t.Fatal(err)
			}
		}
		node := getNode(t, client)
		if got := taintKeys(node); len(got) != 2 || got[0] != key+":NoSchedule" {
			t.Errorf("TaintNone changed the taints: %v", got)
		}
		var found bool
		for _, c := range node.Status.Conditions {
			found = found || (c.Type == typ && c.Status == corev1.ConditionTrue)
			if c.Type == ConditionType {
				t.Errorf("published the default condition type too: %+v", c)
			}
		}
		if !found {
			t.Errorf("no %s=True condition: %+v", typ, node.Status.Conditions)
		}
	})

	t.Run("rearm", func(t *testing.T) {
		client := newNode()
		p := NewPublisher(client, testNode)
		p.ConditionType, p.TaintKey, p.TaintMode = typ, key, TaintRearm
		for i, step := range []struct {
			state   State
			tainted bool
		}{
			{State{Wanted: wanted}, true}, // not reconciled yet: nothing
			{missing, true},               // registered with it, still missing
			{warm, false},
			{warm, false},
			{missing, true}, // an image went: back, NoSchedule
			{missing, true},
			{warm, false},
		} {
			if err := p.Publish(ctx, step.state); err != nil {
				t.Fatal(err)
			}
			got := taintKeys(getNode(t, client))
			has := slices.Contains(got, key+":NoSchedule")
			if has != step.tainted || !slices.Contains(got, otherTaint.Key+":NoSchedule") || len(got) > 2 {
				t.Errorf("step %d (%d missing): taints %v; want %s: %v and %s kept", i, len(step.state.Missing), got, key, step.tainted, otherTaint.Key)
			}
		}
	})

	t.Run("remove-once", func(t *testing.T) {
		client := newNode()
		p := NewPublisher(client, testNode)
		p.ConditionType, p.TaintKey = typ, key
		for _, s := range []State{missing, warm, missing} {
			if err := p.Publish(ctx, s); err != nil {
				t.Fatal(err)
			}
		}
		if got := taintKeys(getNode(t, client)); len(got) != 1 || got[0] != otherTaint.Key+":NoSchedule" {
			t.Errorf("remove-once: taints %v after warm then missing; want only %s", got, otherTaint.Key)
		}
	})
}

// While the node waits for a cluster pull slot, the condition says so.
func TestConditionWaitingForSlot(t *testing.T) {
	c := Condition(State{Wanted: []string{"a:1"}, Missing: []string{"a:1"}, Reconciled: true, WaitingForSlot: true})
	if c.Reason != ReasonMissing || c.Message != "1 of 1 wanted images missing: a:1; waiting for one of the cluster's pull slots" {
		t.Errorf("waiting for a slot: %+v", c)
	}
}
