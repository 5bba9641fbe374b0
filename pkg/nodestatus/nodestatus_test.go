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
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/kubelet-imagecache/kubelet-imagecache/pkg/keeper"
)

func TestCondition(t *testing.T) {
	var many []string
	for i := 0; i < 8; i++ {
		many = append(many, fmt.Sprintf("example.com/app:%d", i))
	}
	for _, tc := range []struct {
		name    string
		state   State
		status  corev1.ConditionStatus
		reason  string
		message string
	}{
		{"no pass yet", State{Wanted: many}, corev1.ConditionFalse, ReasonNoPass, "image-keeper has not reached the container runtime yet"},
		{"first boot", State{Wanted: many, Reconciled: true, KubeletConfigMissing: "open /var/lib/kubelet/config.yaml: no such file or directory"}, corev1.ConditionFalse, ReasonWaitingKubelet,
			"waiting for the kubelet config, which may name images to keep: open /var/lib/kubelet/config.yaml: no such file or directory"},
		{"warm", State{Wanted: many, Reconciled: true}, corev1.ConditionTrue, ReasonWarm, "all 8 wanted images are present"},
		{"two missing", State{Wanted: many, Missing: many[:2], Reconciled: true}, corev1.ConditionFalse, ReasonMissing,
			"2 of 8 wanted images missing: example.com/app:0, example.com/app:1"},
		{"many missing", State{Wanted: many, Missing: many, Reconciled: true}, corev1.ConditionFalse, ReasonMissing,
			"8 of 8 wanted images missing: example.com/app:0, example.com/app:1, example.com/app:2, example.com/app:3, example.com/app:4 and 3 more"},
		{"holder mode, present but not held", State{Wanted: many, Reconciled: true, Holder: "DaemonSet pods in namespace kube-system", Unheld: many[6:], HolderPending: "no pod of the holder DaemonSet (image-keeper-holder) runs on this node in namespace kube-system yet"},
			corev1.ConditionFalse, ReasonNotHeld,
			"2 of 8 wanted images present but not yet held by a running holder pod (DaemonSet pods in namespace kube-system): example.com/app:6, example.com/app:7; the holder: no pod of the holder DaemonSet (image-keeper-holder) runs on this node in namespace kube-system yet"},
		{"holder mode, missing first", State{Wanted: many, Missing: many[:1], Reconciled: true, Holder: "static pod in /etc/kubernetes/manifests", Unheld: many[6:]}, corev1.ConditionFalse, ReasonMissing,
			"1 of 8 wanted images missing: example.com/app:0"},
		{"holder mode, warm", State{Wanted: many, Reconciled: true, Holder: "static pod in /etc/kubernetes/manifests"}, corev1.ConditionTrue, ReasonWarm,
			"all 8 wanted images are present and held (static pod in /etc/kubernetes/manifests)"},
		{"config broken while running", State{Wanted: many, Reconciled: true, ConfigInvalid: `config /etc/image-keeper/config.yaml: images[0] "Bad": repository name must be lowercase`}, corev1.ConditionFalse, ReasonConfigInvalid,
			`image-keeper's new configuration is invalid; the previous one is in force (0 of 8 of its images missing): config /etc/image-keeper/config.yaml: images[0] "Bad": repository name must be lowercase`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := Condition(tc.state)
			if c.Type != ConditionType || c.Status != tc.status || c.Reason != tc.reason || c.Message != tc.message {
				t.Errorf("got %s=%s %s %q; want %s %s %q", c.Type, c.Status, c.Reason, c.Message, tc.status, tc.reason, tc.message)
			}
		})
	}
}

func TestWantedHash(t *testing.T) {
	a := WantedHash([]string{"example.com/a:1", "example.com/b:1"})
	if b := WantedHash([]string{"example.com/b:1", "example.com/a:1"}); a != b {
		t.Errorf("order changes the hash: %s, %s", a, b)
	}
	if c := WantedHash([]string{"example.com/a:1", "example.com/b:2"}); a == c {
		t.Error("a different list has the same hash")
	}
	// References hold no newline, so joining them with one is unambiguous.
	if WantedHash([]string{"x", "y"}) == WantedHash([]string{"xy"}) {
		t.Error("joining collides")
	}
	if len(a) != 16 {
		t.Errorf("hash %q: want 16 hex digits", a)
	}
}

func TestStateOf(t *testing.T) {
	s := StateOf(keeper.Status{
		LastReconcile: time.Unix(1, 0),
		RuntimeError:  "connection refused", // the images found last are still on disk
		Images: []keeper.ImageState{
			{Reference: "example.com/a:1", Present: true},
			{Reference: "example.com/b:1"},
		},
	})
	if !s.Reconciled || fmt.Sprint(s.Wanted) != "[example.com/a:1 example.com/b:1]" || fmt.Sprint(s.Missing) != "[example.com/b:1]" {
		t.Errorf("StateOf = %+v", s)
	}
	if StateOf(keeper.Status{}).Reconciled {
		t.Error("a status with no pass is reconciled")
	}
}
