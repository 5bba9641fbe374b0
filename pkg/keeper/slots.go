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
	"time"
)

// PullSlots bound how many nodes of a cluster pull at once (package pullslots): a node pulls
// only while it holds a slot.
type PullSlots interface {
	// Acquire waits until the node holds a slot and returns what gives it back and a channel
	// closed if the node loses it before (nil when it cannot); it fails only when ctx is done.
	Acquire(ctx context.Context) (release func(), lost <-chan struct{}, err error)
	// State says what the node does with the slots ("holding ...", "waiting for ..."), "" when
	// neither.
	State() string
}

// slotGrace is how long the node keeps its slot after its last pull ended: the next queued
// pull, or a retry in the next second, reuses it instead of queuing behind every other node.
const slotGrace = time.Second

// takeSlot makes the node hold a pull slot for one pull, taking one when it holds none; the
// node's concurrent pulls share one slot (so a cluster pulls with at most slots x
// PullConcurrency pulls at once). It returns what ends the pull's use of the slot; the slot is
// given back slotGrace after the last use ends.
func (k *Keeper) takeSlot(ctx context.Context) (done func(), err error) {
	if k.opts.PullSlots == nil {
		return func() {}, nil
	}
	for {
		k.slotMu.Lock()
		if k.slotTimer != nil {
			k.slotTimer.Stop()
			k.slotTimer = nil
		}
		if k.slotRelease != nil && lostSlot(k.slotLost) {
			// Lost while held (renewals failed, another node took it): pulls in flight go on,
			// new ones wait for a slot again.
			release := k.slotRelease
			k.slotRelease, k.slotLost = nil, nil
			k.slotMu.Unlock()
			release()
			continue
		}
		if k.slotRelease != nil {
			k.slotUsers++
			k.slotMu.Unlock()
			return k.putSlot, nil
		}
		if taking := k.slotTaking; taking != nil {
			// Another of the node's pulls is waiting for a slot: wait for it, then share it.
			k.slotMu.Unlock()
			select {
			case <-taking:
				continue
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		taking := make(chan struct{})
		k.slotTaking = taking
		k.slotMu.Unlock()

		start := time.Now()
		release, lost, err := k.opts.PullSlots.Acquire(ctx)
		k.slotMu.Lock()
		k.slotTaking = nil
		close(taking)
		if err != nil {
			k.slotMu.Unlock()
			return nil, err
		}
		k.slotRelease, k.slotLost = release, lost
		k.slotUsers++
		k.slotMu.Unlock()
		k.metrics.slotWait.Observe(time.Since(start).Seconds())
		return k.putSlot, nil
	}
}

// lostSlot says the slot was lost (its channel closed).
func lostSlot(lost <-chan struct{}) bool {
	select {
	case <-lost:
		return true
	default:
		return false // open, or nil: never lost
	}
}

// putSlot ends one pull's use of the slot.
func (k *Keeper) putSlot() {
	k.slotMu.Lock()
	defer k.slotMu.Unlock()
	k.slotUsers--
	if k.slotUsers > 0 || k.slotRelease == nil {
		return
	}
	release := k.slotRelease
	var timer *time.Timer
	timer = time.AfterFunc(slotGrace, func() {
		k.slotMu.Lock()
		if k.slotTimer != timer || k.slotUsers > 0 {
			k.slotMu.Unlock()
			return // taken again in the meantime
		}
		k.slotTimer, k.slotRelease, k.slotLost = nil, nil, nil
		k.slotMu.Unlock()
		release() // an API call: not under slotMu, which the node's pulls take
	})
	k.slotTimer = timer
}

// ReleaseSlot gives the pull slot back now, if the node holds one: at shutdown, so that another
// node need not wait for the Lease to expire.
func (k *Keeper) ReleaseSlot() {
	k.slotMu.Lock()
	if k.slotTimer != nil {
		k.slotTimer.Stop()
		k.slotTimer = nil
	}
	var release func()
	if k.slotUsers == 0 {
		release, k.slotRelease, k.slotLost = k.slotRelease, nil, nil
	}
	k.slotMu.Unlock()
	if release != nil {
		release()
	}
}
