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

package pullslots

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/utils/ptr"
)

// newClient is a fake clientset whose Leases carry resourceVersions and refuse an update with a
// stale one, as the API server does (the fake's tracker does neither).
func newClient() *fake.Clientset {
	client := fake.NewClientset()
	var rv atomic.Int64
	gvr := coordinationv1.SchemeGroupVersion.WithResource("leases")
	client.PrependReactor("create", "leases", func(action k8stesting.Action) (bool, runtime.Object, error) {
		lease := action.(k8stesting.CreateAction).GetObject().(*coordinationv1.Lease)
		lease.ResourceVersion = strconv.FormatInt(rv.Add(1), 10)
		return false, nil, nil
	})
	client.PrependReactor("update", "leases", func(action k8stesting.Action) (bool, runtime.Object, error) {
		lease := action.(k8stesting.UpdateAction).GetObject().(*coordinationv1.Lease)
		current, err := client.Tracker().Get(gvr, lease.Namespace, lease.Name)
		if err != nil {
			return true, nil, err
		}
		if current.(*coordinationv1.Lease).ResourceVersion != lease.ResourceVersion {
			return true, nil, apierrors.NewConflict(gvr.GroupResource(), lease.Name, fmt.Errorf("resourceVersion %s is stale", lease.ResourceVersion))
		}
		lease.ResourceVersion = strconv.FormatInt(rv.Add(1), 10)
		return false, nil, nil
	})
	return client
}

func newSlots(t *testing.T, client *fake.Clientset, node string, count int) *Slots {
	t.Helper()
	s, err := New(client, "image-keeper", node, count)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func holders(t *testing.T, client *fake.Clientset) map[string]string {
	t.Helper()
	list, err := client.CoordinationV1().Leases("image-keeper").List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, l := range list.Items {
		out[l.Name] = ptr.Deref(l.Spec.HolderIdentity, "")
	}
	return out
}

// acquireLater takes a slot for s in the background and sends when it has one.
func acquireLater(t *testing.T, s *Slots) <-chan time.Time {
	took := make(chan time.Time, 1)
	go func() {
		if _, _, err := s.Acquire(t.Context()); err != nil {
			t.Error(err)
		}
		took <- time.Now()
	}()
	return took
}

// Ten nodes, two slots: never more than two nodes hold one at a time, every node gets its
// turn, and every slot is free at the end.
func TestAtMostCountHolders(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		client := newClient()
		const nodes, count = 10, 2
		var inFlight, most atomic.Int32
		var wg sync.WaitGroup
		for i := range nodes {
			s := newSlots(t, client, fmt.Sprintf("node-%d", i), count)
			wg.Go(func() {
				release, _, err := s.Acquire(t.Context())
				if err != nil {
					t.Error(err)
					return
				}
				n := inFlight.Add(1)
				for {
					m := most.Load()
					if n <= m || most.CompareAndSwap(m, n) {
						break
					}
				}
				if !strings.HasPrefix(s.State(), "holding "+Prefix) {
					t.Errorf("holding a slot, the state says %q", s.State())
				}
				time.Sleep(20 * time.Second) // a pull, renewed past no deadline
				inFlight.Add(-1)
				release()
			})
		}
		wg.Wait()
		if most.Load() != count {
			t.Errorf("at most %d nodes held a slot at once; want %d", most.Load(), count)
		}
		for name, holder := range holders(t, client) {
			if holder != "" {
				t.Errorf("%s still held by %q after every node gave it back", name, holder)
			}
		}
		if got := len(holders(t, client)); got != count {
			t.Errorf("%d Leases; want %d", got, count)
		}
	})
}

// A node that holds a slot for longer than the Lease's duration renews it: nobody takes it.
// A node that dies (no renewal, no release) frees it after the Lease's duration.
func TestRenewalAndExpiry(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		client := newClient()
		a := newSlots(t, client, "node-a", 1)
		b := newSlots(t, client, "node-b", 1)
		ctxA, killA := context.WithCancel(t.Context())
		if _, _, err := a.Acquire(ctxA); err != nil {
			t.Fatal(err)
		}
		took := acquireLater(t, b)
		time.Sleep(3 * a.LeaseDuration)
		synctest.Wait()
		if got := holders(t, client)[Prefix+"-0"]; got != "node-a" {
			t.Fatalf("after 3 Lease durations of renewals the slot is held by %q; want node-a", got)
		}
		if !strings.Contains(b.State(), "waiting for one of 1 pull slots (held by node-a)") {
			t.Errorf("node-b's state %q does not say whom it waits for", b.State())
		}
		// node-a dies: its renewals stop, it gives nothing back (the release func is dropped).
		killA()
		died := time.Now()
		at := <-took
		// node-b counts the Lease's duration from the first look that saw its last renewal,
		// which came at most one renewal period (a third of the duration) before the death.
		renewal := a.LeaseDuration / 3
		if waited := at.Sub(died); waited < b.LeaseDuration-renewal || waited > b.LeaseDuration+b.MaxWait {
			t.Errorf("node-b took the dead node's slot %v after it died; want %v to %v", waited, b.LeaseDuration-renewal, b.LeaseDuration+b.MaxWait)
		}
		if got := holders(t, client)[Prefix+"-0"]; got != "node-b" {
			t.Errorf("the slot is held by %q; want node-b", got)
		}
	})
}

