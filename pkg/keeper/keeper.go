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

// Package keeper keeps a set of wanted images present in a CRI runtime: it pulls what is
// missing, backs off per image while a registry is unreachable, and never removes anything.
package keeper

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"golang.org/x/time/rate"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/klog/v2"

	"github.com/kubelet-imagecache/kubelet-imagecache/pkg/kubelet/images/allowlist"
)

// ImageService is the part of the CRI image service image-keeper uses. It has no RemoveImage:
// image-keeper never deletes.
type ImageService interface {
	ListImages(ctx context.Context, filter *runtimeapi.ImageFilter) ([]*runtimeapi.Image, error)
	ImageStatus(ctx context.Context, image *runtimeapi.ImageSpec, verbose bool) (*runtimeapi.ImageStatusResponse, error)
	PullImage(ctx context.Context, image *runtimeapi.ImageSpec, auth *runtimeapi.AuthConfig, podSandboxConfig *runtimeapi.PodSandboxConfig) (string, error)
}

// Options tune the reconcile loop.
type Options struct {
	// Interval between passes when nothing is due earlier.
	Interval time.Duration
	// PullConcurrency bounds the pulls in flight.
	PullConcurrency int
	// PullTimeout bounds one pull; a pass never waits longer for a pull.
	PullTimeout time.Duration
	// ListTimeout bounds one ListImages or ImageStatus call.
	ListTimeout time.Duration
	// BackoffBase is the delay after the first failure; it doubles per failure up to BackoffMax,
	// with jitter.
	BackoffBase, BackoffMax time.Duration
	// Credentials log in to registries; nil for anonymous pulls.
	Credentials CredentialSource
	// Holder, when set, is holder mode (package holder): a running holder pod's image volumes
	// protect the wanted images on a kubelet without the allowlist, and the node is warm only
	// once every wanted image is both present and protected.
	Holder Holder
	// UnhealthyAfter is how long the runtime may stay unreachable before /healthz fails, so that
	// a wedged pod (a stale socket mount, a broken network namespace) is restarted. 0 never
	// fails. An unreachable registry never makes image-keeper unhealthy.
	UnhealthyAfter time.Duration
	// PullSlots, when set, bound the nodes of the cluster pulling at once (slots.go).
	PullSlots PullSlots
}

// Holder is what image-keeper knows of the holder pods on its node (package holder).
type Holder interface {
	// Mode names the holder for the status: "static pod in <dir>", "DaemonSet pods in <namespace>".
	Mode() string
	// HeldBy names the running holder pod that mounts the image (by its reference or by the ID
	// of the image present under it) as an image volume, "" when none does.
	HeldBy(reference, imageID string) string
	// Pending says what the holder waits for or why it cannot hold the list, "" when nothing.
	Pending() string
}

// DefaultOptions are the flags' defaults.
func DefaultOptions() Options {
	return Options{
		Interval:        30 * time.Second,
		PullConcurrency: 2,
		PullTimeout:     10 * time.Minute,
		ListTimeout:     30 * time.Second,
		BackoffBase:     time.Second,
		BackoffMax:      60 * time.Second,
		UnhealthyAfter:  5 * time.Minute,
	}
}

// Keeper is the reconcile loop. Its methods are safe for concurrent use.
type Keeper struct {
	opts    Options
	connect func(context.Context) (ImageService, error)
	metrics *Metrics

	// pullLock is held by a pass; one pass runs at a time. Pulls run outside it.
	pullLock sync.Mutex

	// wake tells an idle pull worker that queue has work; pulled tells Run that a pull ended, so
	// that it recomputes when the next pass is due. Both hold at most one token.
	wake, pulled chan struct{}
	// updated gets a token after every pass and every pull: Status may have changed.
	updated chan struct{}

	// mu guards the fields below.
	mu              sync.Mutex
	svc             ImageService
	wanted          *Wanted
	allowlist       *allowlist.Allowlist
	allowlistErr    error
	states          map[string]*ImageState
	status          Status
	runtimeFailures int
	// runtimeDownSince is when the runtime stopped answering; zero while it answers.
	runtimeDownSince time.Time
	runtimeRetry     time.Time
	rng              *rand.Rand
	// queue holds the due images for the workers of Run; workers says they are running.
	queue   []pullJob
	workers bool
	// earliestRetry is the earliest retry slot of a missing image, zero when none is set: kept
	// as failures happen, so that NextDelay need not walk every image after every pull.
	earliestRetry time.Time
	// registries are those failing for a reason of their own (registry.go).
	registries map[string]*registryState
	// failureLog bounds the failed pulls logged one by one; unloggedFailures counts the others
	// since lastFailureSummary.
	failureLog         *rate.Limiter
	unloggedFailures   int
	lastFailureSummary time.Time

	// statusJSON caches /status's encoded answer (statusMu guards it); statusSlots bounds the
	// answers being written at once (server.go).
	statusMu    sync.Mutex
	statusJSON  []byte
	statusAt    time.Time
	statusSlots chan struct{}

	// slotMu guards the pull slot (slots.go): the pulls using it, what gives it back, the
	// timer that will, and, while one of the node's pulls waits for a slot, a channel closed
	// when it has one.
	slotMu      sync.Mutex
	slotUsers   int
	slotRelease func()
	slotLost    <-chan struct{}
	slotTimer   *time.Timer
	slotTaking  chan struct{}
}

