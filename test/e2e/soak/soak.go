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

// Package soak runs a throwaway edge node (containerd 2.x, a loopback registry, the patched
// kubelet with an allowlist of every pattern form, a selector and a retention budget,
// image-keeper, static pods on allowlisted images) through a seeded random schedule of faults,
// and checks the image cache's invariants all the while:
//
//   - gc: with imageGCExcludeEvictionPolicy EvictPods (PolicyEvictPods), the kubelet never
//     removes an allowlisted image (the budget holds them all): every "Removing image to free
//     bytes" line of its log is checked against the allowlisted image IDs, and
//     kubelet_image_garbage_collected_total against the lines seen;
//   - kept-yield: with the default rule (PolicyRemoveKeptImages), an allowlisted image goes only
//     by the eviction rule, only while the test holds the image filesystem past its eviction
//     threshold, only in an episode whose shortfall the kept images can cover, after every
//     unkept image old enough to go, and only as many as needed (the kubelet stops removing once
//     the bytes it needed are covered, and removes at most the episode's shortfall plus one
//     image);
//   - restore: an allowlisted image that is missing while the registry, the runtime and
//     image-keeper are up is present again within RestoreWindow;
//   - offline-pod: a static pod recreated while the registry is down starts;
//   - keeper-bounded: image-keeper's goroutines and resident memory stay under bounds;
//   - keeper-scope: image-keeper reports every image it keeps as protected by the kubelet's
//     allowlist, and the node holds no image the test did not put there.
package soak

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/kubelet-imagecache/kubelet-imagecache/pkg/keeper"
	"github.com/kubelet-imagecache/kubelet-imagecache/test/e2e/framework"
)

// The imageGCExcludeEvictionPolicy values a soak runs with.
const (
	// PolicyEvictPods keeps every kept image under eviction pressure: none may ever go.
	PolicyEvictPods = "EvictPods"
	// PolicyRemoveKeptImages is the default rule: kept images yield to pods when that relieves
	// the pressure, and only then.
	PolicyRemoveKeptImages = "RemoveKeptImages"
)

// Options configure a soak run.
type Options struct {
	// Policy is the kubelet's imageGCExcludeEvictionPolicy: PolicyEvictPods (the default) or
	// PolicyRemoveKeptImages.
	Policy string
	// Repo is the repository root; Bin holds kubelet and image-keeper.
	Repo, Bin string
	// Duration is how long faults are injected; Seed makes the schedule repeatable.
	Duration time.Duration
	Seed     uint64
	// KeepLogs, when set, is where the components' logs are copied at the end.
	KeepLogs string
	// Logf reports progress; nil is silent.
	Logf func(format string, args ...any)
}

// Bounds the checks hold image-keeper to, and how long a restore may take: image-keeper's
// --interval (5 s) plus --max-backoff (10 s) plus a pull, with slack for a loaded machine.
const (
	RestoreWindow    = 40 * time.Second
	MaxGoroutines    = 150
	MaxRSSBytes      = 128 << 20
	offlinePodWithin = 90 * time.Second
	imageFSBytes     = 512 << 20
	// keptPadBytes is the random layer of each allowlisted image that no pod runs, so that
	// removing a few of them relieves a shortfall of resolvableShortfall.
	keptPadBytes        = 8 << 20
	resolvableShortfall = 12 << 20
	// minAge is imageMinimumGCAge: neither rule removes an image the kubelet first saw more
	// recently; eligibleSlack covers the kubelet's detection delay.
	minAge        = 30 * time.Second
	eligibleSlack = 20 * time.Second
	checkEvery    = 2 * time.Second
	historyLen    = 12
)

// Violation is one broken invariant, with the faults that came before it.
type Violation struct {
	At        time.Duration `json:"at"`
	Invariant string        `json:"invariant"`
	Detail    string        `json:"detail"`
	History   []string      `json:"history"`
}

// Sample is image-keeper's footprint at one moment.
type Sample struct {
	At         time.Duration `json:"at"`
	RSSBytes   float64       `json:"rssBytes"`
	Goroutines float64       `json:"goroutines"`
}