// A slot given back is taken by a waiter at its next look (within its current delay bound:
// 1 s, then 2, then 4 s after a second of waiting), not after MaxWait; a restarted
// node takes again the slot it held.
func TestReleaseWakesWaiter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		client := newClient()
		a := newSlots(t, client, "node-a", 1)
		b := newSlots(t, client, "node-b", 1)
		release, _, err := a.Acquire(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		took := acquireLater(t, b)
		time.Sleep(time.Second)
		synctest.Wait()
		released := time.Now()
		release()
		if waited := (<-took).Sub(released); waited > 4*b.MinWait {
			t.Errorf("node-b took the given-back slot %v after; want at most %v", waited, 4*b.MinWait)
		}
		if a.State() != "" {
			t.Errorf("node-a gave its slot back; its state says %q", a.State())
		}

		// node-b restarts (a new Slots, same name) while holding: it takes its own slot again
		// without waiting for it to expire.
		restarted := newSlots(t, client, "node-b", 1)
		start := time.Now()
		if _, _, err := restarted.Acquire(t.Context()); err != nil {
			t.Fatal(err)
		}
		if waited := time.Since(start); waited != 0 {
			t.Errorf("the restarted node waited %v for its own slot", waited)
		}
	})
}

// Waiting ends when the context does, with its error.
func TestAcquireCancelled(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		client := newClient()
		if _, _, err := newSlots(t, client, "node-a", 1).Acquire(t.Context()); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		defer cancel()
		b := newSlots(t, client, "node-b", 1)
		if _, _, err := b.Acquire(ctx); err != context.DeadlineExceeded {
			t.Errorf("Acquire: %v; want the context's deadline", err)
		}
		if b.State() != "" {
			t.Errorf("no longer waiting, the state says %q", b.State())
		}
	})
}

func TestNewRefuses(t *testing.T) {
	client := fake.NewClientset()
	for _, tc := range []struct {
		namespace, node string
		count           int
		want            string
	}{
		{"image-keeper", "node-a", 0, "--pull-slots=0"},
		{"image-keeper", "node-a", MaxCount + 1, "want 1 to 1000"},
		{"Image_Keeper", "node-a", 3, `--pull-slot-namespace="Image_Keeper"`},
		{"image-keeper", "", 3, "--node-name"},
	} {
		if _, err := New(client, tc.namespace, tc.node, tc.count); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("New(%q, %q, %d): %v; want an error containing %q", tc.namespace, tc.node, tc.count, err, tc.want)
		}
	}
}

// The slots spread a fleet's pulls; they never stop a node from pulling for good. A refusal (no
// RBAC for Leases) lets the node pull at once without a slot; an API server that does not answer
// does after FailOpenAfter. The state says so.
func TestFailOpen(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		for _, tc := range []struct {
			name string
			err  error
			wait func(*Slots) time.Duration
		}{
			{"forbidden", apierrors.NewForbidden(coordinationv1.Resource("leases"), "", errors.New("RBAC: not allowed")), func(*Slots) time.Duration { return 0 }},
			{"unavailable", apierrors.NewServiceUnavailable("etcd is down"), func(s *Slots) time.Duration { return s.FailOpenAfter }},
		} {
			client := newClient()
			client.PrependReactor("list", "leases", func(k8stesting.Action) (bool, runtime.Object, error) { return true, nil, tc.err })
			s := newSlots(t, client, "node-a", 1)
			start := time.Now()
			release, _, err := s.Acquire(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if waited, want := time.Since(start), tc.wait(s); waited < want || waited > want+s.MaxWait {
				t.Errorf("%s: pulled without a slot after %v; want %v", tc.name, waited, want)
			}
			if !strings.HasPrefix(s.State(), "pulling without a slot: the API server ") {
				t.Errorf("%s: state %q", tc.name, s.State())
			}
			release()
			if s.State() != "" {
				t.Errorf("%s: after the pulls, the state still says %q", tc.name, s.State())
			}
		}
	})
}

