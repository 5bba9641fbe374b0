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
//     threshold (or within pressureLag of its end), only in an episode whose shortfall the kept
//     images can cover, after every unkept image older than imageMinimumGCAge since the kubelet
//     first saw it, and only as many as needed: the rule's own line says how many bytes it needs
//     and has freed, and it must stop once they are covered. (An episode-wide bound on the bytes
//     removed was tried and dropped: image-keeper restores images between two checks, and each
//     restore takes back space the episode's pressure wants, so the bound cannot be known from
//     outside.);
//   - restore: an allowlisted image that is missing while the registry, the runtime and
//     image-keeper are up is present again within RestoreWindow;
//   - offline-pod: a static pod recreated while the registry is down starts;
//   - keeper-bounded: image-keeper's goroutines and resident memory stay under bounds;
//   - keeper-scope: image-keeper reports every image it keeps as protected by the kubelet's
//     allowlist, and the node holds no image the test did not put there.
package soak

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kubeletv1beta1 "k8s.io/kubelet/config/v1beta1"
	"k8s.io/utils/ptr"

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
	// pressureLag is how long after the test ends pressure the kubelet may still act on it:
	// its eviction monitoring interval (10 s) and evictionPressureTransitionPeriod (5 s).
	pressureLag = 15 * time.Second
	checkEvery  = 2 * time.Second
	historyLen  = 12
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
	// RuleDecisions counts the eviction rule's logged decisions: each kept image it removes, and
	// each time it keeps them all because they could not relieve the pressure.
	RuleDecisions int `json:"ruleDecisions"`
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
		shortfall  int64
		resolvable bool
	}
	// keptSizes are the runtime's sizes of the allowlisted images (PolicyRemoveKeptImages).
	keptSizes map[string]int64
	// junkSince is, for each unkept image the test pulled, when the kubelet first saw it: the
	// first GC pass after the pull or after the kubelet's last start (its imageMinimumGCAge
	// counts from there); zero until that pass. Entries go when the kubelet removes the image.
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
		Gate: true,
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
		BudgetPercent:    ptr.To[int32](50),
		EvictionPolicy:   r.evictionPolicy(),
		ImagefsAvailable: "40%",
		Customize: func(c *kubeletv1beta1.KubeletConfiguration) {
			c.ImageMaximumGCAge = metav1.Duration{Duration: 2 * time.Minute}
			if r.opts.Policy == PolicyRemoveKeptImages {
				c.ImageMinimumGCAge = metav1.Duration{Duration: minAge}
			}
		},
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
	r.goodKeeperConfig = string(framework.KeeperConfig(refs...))
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

// evictionPolicy is the kubelet's imageGCExcludeEvictionPolicy for the run's policy ("": the
// default, RemoveKeptImages).
func (r *run) evictionPolicy() string {
	if r.opts.Policy == PolicyEvictPods {
		return PolicyEvictPods
	}
	return ""
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