// New returns a Keeper for the wanted images. connect opens the runtime's image service; it is
// called again after a failure, so a runtime that is down at start is picked up later.
func New(opts Options, wanted *Wanted, connect func(context.Context) (ImageService, error), metrics *Metrics) *Keeper {
	k := &Keeper{
		opts:        opts,
		connect:     connect,
		metrics:     metrics,
		states:      map[string]*ImageState{},
		wake:        make(chan struct{}, 1),
		pulled:      make(chan struct{}, 1),
		updated:     make(chan struct{}, 1),
		statusSlots: make(chan struct{}, maxStatusAnswers),
		registries:  map[string]*registryState{},
		// 5 lines a second at most, 50 at once: about 100 KiB a minute at worst.
		failureLog:         rate.NewLimiter(5, 50),
		lastFailureSummary: time.Now(),
		rng:                rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64())), // nodes started together jitter apart
	}
	k.SetWanted(wanted)
	return k
}

// SetWanted replaces the wanted images, keeping what is known of those still wanted.
func (k *Keeper) SetWanted(w *Wanted) {
	k.mu.Lock()
	defer k.mu.Unlock()
	states := map[string]*ImageState{}
	for _, img := range w.Images {
		if old, ok := k.states[img.Reference]; ok {
			old.Source = img.Source
			states[img.Reference] = old
			continue
		}
		states[img.Reference] = &ImageState{Reference: img.Reference, Source: img.Source, Protected: unknown("not checked yet")}
	}
	k.states = states
	k.wanted = w
	k.allowlist, k.allowlistErr = nil, nil // rebuilt with the runtime connection on the next pass
	k.status.ConfigError = ""
	k.metrics.configStale.Set(0)
	k.status.NotPullable = w.NotPullable
	k.metrics.wanted.Set(float64(len(w.Images)))
}

// SetConfigError records a failed reload; the current wanted images stay.
func (k *Keeper) SetConfigError(err error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.status.ConfigError = err.Error()
	k.metrics.configStale.Set(1)
}

// Reconcile runs one pass: list the runtime's images once, then pull every wanted image that is
// missing and due, at most PullConcurrency at a time (queued for Run's workers when Run is
// running, else pulled before it returns). It returns an error only when the runtime could not
// be reached.
func (k *Keeper) Reconcile(ctx context.Context) error { return k.pass(ctx, true) }

// Observe runs one pass that only looks: the images present and their protection, no pulls.
func (k *Keeper) Observe(ctx context.Context) error { return k.pass(ctx, false) }

func (k *Keeper) pass(ctx context.Context, pull bool) error {
	k.pullLock.Lock()
	defer k.pullLock.Unlock()
	logger := klog.FromContext(ctx)

	svc, present, err := k.listImages(ctx)
	if err != nil {
		k.mu.Lock()
		k.runtimeFailures++
		k.runtimeRetry = time.Now().Add(k.backoff(k.runtimeFailures))
		if k.runtimeDownSince.IsZero() {
			k.runtimeDownSince = time.Now()
		}
		k.status.RuntimeError = err.Error()
		k.mu.Unlock()
		logger.Info("Container runtime unreachable; will retry", "err", err)
		return err
	}

	now := time.Now()
	k.mu.Lock()
	k.runtimeFailures = 0
	k.runtimeDownSince = time.Time{}
	k.status.RuntimeError = ""
	k.status.LastReconcile = now
	wanted := k.wanted
	if k.allowlist == nil && wanted.Allowlist != nil {
		// Built with the runtime connection, which reads labels for selectors.
		k.allowlist, k.allowlistErr = allowlist.New(wanted.AllowlistPatterns, wanted.AllowlistSelectors, svc)
	}
	gcAllowlist, allowlistErr := k.allowlist, k.allowlistErr
	var due []*ImageState
	for _, img := range wanted.Images {
		state := k.states[img.Reference]
		found := present[img.Reference]
		state.Present = found != nil
		if found != nil {
			state.ImageID, state.Size = found.Id, found.GetSize()
		}
		if !state.Present && pull && !state.pulling && !now.Before(state.NextAttempt) && !k.registryBackingOff(img.Reference, now) {
			state.pulling = true
			due = append(due, state)
		}
	}
	// The retries still to come; those being pulled set theirs when they fail.
	k.earliestRetry = time.Time{}
	for _, state := range k.states {
		if !state.Present && !state.pulling && state.NextAttempt.After(now) && (k.earliestRetry.IsZero() || state.NextAttempt.Before(k.earliestRetry)) {
			k.earliestRetry = state.NextAttempt
		}
	}
	k.pruneRegistries()
	k.logFailureSummary(logger, now)
	k.mu.Unlock()

	// Outside mu: deciding protection may ask the runtime for labels.
	for _, img := range wanted.Images {
		protected := k.protection(ctx, wanted, gcAllowlist, allowlistErr, present[img.Reference], img)
		k.mu.Lock()
		if state, ok := k.states[img.Reference]; ok {
			state.Protected = protected
		}
		k.mu.Unlock()
	}

	if len(due) > 0 {
		k.mu.Lock()
		queued := k.workers
		if queued {
			for _, state := range due {
				k.queue = append(k.queue, pullJob{svc: svc, state: state})
			}
		}
		k.mu.Unlock()
		if queued {
			signal(k.wake)
		} else {
			k.pullAll(ctx, svc, due)
		}
	}
	k.updatePresentMetric()
	k.metrics.lastReconcile.Set(float64(now.Unix()))
	signal(k.updated)
	return nil
}