// Report is what a run found.
type Report struct {
	Seed       uint64         `json:"seed"`
	Duration   time.Duration  `json:"duration"`
	Faults     map[string]int `json:"faults"`
	Checks     map[string]int `json:"checks"`
	Violations []Violation    `json:"violations"`
	Samples    []Sample       `json:"samples"`
	Policy     string         `json:"policy"`
	// GCPasses counts the kubelet's image GC passes (eviction's DeleteUnusedImages and the
	// periodic GC); Removed its image removals. With PolicyEvictPods none is allowlisted.
	GCPasses int `json:"gcPasses"`
	Removed  int `json:"removed"`
	// KeptRemoved counts the allowlisted images the eviction rule removed (PolicyRemoveKeptImages).
	KeptRemoved int `json:"keptRemoved"`
	// Episodes counts the imagefs pressure episodes by whether the kept images could cover
	// their shortfall ("resolvable") or not ("unresolvable").
	Episodes map[string]int `json:"episodes"`
	// Restores are how long allowlisted images were missing before they were back.
	Restores []time.Duration `json:"restores"`
}

// run is one soak's state. Only the goroutine of Run touches it.
type run struct {
	opts   Options
	rng    *rand.Rand
	n      *framework.Node
	start  time.Time
	report *Report

	pause      *framework.Image
	wanted     []*framework.Image // image-keeper's list: every allowlisted image but pause
	podImages  map[string]*framework.Image
	junk       []*framework.Image
	allowedIDs map[string]string // allowlisted image ID -> reference
	knownIDs   map[string]bool   // every image the test may put on the node

	kubeletConfig, keeperConfig, goodKeeperConfig string
	keeperArgs                                    []string

	registryUpSince, runtimeUpSince, keeperUpSince time.Time
	registryDownUntil, pressureUntil, badUntil     time.Time
	// pressureEnded is when the last imagefs pressure episode ended.
	pressureEnded time.Time
	// episode is the pressure episode in force: its shortfall when it began, whether the kept
	// images could cover it, and the bytes of kept images removed in it.
	episode struct {
		shortfall, keptBytesRemoved int64
		resolvable                  bool
	}
	// keptSizes are the runtime's sizes of the allowlisted images (PolicyRemoveKeptImages).
	keptSizes map[string]int64
	// junkSince is when each unkept image the test pulled became eligible for collection
	// (pulled, or the kubelet restarted, whichever is later), until the kubelet removes it.
	junkSince    map[string]time.Time
	kubeletStart time.Time
	// pendingRule is the image ID the eviction rule said it removes next.
	pendingRule         string
	missingSince        map[string]time.Time
	reported            map[string]bool
	kubeletLogOffset    int64
	removalsThisKubelet int
	history             []string
	deck                []string
}

// Run builds the node, injects faults for opts.Duration and returns what the checks found.
func Run(ctx context.Context, opts Options) (*Report, error) {
	if opts.Logf == nil {
		opts.Logf = func(string, ...any) {}
	}
	r := &run{
		opts:         opts,
		rng:          rand.New(rand.NewPCG(opts.Seed, opts.Seed^0x5eed)),
		report:       &Report{Seed: opts.Seed, Duration: opts.Duration, Policy: opts.Policy, Faults: map[string]int{}, Checks: map[string]int{}, Episodes: map[string]int{}},
		podImages:    map[string]*framework.Image{},
		allowedIDs:   map[string]string{},
		knownIDs:     map[string]bool{},
		missingSince: map[string]time.Time{},
		reported:     map[string]bool{},
		keptSizes:    map[string]int64{},
		junkSince:    map[string]time.Time{},
	}
	switch opts.Policy {
	case "":
		r.opts.Policy, r.report.Policy = PolicyEvictPods, PolicyEvictPods
	case PolicyEvictPods, PolicyRemoveKeptImages:
	default:
		return nil, fmt.Errorf("policy %q: want %q or %q", opts.Policy, PolicyEvictPods, PolicyRemoveKeptImages)
	}
	root, err := os.MkdirTemp("", "imagecache-soak-")
	if err != nil {
		return nil, err
	}
	runtime, err := framework.RuntimeNamed(opts.Repo, "containerd-2.4")
	if err != nil {
		return nil, err
	}
	r.n, err = framework.NewNode(root, opts.Bin, opts.Repo, runtime)
	if err != nil {
		return nil, err
	}
	defer func() {
		if opts.KeepLogs != "" {
			_ = os.MkdirAll(opts.KeepLogs, 0o755)
			for _, p := range []*framework.Process{r.n.Registry, r.n.RuntimeProcess, r.n.Kubelet, r.n.Keeper} {
				if p != nil {
					data, _ := os.ReadFile(p.Log)
					_ = os.WriteFile(filepath.Join(opts.KeepLogs, filepath.Base(p.Log)), data, 0o644)
				}
			}
		}
		if err := r.n.Teardown(false); err != nil {
			opts.Logf("teardown: %v", err)
		}
	}()
	if err := r.setUp(); err != nil {
		return nil, fmt.Errorf("set up the node: %w", err)
	}
	r.start = time.Now()
	opts.Logf("soak: seed %d, %v of faults on %s", opts.Seed, opts.Duration, root)
	if err := r.loop(ctx); err != nil {
		return r.report, err
	}
	return r.report, r.settle()
}

