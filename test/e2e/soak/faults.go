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

package soak

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"time"

	"github.com/kubelet-imagecache/kubelet-imagecache/test/e2e/framework"
)

// fault kinds, with their weights in the schedule.
var faults = []struct {
	name   string
	weight int
}{
	{"registry-outage", 3}, {"containerd-sigterm", 2}, {"containerd-sigkill", 2}, {"kubelet-restart", 2},
	{"keeper-sigkill", 2}, {"rmi", 4}, {"imagefs-pressure", 3}, {"bad-config", 2}, {"offline-pod", 2}, {"churn", 3},
}

// pick deals the next fault from a shuffled deck that holds each kind as often as its weight,
// so every kind comes up once per round of the deck (a 3-minute run sees them all).
func (r *run) pick() string {
	if len(r.deck) == 0 {
		for _, f := range faults {
			for range f.weight {
				r.deck = append(r.deck, f.name)
			}
		}
		r.rng.Shuffle(len(r.deck), func(i, j int) { r.deck[i], r.deck[j] = r.deck[j], r.deck[i] })
	}
	kind := r.deck[0]
	r.deck = r.deck[1:]
	return kind
}

// between is a random duration in [lo, hi), scaled down for short runs so that a 3-minute run
// still sees every kind of fault.
func (r *run) between(lo, hi time.Duration) time.Duration {
	if r.opts.Duration < 20*time.Minute {
		lo, hi = lo/3, hi/3
	}
	return lo + time.Duration(r.rng.Int64N(int64(hi-lo)))
}

// endStates ends the faults that last: an outage, pressure, a bad config.
func (r *run) endStates(now time.Time) {
	if !r.registryDownUntil.IsZero() && now.After(r.registryDownUntil) {
		r.registryUp()
	}
	if !r.pressureUntil.IsZero() && now.After(r.pressureUntil) {
		r.pressureUntil, r.pressureEnded = time.Time{}, now
		_ = os.Remove(r.fillerPath())
		r.note("imagefs pressure off")
	}
	if !r.badUntil.IsZero() && now.After(r.badUntil) {
		r.badUntil = time.Time{}
		if err := os.WriteFile(r.keeperConfig, []byte(r.goodKeeperConfig), 0o644); err != nil {
			r.violate("harness", "restore image-keeper's config: %v", err)
		}
		r.note("image-keeper config fixed")
	}
}

func (r *run) registryDown(d time.Duration) {
	if r.registryDownUntil.IsZero() {
		r.n.StopRegistry()
		r.registryDownUntil = time.Now().Add(d)
	} else if until := time.Now().Add(d); until.After(r.registryDownUntil) {
		r.registryDownUntil = until
	}
}

func (r *run) registryUp() {
	r.registryDownUntil = time.Time{}
	if err := r.n.StartRegistry(); err != nil {
		r.violate("harness", "restart the registry: %v", err)
		return
	}
	r.registryUpSince = time.Now()
	r.note("registry up")
}

func (r *run) fillerPath() string { return filepath.Join(r.n.ImageStore(), "soak-filler") }