// What a stolen token can write into a slot's Lease does not hold the fleet: a year's duration
// counts as MaxLeaseDuration; a Lease without the slots' label is found by name, taken and
// labelled again; leaseTransitions at its maximum does not wrap into a refused update; a slot
// renewed for ever by a node that never gives it back is waited for GiveUpAfter at most.
func TestHostileLeases(t *testing.T) {
	gvr := coordinationv1.SchemeGroupVersion.WithResource("leases")
	put := func(t *testing.T, client *fake.Clientset, lease *coordinationv1.Lease) {
		t.Helper()
		lease.Namespace = "image-keeper"
		if _, err := client.CoordinationV1().Leases("image-keeper").Create(context.Background(), lease, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	t.Run("a year's duration", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			client := newClient()
			put(t, client, &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: Prefix + "-0", Labels: labels()},
				Spec: coordinationv1.LeaseSpec{HolderIdentity: ptr.To("attacker"), LeaseDurationSeconds: ptr.To(int32(365 * 24 * 3600))}})
			start := time.Now()
			if _, _, err := newSlots(t, client, "node-a", 1).Acquire(t.Context()); err != nil {
				t.Fatal(err)
			}
			if waited := time.Since(start); waited < MaxLeaseDuration || waited > MaxLeaseDuration+30*time.Second {
				t.Errorf("took a slot written with a year's duration after %v; want %v", waited, MaxLeaseDuration)
			}
		})
	})
	t.Run("no label, leaseTransitions at its maximum", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			client := newClient()
			put(t, client, &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: Prefix + "-0"},
				Spec: coordinationv1.LeaseSpec{LeaseTransitions: ptr.To(int32(math.MaxInt32))}})
			client.PrependReactor("update", "leases", func(a k8stesting.Action) (bool, runtime.Object, error) {
				if l := a.(k8stesting.UpdateAction).GetObject().(*coordinationv1.Lease); ptr.Deref(l.Spec.LeaseTransitions, 0) < 0 {
					return true, nil, apierrors.NewInvalid(coordinationv1.SchemeGroupVersion.WithKind("Lease").GroupKind(), l.Name, nil)
				}
				return false, nil, nil
			})
			s := newSlots(t, client, "node-a", 1)
			start := time.Now()
			if _, _, err := s.Acquire(t.Context()); err != nil {
				t.Fatal(err)
			}
			if waited := time.Since(start); waited != 0 || !strings.HasPrefix(s.State(), "holding ") {
				t.Errorf("after %v: %q; want the unlabelled slot held at once", waited, s.State())
			}
			l, err := client.Tracker().Get(gvr, "image-keeper", Prefix+"-0")
			if err != nil {
				t.Fatal(err)
			}
			if got := l.(*coordinationv1.Lease).Labels[ComponentLabel]; got != ComponentValue {
				t.Errorf("the slot was not labelled again: %v", l.(*coordinationv1.Lease).Labels)
			}
		})
	})
	t.Run("renewed for ever", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			client := newClient()
			hog := newSlots(t, client, "attacker", 1)
			if _, _, err := hog.Acquire(t.Context()); err != nil { // renews until the test ends
				t.Fatal(err)
			}
			s := newSlots(t, client, "node-a", 1)
			start := time.Now()
			release, _, err := s.Acquire(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			defer release()
			if waited := time.Since(start); waited < s.GiveUpAfter || waited > s.GiveUpAfter+s.MaxWait {
				t.Errorf("pulled without a slot after %v; want GiveUpAfter, %v", waited, s.GiveUpAfter)
			}
			if !strings.Contains(s.State(), "pulling without a slot: waited 1h") {
				t.Errorf("state %q", s.State())
			}
		})
	})
}

// A slot whose Lease is deleted while held is lost: the channel Acquire returned closes, so that
// the keeper takes a slot again for its next pulls.
func TestLostSlot(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		client := newClient()
		s := newSlots(t, client, "node-a", 1)
		release, lost, err := s.Acquire(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		defer release()
		if err := client.CoordinationV1().Leases("image-keeper").Delete(context.Background(), Prefix+"-0", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		select {
		case <-lost:
		case <-time.After(2 * s.LeaseDuration):
			t.Fatal("the deleted slot was not reported lost")
		}
		if s.State() != "" {
			t.Errorf("lost, the state says %q", s.State())
		}
	})
}
