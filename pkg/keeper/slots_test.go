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

package keeper

import (
	"context"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// semaphoreSlots are a cluster's pull slots as a semaphore: what package pullslots does with
// Leases (tested there against an API server's semantics), here to test how the keeper uses a
// slot. It records who held it when.
type semaphoreSlots struct {
	sem chan struct{}

	mu       sync.Mutex
	acquires map[string]int
	holders  map[string]bool
	most     int
	state    map[string]string
}

func newSemaphoreSlots(n int) *semaphoreSlots {
	return &semaphoreSlots{sem: make(chan struct{}, n), acquires: map[string]int{}, holders: map[string]bool{}, state: map[string]string{}}
}

// node is one node's view of the slots.
type node struct {
	s    *semaphoreSlots
	name string
}

func (n node) Acquire(ctx context.Context) (func(), <-chan struct{}, error) {
	n.s.mu.Lock()
	n.s.state[n.name] = "waiting"
	n.s.mu.Unlock()
	select {
	case n.s.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, nil, ctx.Err()
	}
	n.s.mu.Lock()
	defer n.s.mu.Unlock()
	n.s.acquires[n.name]++
	n.s.holders[n.name] = true
	n.s.most = max(n.s.most, len(n.s.holders))
	n.s.state[n.name] = "holding"
	return func() {
		n.s.mu.Lock()
		delete(n.s.holders, n.name)
		n.s.state[n.name] = ""
		n.s.mu.Unlock()
		<-n.s.sem
	}, nil, nil
}

func (n node) State() string {
	n.s.mu.Lock()
	defer n.s.mu.Unlock()
	return n.s.state[n.name]
}

// Two nodes, one slot, three images each, two pulls at a time: the nodes pull one after the
// other, each taking the slot once for all its pulls (its concurrent pulls share it) and giving
// it back slotGrace after its last pull; the wait for the slot does not count against the pull
// timeout; the status says what the node does with the slots.
func TestPullSlotSharedByANodesPulls(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		slots := newSemaphoreSlots(1)
		const pull = 10 * time.Second
		var keepers []*Keeper
		for _, name := range []string{"node-a", "node-b"} {
			rt := newInProcess()
			rt.pullDelay = pull
			opts := testOptions()
			opts.PullConcurrency = 2
			opts.PullTimeout = 15 * time.Second // shorter than the wait for the other node
			opts.PullSlots = node{slots, name}
			keepers = append(keepers, newSyncKeeper(t, rt, opts, "example.com/a:1", "example.com/b:1", "example.com/c:1"))
		}
		start := time.Now()
		var wg sync.WaitGroup
		for _, k := range keepers {
			wg.Go(func() {
				if err := k.Reconcile(context.Background()); err != nil {
					t.Error(err)
				}
			})
		}
		time.Sleep(time.Second)
		synctest.Wait()
		waiting := 0
		for _, k := range keepers {
			if k.Status().PullSlot == "waiting" {
				waiting++
			}
		}
		if waiting != 1 {
			t.Errorf("%d nodes say they wait for the slot; want 1", waiting)
		}
		wg.Wait()
		// Each node: two pulls, then one: 2 x pull; the second node also waits for the first
		// one's slotGrace.
		if took, want := time.Since(start), 4*pull+slotGrace; took != want {
			t.Errorf("both nodes warm after %v; want %v (one node at a time, two pulls at a time, the slot given back %v after the last pull)", took, want, slotGrace)
		}
		for _, k := range keepers {
			for _, img := range k.Status().Images {
				if !img.Present {
					t.Errorf("%s missing: %s", img.Reference, img.LastError)
				}
			}
		}
		time.Sleep(slotGrace)
		synctest.Wait() // the last node's slot given back
		slots.mu.Lock()
		defer slots.mu.Unlock()
		if slots.most != 1 {
			t.Errorf("%d nodes held a slot at once; want 1", slots.most)
		}
		for name, n := range slots.acquires {
			if n != 1 {
				t.Errorf("%s took the slot %d times for one pass; want once", name, n)
			}
		}
		if len(slots.holders) != 0 {
			t.Errorf("slots still held after the passes: %v", slots.holders)
		}
	})
}

// A node shutting down while it waits for a slot pulls nothing and records no failure.
func TestShutdownWhileWaitingForSlot(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		slots := newSemaphoreSlots(1)
		release, _, _ := node{slots, "other"}.Acquire(context.Background())
		defer release()
		rt := newInProcess()
		opts := testOptions()
		opts.PullSlots = node{slots, "node-a"}
		k := newSyncKeeper(t, rt, opts, "example.com/a:1")
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_ = k.Reconcile(ctx)
		if n := rt.pullCount("example.com/a:1"); n != 0 {
			t.Errorf("pulled %d times without a slot", n)
		}
		if img := k.Status().Images[0]; img.Failures != 0 || img.LastError != "" {
			t.Errorf("shutting down while waiting for a slot counted as a failure: %+v", img)
		}
	})
}