// listImages returns the runtime's images by normalized repo tag and repo digest.
func (k *Keeper) listImages(ctx context.Context) (ImageService, map[string]*runtimeapi.Image, error) {
	k.mu.Lock()
	svc := k.svc
	k.mu.Unlock()
	if svc == nil {
		var err error
		if svc, err = k.connect(ctx); err != nil {
			return nil, nil, err
		}
		k.mu.Lock()
		k.svc = svc
		k.mu.Unlock()
	}
	listCtx, cancel := context.WithTimeout(ctx, k.opts.ListTimeout)
	defer cancel()
	list, err := svc.ListImages(listCtx, nil)
	if err != nil {
		return nil, nil, fmt.Errorf("ListImages: %w", err)
	}
	present := map[string]*runtimeapi.Image{}
	for _, img := range list {
		for _, names := range [][]string{img.RepoTags, img.RepoDigests} {
			for _, ref := range names {
				if normalized, ok := allowlist.NormalizeReference(ref); ok {
					present[normalized] = img
				}
			}
		}
	}
	return svc, present, nil
}

// NextDelay is how long the loop may sleep: until the next interval, the next due retry of a
// missing image, or the next try to reach the runtime, whichever is first.
func (k *Keeper) NextDelay() time.Duration {
	k.mu.Lock()
	defer k.mu.Unlock()
	now := time.Now()
	next := now.Add(k.opts.Interval)
	if k.runtimeFailures > 0 && k.runtimeRetry.Before(next) {
		next = k.runtimeRetry
	}
	if !k.earliestRetry.IsZero() && k.earliestRetry.Before(next) {
		next = k.earliestRetry
	}
	if r := k.registryRetry(now); !r.IsZero() && r.Before(next) {
		next = r
	}
	return max(next.Sub(now), 10*time.Millisecond)
}

// Run reconciles until ctx is done. A receive on reload reloads the wanted images with load;
// a failed reload keeps the current ones and is reported in Status.
func (k *Keeper) Run(ctx context.Context, reload <-chan struct{}, load func() (*Wanted, error)) {
	logger := klog.FromContext(ctx)
	var wg sync.WaitGroup
	defer wg.Wait()
	k.mu.Lock()
	k.workers = true
	k.mu.Unlock()
	for i := 0; i < max(1, k.opts.PullConcurrency); i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			k.worker(ctx)
		}()
	}
	pass := true
	for {
		if pass {
			_ = k.Reconcile(ctx) // failures are in Status and the log
		}
		pass = true
		timer := time.NewTimer(k.NextDelay())
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-timer.C:
		case <-k.pulled:
			// A pull ended: its retry may be due before the timer.
			timer.Stop()
			pass = false
		case <-reload:
			timer.Stop()
			w, err := load()
			if err != nil {
				logger.Error(err, "Reload failed; keeping the previous configuration")
				k.SetConfigError(err)
				continue
			}
			logger.Info("Reloaded configuration", "wantedImages", len(w.Images))
			k.SetWanted(w)
		}
	}
}

// Updated receives a token after a pass or a pull has ended, when Status may have changed, so
// that a watcher (the node status publisher) need not poll. One token stands for many.
func (k *Keeper) Updated() <-chan struct{} { return k.updated }