func (r *run) since() time.Duration { return time.Since(r.start).Round(100 * time.Millisecond) }

func (r *run) note(format string, args ...any) {
	line := fmt.Sprintf("%8v ", r.since()) + fmt.Sprintf(format, args...)
	r.history = append(r.history, line)
	if len(r.history) > historyLen {
		r.history = r.history[len(r.history)-historyLen:]
	}
	r.opts.Logf("soak: %s", line)
}

func (r *run) violate(invariant, format string, args ...any) {
	v := Violation{At: r.since(), Invariant: invariant, Detail: fmt.Sprintf(format, args...), History: slices.Clone(r.history)}
	r.report.Violations = append(r.report.Violations, v)
	r.opts.Logf("soak: VIOLATION %s at %v: %s\n  after:\n    %s", invariant, v.At, v.Detail, strings.Join(v.History, "\n    "))
}

const keepLabel = "soak.kubelet-imagecache.io/keep"

func (r *run) setUp() error {
	n := r.n
	if err := n.LimitImageFS(imageFSBytes); err != nil {
		return err
	}
	if err := n.StartRegistry(); err != nil {
		return err
	}
	push := func(repo, tag string, labels map[string]string, pad int) (*framework.Image, error) {
		img, err := framework.BuildAndPush(n.RegistryAddr, n.Sleeper, framework.ImageSpec{Repository: repo, Tag: tag, Labels: labels, PadBytes: pad})
		if err == nil {
			r.knownIDs[img.ID] = true
		}
		return img, err
	}
	var err error
	if r.pause, err = push("soak/pause", "1", nil, 0); err != nil {
		return err
	}
	// One image per form of entry; pods run two of them (exact and labelled), and the others
	// carry keptPadBytes each, so that the eviction rule has bytes to weigh.
	type spec struct{ repo, tag, label string }
	specs := []spec{{"soak/exact", "1", ""}, {"soak/repo", "1", ""}, {"soak/repo", "2", ""}, {"soak/wild/a", "1", ""},
		{"soak/glob", "1.0", ""}, {"soak/digest", "1", ""}, {"soak/byid", "1", ""}, {"soak/labelled", "1", "true"}}
	for i, s := range specs {
		var labels map[string]string
		if s.label != "" {
			labels = map[string]string{keepLabel: s.label}
		}
		pad := keptPadBytes
		if i == 0 || i == len(specs)-1 {
			pad = 0
		}
		img, err := push(s.repo, s.tag, labels, pad)
		if err != nil {
			return err
		}
		r.wanted = append(r.wanted, img)
	}
	for i := range 6 {
		img, err := push("soak/junk", strconv.Itoa(i), map[string]string{keepLabel: "false"}, 0)
		if err != nil {
			return err
		}
		r.junk = append(r.junk, img)
	}
	exact, digest, byID, labelled := r.wanted[0], r.wanted[5], r.wanted[6], r.wanted[7]
	r.podImages = map[string]*framework.Image{"soak-a": exact, "soak-b": labelled}
	reg := n.RegistryAddr
	for _, img := range append([]*framework.Image{r.pause}, r.wanted...) {
		r.allowedIDs[img.ID] = img.Ref
		r.keptSizes[img.ID] = img.Size
	}

	if err := n.StartRuntime(r.pause.Ref); err != nil {
		return err
	}
	r.runtimeUpSince, r.registryUpSince = time.Now(), time.Now()
	if err := n.Pull(r.pause.Ref); err != nil {
		return err
	}
	r.kubeletConfig, err = n.WriteKubeletConfig("kubelet", framework.KubeletConfig{
		Gate:       true,
		NoPressure: true,
		Exclude: []string{
			r.pause.Ref,            // exact tag
			exact.Ref,              // exact tag
			reg + "/soak/repo",     // repository: both tags
			reg + "/soak/wild/*",   // wildcard
			reg + "/soak/glob:1.*", // tag glob
			digest.DigestRef,       // repo digest
			byID.ID,                // image ID
		},
		Selectors: []string{keepLabel + "=true"},
		// The budget holds every allowlisted image (about 60 MiB of 512). With EvictPods they
		// stay under eviction pressure too (the edge node's choice), so none may ever go; with
		// the default rule they yield when that relieves the pressure, which imageMinimumGCAge
		// of 30 s lets the rule do within a short run. imagefs pressure, when the test fills
		// the image filesystem, makes the eviction manager collect images every ~10 s;
		// imageMaximumGCAge adds the age path.
		Extra: r.evictionPolicyConfig() + "imageGCExcludeBudgetPercent: 50\nevictionHard:\n  imagefs.available: \"40%\"\nevictionPressureTransitionPeriod: 5s\nimageMaximumGCAge: 2m\n",
	})
	if err != nil {
		return err
	}
	if err := n.StartKubelet(r.kubeletConfig); err != nil {
		return err
	}
	r.kubeletStart = time.Now()
	var refs []string
	for _, img := range r.wanted {
		ref := img.Ref
		if img == digest {
			ref = img.DigestRef
		}
		refs = append(refs, ref)
	}
	r.goodKeeperConfig = "apiVersion: imagekeeper.kubelet-imagecache.io/v1alpha1\nkind: ImageKeeperConfiguration\nimages:\n  - " + strings.Join(refs, "\n  - ") + "\n"
	r.keeperConfig = filepath.Join(n.Root, "image-keeper.yaml")
	if err := os.WriteFile(r.keeperConfig, []byte(r.goodKeeperConfig), 0o644); err != nil {
		return err
	}
	r.keeperArgs = []string{"--config", r.keeperConfig, "--kubelet-config", r.kubeletConfig, "--interval", "5s", "--max-backoff", "10s", "--pull-timeout", "30s"}
	if err := n.StartKeeper(r.keeperArgs...); err != nil {
		return err
	}
	r.keeperUpSince = time.Now()
	if !framework.Eventually(2*time.Minute, time.Second, func() bool { return r.allPresent() }) {
		return errors.New("image-keeper did not pull the allowlisted images")
	}
	for name, img := range r.podImages {
		if err := n.WriteStaticPod(name, img.Ref, "IfNotPresent"); err != nil {
			return err
		}
	}
	if !framework.Eventually(2*time.Minute, time.Second, func() bool {
		for name := range r.podImages {
			if ok, _ := n.ContainerRunning(name); !ok {
				return false
			}
		}
		return true
	}) {
		return fmt.Errorf("the static pods did not start; kubelet: %s", framework.Tail(n.Kubelet, 20))
	}
	return nil
}