func (r *run) inject(kind string) error {
	n := r.n
	r.report.Faults[kind]++
	switch kind {
	case "registry-outage":
		d := r.between(5*time.Second, 90*time.Second)
		r.registryDown(d)
		r.note("registry down for %v", d.Round(time.Second))
	case "containerd-sigterm", "containerd-sigkill":
		if kind == "containerd-sigkill" {
			n.RuntimeProcess.Kill()
		} else {
			n.StopRuntime()
		}
		r.note("%s", kind)
		time.Sleep(r.between(time.Second, 5*time.Second))
		if err := n.StartRuntime(r.pause.Ref); err != nil {
			return fmt.Errorf("restart containerd: %w", err)
		}
		r.runtimeUpSince = time.Now()
		r.note("containerd up")
	case "kubelet-restart":
		n.StopKubelet()
		r.note("kubelet stopped")
		time.Sleep(r.between(time.Second, 5*time.Second))
		if err := n.StartKubelet(r.kubeletConfig); err != nil {
			return fmt.Errorf("restart the kubelet: %w", err)
		}
		r.kubeletStart = time.Now()
		r.note("kubelet started")
	case "keeper-sigkill":
		if !r.badUntil.IsZero() {
			// A restart with a bad config would (rightly) refuse to start; that is
			// bad-config's business, not a fault the node must ride out. Dealt again later.
			r.report.Faults[kind]--
			r.deck = append(r.deck, kind)
			return nil
		}
		n.Keeper.Kill()
		r.note("image-keeper killed")
		time.Sleep(r.between(time.Second, 5*time.Second))
		if err := n.StartKeeper(r.keeperArgs...); err != nil {
			return fmt.Errorf("restart image-keeper: %w", err)
		}
		r.keeperUpSince = time.Now()
		r.note("image-keeper started")
	case "rmi":
		var candidates []*framework.Image
		for _, img := range r.wanted {
			if !slices.Contains(mapsValues(r.podImages), img) {
				candidates = append(candidates, img)
			}
		}
		img := candidates[r.rng.IntN(len(candidates))]
		if err := n.RemoveImage(r.wantedRef(img)); err != nil {
			r.note("crictl rmi %s: %v", r.wantedRef(img), err)
		} else {
			r.note("crictl rmi %s", r.wantedRef(img))
		}
	case "imagefs-pressure":
		d := r.between(10*time.Second, 90*time.Second)
		if r.registryDownUntil.IsZero() {
			// Something unused and not allowlisted for the kubelet to collect, next to the
			// allowlisted images it must not.
			img := r.junk[r.rng.IntN(len(r.junk))]
			if err := n.Pull(img.Ref); err == nil {
				r.pulledJunk(img)
				r.note("pulled %s (not allowlisted)", img.Ref)
			}
		}
		if r.pressureUntil.IsZero() {
			var st syscall.Statfs_t
			if err := syscall.Statfs(n.ImageStore(), &st); err != nil {
				return err
			}
			total, free := int64(st.Blocks)*st.Bsize, int64(st.Bavail)*st.Bsize
			threshold := total * 40 / 100
			// Under the 40% eviction threshold: with EvictPods, and in an unresolvable episode,
			// by more than every kept image holds (20% available); in a resolvable episode, by
			// resolvableShortfall, which removing two of the kept images covers.
			leave := total * 20 / 100
			if r.opts.Policy == PolicyEvictPods {
				leave = total * 30 / 100
			}
			// The kinds alternate, resolvable first, so that a short run sees both.
			r.episode.resolvable = r.opts.Policy == PolicyRemoveKeptImages && r.report.Episodes["resolvable"] <= r.report.Episodes["unresolvable"]
			if r.episode.resolvable {
				leave = threshold - resolvableShortfall
			}
			r.episode.shortfall = threshold - leave
			if fill := free - leave; fill > 0 {
				if err := writeFiller(r.fillerPath(), fill); err != nil {
					return err
				}
			}
			if r.opts.Policy == PolicyRemoveKeptImages {
				r.report.Episodes[map[bool]string{true: "resolvable", false: "unresolvable"}[r.episode.resolvable]]++
			}
		}
		r.pressureUntil = time.Now().Add(d)
		r.note("imagefs pressure on for %v (shortfall %d MiB, resolvable by kept images: %v)", d.Round(time.Second), r.episode.shortfall>>20, r.episode.resolvable)
	case "bad-config":
		d := r.between(10*time.Second, 60*time.Second)
		if err := os.WriteFile(r.keeperConfig, []byte("apiVersion: imagekeeper.kubelet-imagecache.io/v1alpha1\nkind: ImageKeeperConfiguration\nimages: [\"soak/unclosed\n"), 0o644); err != nil {
			return err
		}
		r.badUntil = time.Now().Add(d)
		r.note("image-keeper config broken for %v", d.Round(time.Second))
	case "offline-pod":
		names := []string{"soak-a", "soak-b"}
		name := names[r.rng.IntN(len(names))]
		r.registryDown(r.between(20*time.Second, 60*time.Second))
		r.note("registry down; recreating static pod %s", name)
		if err := n.RemoveStaticPod(name); err != nil {
			return err
		}
		if !r.waitFor(time.Minute, func() bool { ok, _ := n.ContainerRunning(name); return !ok }) {
			r.violate("harness", "static pod %s did not stop after its manifest was removed", name)
		}
		_ = n.RemovePod(name)
		if err := n.WriteStaticPod(name, r.podImages[name].Ref, "IfNotPresent"); err != nil {
			return err
		}
		started := time.Now()
		r.report.Checks["offline-pod"]++
		if !r.waitFor(offlinePodWithin, func() bool { ok, _ := n.ContainerRunning(name); return ok }) {
			r.violate("offline-pod", "static pod %s (%s) did not start within %v with the registry down", name, r.podImages[name].Ref, offlinePodWithin)
		} else {
			r.note("static pod %s running %v after its manifest, registry down", name, time.Since(started).Round(100*time.Millisecond))
		}
	case "churn":
		if !r.registryDownUntil.IsZero() {
			r.report.Faults[kind]--
			r.deck = append(r.deck, kind)
			return nil
		}
		img := r.junk[r.rng.IntN(len(r.junk))]
		if err := n.Pull(img.Ref); err != nil {
			r.note("pull %s: %v", img.Ref, err)
		} else {
			r.pulledJunk(img)
			r.note("pulled %s (not allowlisted)", img.Ref)
		}
	}
	return nil
}

func mapsValues(m map[string]*framework.Image) []*framework.Image {
	var out []*framework.Image
	for _, v := range m {
		out = append(out, v)
	}
	return out
}

func writeFiller(path string, size int64) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	chunk := make([]byte, 1<<20)
	for size > 0 {
		w := min(size, int64(len(chunk)))
		if _, err := f.Write(chunk[:w]); err != nil {
			return err
		}
		size -= w
	}
	return nil
}

// pulledJunk records that the test pulled an unkept image; the kubelet sees it at its next GC
// pass.
func (r *run) pulledJunk(img *framework.Image) {
	if _, ok := r.junkSince[img.ID]; !ok {
		r.junkSince[img.ID] = time.Time{}
	}
}

// FaultKinds lists every kind of fault the schedule injects.
func FaultKinds() []string {
	var kinds []string
	for _, f := range faults {
		kinds = append(kinds, f.name)
	}
	return kinds
}