// evictionPolicyConfig is the kubelet config for the run's policy.
func (r *run) evictionPolicyConfig() string {
	if r.opts.Policy == PolicyEvictPods {
		return "imageGCExcludeEvictionPolicy: EvictPods\n"
	}
	return fmt.Sprintf("imageMinimumGCAge: %v\n", minAge)
}

// wantedRef is how image-keeper names an image (digest entries by digest).
func (r *run) wantedRef(img *framework.Image) string {
	if img == r.wanted[5] {
		return img.DigestRef
	}
	return img.Ref
}

func (r *run) allPresent() bool {
	p, err := r.n.Present()
	if err != nil {
		return false
	}
	for _, img := range r.wanted {
		if !p[r.wantedRef(img)] {
			return false
		}
	}
	return true
}

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

func (r *run) loop(ctx context.Context) error {
	next := time.Now().Add(r.between(3*time.Second, 9*time.Second))
	lastCheck := time.Time{}
	for time.Since(r.start) < r.opts.Duration {
		if err := ctx.Err(); err != nil {
			return err
		}
		now := time.Now()
		r.endStates(now)
		if now.After(next) {
			if err := r.inject(r.pick()); err != nil {
				return err
			}
			next = time.Now().Add(r.between(3*time.Second, 15*time.Second))
		}
		if time.Since(lastCheck) >= checkEvery {
			r.check()
			lastCheck = time.Now()
		}
		time.Sleep(250 * time.Millisecond)
	}
	return nil
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
			r.episode.resolvable = r.opts.Policy == PolicyRemoveKeptImages && r.rng.IntN(2) == 0
			if r.episode.resolvable {
				leave = threshold - resolvableShortfall
			}
			r.episode.shortfall, r.episode.keptBytesRemoved = threshold-leave, 0
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

// waitFor polls cond for up to timeout, running the invariant checks every checkEvery while it
// waits, so that a long fault does not pause them.
func (r *run) waitFor(timeout time.Duration, cond func() bool) bool {
	deadline, lastCheck := time.Now().Add(timeout), time.Now()
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		if time.Since(lastCheck) >= checkEvery {
			r.check()
			lastCheck = time.Now()
		}
		time.Sleep(250 * time.Millisecond)
	}
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

// check runs every invariant once.
func (r *run) check() {
	r.checkGC()
	r.checkRestore()
	r.checkKeeper()
}

var (
	removingRE = regexp.MustCompile(`"Removing image to free bytes" imageID="([^"]+)" size=(\d+)`)
	// ruleRE is the eviction rule's line before each kept image it removes.
	ruleRE = regexp.MustCompile(`"Removing an image that imageGCExclude keeps to relieve disk pressure" imageID="([^"]+)".* bytesToFree=(\d+) freed=(\d+)`)
)

// checkGC reads the kubelet's log from where it stopped last time.
func (r *run) checkGC() {
	r.report.Checks["gc"]++
	f, err := os.Open(r.n.Kubelet.Log)
	if err != nil {
		r.violate("harness", "read the kubelet's log: %v", err)
		return
	}
	defer f.Close()
	if _, err := f.Seek(r.kubeletLogOffset, io.SeekStart); err != nil {
		return
	}
	data, err := io.ReadAll(f)
	if err != nil {
		return
	}
	// Only whole lines: the kubelet may be writing the last one.
	end := strings.LastIndexByte(string(data), '\n') + 1
	r.kubeletLogOffset += int64(end)
	for _, line := range strings.Split(string(data[:end]), "\n") {
		if strings.Contains(line, "FLAG: --config=") {
			// A kubelet (re)start: its counter starts from zero.
			r.removalsThisKubelet = 0
			continue
		}
		if strings.Contains(line, `"Attempting to delete unused images"`) {
			r.report.GCPasses++
			continue
		}
		if m := ruleRE.FindStringSubmatch(line); m != nil {
			r.checkRule(m[1], atoi(m[2]), atoi(m[3]))
			continue
		}
		m := removingRE.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		r.removalsThisKubelet++
		r.report.Removed++
		delete(r.junkSince, m[1])
		ref, kept := r.allowedIDs[m[1]]
		switch {
		case kept && r.opts.Policy == PolicyEvictPods:
			r.violate("gc", "the kubelet removed allowlisted image %s (%s)", ref, m[1])
		case kept && r.pendingRule != m[1]:
			r.violate("kept-yield", "the kubelet removed allowlisted image %s (%s) by another path than the eviction rule", ref, m[1])
		case kept:
			r.pendingRule = ""
			r.report.KeptRemoved++
			r.episode.keptBytesRemoved += atoi(m[2])
			if most := r.episode.shortfall + slices.Max(slices.Collect(maps.Values(r.keptSizes))); r.episode.keptBytesRemoved > most {
				r.violate("kept-yield", "the eviction rule removed %d bytes of kept images in one pressure episode; its shortfall was %d bytes, so at most %d were needed", r.episode.keptBytesRemoved, r.episode.shortfall, most)
			}
		case !r.knownIDs[m[1]]:
			r.violate("keeper-scope", "the kubelet removed %s, an image the test never put on the node", m[1])
		}
	}
	// The counter of this kubelet process against the lines it wrote: a log line the scan
	// missed would hide a removal. The counter is read after the log, so it can only be behind.
	if metrics, err := r.n.KubeletMetrics(); err == nil {
		r.report.Checks["gc-metric"]++
		if total := sumMetric(metrics, "kubelet_image_garbage_collected_total"); total > float64(r.removalsThisKubelet) {
			r.violate("gc", "kubelet_image_garbage_collected_total is %v but its log shows %d removals", total, r.removalsThisKubelet)
		}
	}
}

// checkRule checks the eviction rule's decision to remove the kept image id: it needed
// bytesToFree and had freed freed before this image.
func (r *run) checkRule(id string, bytesToFree, freed int64) {
	r.report.Checks["kept-yield"]++
	r.pendingRule = id
	ref := r.allowedIDs[id]
	switch {
	case r.opts.Policy == PolicyEvictPods:
		r.violate("gc", "the eviction rule removes allowlisted image %s with imageGCExcludeEvictionPolicy EvictPods", ref)
	case r.pressureUntil.IsZero() && time.Since(r.pressureEnded) > 2*checkEvery:
		r.violate("kept-yield", "the eviction rule removes allowlisted image %s with no imagefs pressure", ref)
	case !r.episode.resolvable:
		r.violate("kept-yield", "the eviction rule removes allowlisted image %s in an episode whose shortfall (%d MiB) the kept images cannot cover", ref, r.episode.shortfall>>20)
	case freed >= bytesToFree:
		r.violate("kept-yield", "the eviction rule removes allowlisted image %s after it freed %d of the %d bytes it needed", ref, freed, bytesToFree)
	}
	// Every unkept image old enough to go must have gone first.
	eligible := time.Now().Add(-minAge - eligibleSlack)
	for junkID, since := range r.junkSince {
		if latest(since, r.kubeletStart).Before(eligible) {
			r.violate("kept-yield", "the eviction rule removes allowlisted image %s while unkept image %s, on the node since %v, is still there", ref, junkID, since.Sub(r.start).Round(time.Second))
		}
	}
}

// pulledJunk records that the test pulled an unkept image.
func (r *run) pulledJunk(img *framework.Image) {
	if _, ok := r.junkSince[img.ID]; !ok {
		r.junkSince[img.ID] = time.Now()
	}
}

func atoi(s string) int64 {
	n, _ := strconv.ParseInt(s, 10, 64)
	return n
}

func (r *run) checkRestore() {
	p, err := r.n.Present()
	if err != nil {
		return // the runtime is restarting
	}
	r.report.Checks["restore"]++
	now := time.Now()
	for _, img := range r.wanted {
		ref := r.wantedRef(img)
		if p[ref] {
			if since, ok := r.missingSince[ref]; ok {
				r.report.Restores = append(r.report.Restores, now.Sub(since))
				delete(r.missingSince, ref)
				delete(r.reported, ref)
				if !r.pressureUntil.IsZero() {
					// The restore takes back space that the episode's pressure wants.
					r.episode.shortfall += r.keptSizes[img.ID]
				}
			}
			continue
		}
		if _, ok := r.missingSince[ref]; !ok {
			r.missingSince[ref] = now
		}
		if !r.registryDownUntil.IsZero() || r.reported[ref] {
			continue
		}
		// The clock starts when everything a restore needs is up again, and, with the default
		// rule, when the pressure that kept images yield to has ended.
		from := latest(r.missingSince[ref], r.registryUpSince, r.runtimeUpSince, r.keeperUpSince)
		if r.opts.Policy == PolicyRemoveKeptImages {
			if !r.pressureUntil.IsZero() {
				continue
			}
			from = latest(from, r.pressureEnded)
		}
		if now.Sub(from) > RestoreWindow {
			r.reported[ref] = true
			r.violate("restore", "%s missing for %v with the registry, containerd and image-keeper up (since %v)", ref, now.Sub(from).Round(time.Second), from.Sub(r.start).Round(time.Second))
		}
	}
	for id := range imageIDs(p) {
		if !r.knownIDs[id] {
			r.violate("keeper-scope", "the node holds image %s, which the test never put there", id)
			r.knownIDs[id] = true // once
		}
	}
}

func imageIDs(p map[string]bool) map[string]bool {
	ids := map[string]bool{}
	for k := range p {
		if strings.HasPrefix(k, "sha256:") {
			ids[k] = true
		}
	}
	return ids
}

func latest(ts ...time.Time) time.Time {
	var out time.Time
	for _, t := range ts {
		if t.After(out) {
			out = t
		}
	}
	return out
}

func (r *run) checkKeeper() {
	if r.n.Keeper == nil || r.n.Keeper.Exited() {
		r.violate("keeper-bounded", "image-keeper exited: %s", framework.Tail(r.n.Keeper, 5))
		return
	}
	client := http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get("http://" + r.n.KeeperAddr + "/metrics")
	if err != nil {
		return // starting
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	r.report.Checks["keeper-bounded"]++
	s := Sample{At: r.since(), RSSBytes: sumMetric(string(body), "process_resident_memory_bytes"), Goroutines: sumMetric(string(body), "go_goroutines")}
	r.report.Samples = append(r.report.Samples, s)
	if s.Goroutines > MaxGoroutines || s.RSSBytes > MaxRSSBytes {
		r.violate("keeper-bounded", "image-keeper has %v goroutines and %.1f MiB resident (bounds %d, %d MiB)", s.Goroutines, s.RSSBytes/(1<<20), MaxGoroutines, MaxRSSBytes>>20)
	}
	resp, err = client.Get("http://" + r.n.KeeperAddr + "/status")
	if err != nil {
		return
	}
	var status keeper.Status
	err = json.NewDecoder(resp.Body).Decode(&status)
	resp.Body.Close()
	if err != nil {
		r.violate("harness", "decode image-keeper's /status: %v", err)
		return
	}
	r.report.Checks["keeper-scope"]++
	if len(status.Images) != len(r.wanted)+1 { // its list and the kubelet's concrete entries
		var refs []string
		for _, img := range status.Images {
			refs = append(refs, img.Reference)
		}
		r.violate("keeper-scope", "image-keeper wants %d images, not %d: %v (config error %q)", len(status.Images), len(r.wanted)+1, refs, status.ConfigError)
	}
	for _, img := range status.Images {
		// "unknown" is what image-keeper says of an image it has not seen yet when selectors
		// could protect it (labels are read from the image): only a "no" is a violation.
		if img.Protected.State == keeper.Unprotected && !r.reported["scope:"+img.Reference] {
			r.reported["scope:"+img.Reference] = true // once per image
			r.violate("keeper-scope", "image-keeper keeps %s, which the kubelet's allowlist does not protect (%s)", img.Reference, img.Protected.Reason)
		}
	}
}

// sumMetric adds up every sample of a metric family in Prometheus text format.
func sumMetric(text, name string) float64 {
	total := 0.0
	for _, line := range strings.Split(text, "\n") {
		if !strings.HasPrefix(line, name) {
			continue
		}
		rest := line[len(name):]
		if rest == "" || (rest[0] != ' ' && rest[0] != '{') {
			continue
		}
		fields := strings.Fields(line)
		if v, err := strconv.ParseFloat(fields[len(fields)-1], 64); err == nil {
			total += v
		}
	}
	return total
}

// settle ends every fault, then waits for the node to hold every allowlisted image and run its
// pods again, checking all the while.
func (r *run) settle() error {
	// Only the faults in force end: ending an outage that is not on would start a second
	// registry beside the running one (and leave the first behind, unstopped).
	for _, until := range []*time.Time{&r.registryDownUntil, &r.pressureUntil, &r.badUntil} {
		if !until.IsZero() {
			*until = time.Now()
		}
	}
	r.endStates(time.Now().Add(time.Millisecond))
	r.note("settling: every fault ended")
	deadline := time.Now().Add(RestoreWindow + 20*time.Second)
	for time.Now().Before(deadline) {
		r.check()
		if r.allPresent() {
			break
		}
		time.Sleep(checkEvery)
	}
	r.check()
	if !r.allPresent() {
		p, _ := r.n.Present()
		var missing []string
		for _, img := range r.wanted {
			if !p[r.wantedRef(img)] {
				missing = append(missing, r.wantedRef(img))
			}
		}
		sort.Strings(missing)
		r.violate("restore", "after every fault ended, still missing: %v", missing)
	}
	for name := range r.podImages {
		if ok, _ := r.n.ContainerRunning(name); !ok && !framework.Eventually(offlinePodWithin, time.Second, func() bool { ok, _ := r.n.ContainerRunning(name); return ok }) {
			r.violate("offline-pod", "static pod %s is not running at the end", name)
		}
	}
	r.report.Duration = time.Since(r.start).Round(time.Second)
	return nil
}

// FaultKinds lists every kind of fault the schedule injects.
func FaultKinds() []string {
	var kinds []string
	for _, f := range faults {
		kinds = append(kinds, f.name)
	}
	return kinds
}
