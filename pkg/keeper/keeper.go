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
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

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
	// UnhealthyAfter is how long the runtime may stay unreachable before /healthz fails, so that
	// a wedged pod (a stale socket mount, a broken network namespace) is restarted. 0 never
	// fails. An unreachable registry never makes image-keeper unhealthy.
	UnhealthyAfter time.Duration
}

// CredentialSource gives the registry login for a normalized reference, nil for none
// (*dockerconfig.File, *dockerconfig.Keyring, *credentialplugin.Plugins).
type CredentialSource interface {
	For(normalizedRef string) *runtimeapi.AuthConfig
}

// CredentialChain asks each source in turn and returns the first login.
type CredentialChain []CredentialSource

// For returns the first source's login for the reference.
func (c CredentialChain) For(normalizedRef string) *runtimeapi.AuthConfig {
	for _, src := range c {
		if auth := src.For(normalizedRef); auth != nil {
			return auth
		}
	}
	return nil
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

// ImageState is what image-keeper knows of one wanted image: a row of `image-keeper status`.
type ImageState struct {
	Reference string `json:"reference"`
	Source    string `json:"source"`
	Present   bool   `json:"present"`
	ImageID   string `json:"imageID,omitempty"`
	Size      uint64 `json:"size,omitempty"`
	// Protected says whether the kubelet's allowlist keeps the image.
	Protected   Protection `json:"protected"`
	LastPull    time.Time  `json:"lastPull,omitzero"`
	LastError   string     `json:"lastError,omitempty"`
	Failures    int        `json:"failures,omitempty"`
	NextAttempt time.Time  `json:"nextAttempt,omitzero"`

	// pulling is set while the image is queued for a pull or being pulled: a pass does not
	// queue it again.
	pulling bool
}

// Status is the whole state: what /status serves and `image-keeper status` prints.
type Status struct {
	Images []ImageState `json:"images"`
	// RuntimeError is the last failure to reach the runtime, "" when the last pass reached it.
	RuntimeError string `json:"runtimeError,omitempty"`
	// ConfigError is the last failed reload; the previous configuration stays in force.
	ConfigError string `json:"configError,omitempty"`
	// LastReconcile is when a pass last reached the runtime.
	LastReconcile time.Time `json:"lastReconcile,omitzero"`
	// NotPullable lists kubelet allowlist entries that protect but cannot be pulled.
	NotPullable []string `json:"notPullable,omitempty"`
	// KubeletConfigMissing says why the kubelet config is not read yet (first boot).
	KubeletConfigMissing string `json:"kubeletConfigMissing,omitempty"`
}

// Ready reports whether every wanted image is present, and if not, why.
func (s Status) Ready() (bool, string) {
	if s.KubeletConfigMissing != "" {
		return false, "waiting for the kubelet config, which names images to keep: " + s.KubeletConfigMissing
	}
	if s.RuntimeError != "" {
		return false, "container runtime unreachable: " + s.RuntimeError
	}
	if s.LastReconcile.IsZero() {
		return false, "no reconcile pass has reached the runtime yet"
	}
	var missing []string
	for _, img := range s.Images {
		if !img.Present {
			reason := img.Reference
			if img.LastError != "" {
				reason += " (" + img.LastError + ")"
			}
			missing = append(missing, reason)
		}
	}
	if len(missing) > 0 {
		return false, fmt.Sprintf("%d of %d wanted images missing: %v", len(missing), len(s.Images), missing)
	}
	return true, fmt.Sprintf("all %d wanted images present", len(s.Images))
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
}

// pullJob is one queued pull.
type pullJob struct {
	svc   ImageService
	state *ImageState
}

// New returns a Keeper for the wanted images. connect opens the runtime's image service; it is
// called again after a failure, so a runtime that is down at start is picked up later.
func New(opts Options, wanted *Wanted, connect func(context.Context) (ImageService, error), metrics *Metrics) *Keeper {
	k := &Keeper{
		opts:    opts,
		connect: connect,
		metrics: metrics,
		states:  map[string]*ImageState{},
		wake:    make(chan struct{}, 1),
		pulled:  make(chan struct{}, 1),
		updated: make(chan struct{}, 1),
		rng:     rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64())), // nodes started together jitter apart
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
	k.status.NotPullable = w.NotPullable
	k.metrics.wanted.Set(float64(len(w.Images)))
}

// SetConfigError records a failed reload; the current wanted images stay.
func (k *Keeper) SetConfigError(err error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.status.ConfigError = err.Error()
}

// Status returns a copy of the current state, images sorted by reference.
func (k *Keeper) Status() Status {
	k.mu.Lock()
	defer k.mu.Unlock()
	s := k.status
	s.KubeletConfigMissing = k.wanted.KubeletConfigMissing
	s.Images = make([]ImageState, 0, len(k.wanted.Images))
	for _, img := range k.wanted.Images {
		s.Images = append(s.Images, *k.states[img.Reference])
	}
	return s
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
		if !state.Present && pull && !state.pulling && !now.Before(state.NextAttempt) {
			state.pulling = true
			due = append(due, state)
		}
	}
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

// ProtectionState says whether the kubelet's allowlist keeps an image.
type ProtectionState string

// The protection states.
const (
	Protected         ProtectionState = "yes"
	Unprotected       ProtectionState = "no"
	ProtectionUnknown ProtectionState = "unknown"
)

// Protection is the kubelet allowlist's decision on a wanted image: the entry that keeps it, or
// why it is not kept or cannot be known.
type Protection struct {
	State ProtectionState `json:"state"`
	// Entry is the imageGCExclude or imageGCExcludeSelectors entry that keeps the image.
	Entry string `json:"entry,omitempty"`
	// Reason says why the image is not protected, or why that is not known.
	Reason string `json:"reason,omitempty"`
}

// String is the table's form: "yes: <entry>", "no: <reason>", "unknown: <reason>".
func (p Protection) String() string {
	if p.State == Protected {
		return string(p.State) + ": " + p.Entry
	}
	return string(p.State) + ": " + p.Reason
}

func protectedBy(entry string) Protection  { return Protection{State: Protected, Entry: entry} }
func unprotected(reason string) Protection { return Protection{State: Unprotected, Reason: reason} }
func unknown(reason string) Protection     { return Protection{State: ProtectionUnknown, Reason: reason} }

// garbageCollected is why an image no entry keeps is not protected.
const garbageCollected = "the kubelet's garbage collection would delete it"

// protection decides whether the kubelet's allowlist keeps the image, with the kubelet's own
// matcher and, for present images, their labels.
func (k *Keeper) protection(ctx context.Context, w *Wanted, gcAllowlist *allowlist.Allowlist, allowlistErr error, found *runtimeapi.Image, img WantedImage) Protection {
	switch {
	case w.KubeletConfigMissing != "":
		return unknown("the kubelet config is not there yet: " + w.KubeletConfigMissing)
	case w.Allowlist == nil:
		return unknown("no --kubelet-config")
	case w.AllowlistOff:
		return unprotected("the kubelet's ImageGCExclusion feature gate is off")
	case w.Allowlist.Empty():
		return unprotected("the kubelet's allowlist is empty")
	case allowlistErr != nil:
		return unknown(allowlistErr.Error())
	}
	if found == nil {
		if entry := w.AllowlistEntry(img); entry != "" {
			return protectedBy(entry)
		}
		if w.Allowlist.HasSelectors() {
			return unknown("not present, and the allowlist has label selectors")
		}
		return unprotected(garbageCollected)
	}
	statusCtx, cancel := context.WithTimeout(ctx, k.opts.ListTimeout)
	defer cancel()
	entry, err := gcAllowlist.Excludes(statusCtx, found.Id, "", found.RepoTags, found.RepoDigests)
	switch {
	case entry != "":
		return protectedBy(entry)
	case errors.Is(err, allowlist.ErrUnknownInfoFormat):
		// As in the kubelet: the runtime's labels are unreadable, so selectors match nothing.
		return unprotected("the runtime reports labels in a format the kubelet cannot read, so selectors match nothing")
	case err != nil:
		return unknown(err.Error())
	}
	return unprotected(garbageCollected)
}

// pullAll pulls the due images with PullConcurrency workers and waits for all of them: a pass
// of --once, status or a test, when Run's workers are not there.
func (k *Keeper) pullAll(ctx context.Context, svc ImageService, due []*ImageState) {
	jobs := make(chan *ImageState)
	var wg sync.WaitGroup
	for i := 0; i < max(1, k.opts.PullConcurrency); i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for state := range jobs {
				k.pull(ctx, svc, state)
			}
		}()
	}
	for _, state := range due {
		select {
		case jobs <- state:
		case <-ctx.Done():
		}
	}
	close(jobs)
	wg.Wait()
	k.mu.Lock()
	for _, state := range due {
		state.pulling = false
	}
	k.mu.Unlock()
}

// worker pulls queued images until ctx is done. Run starts PullConcurrency of them, so that a
// pass, a reload or a status request never waits for a pull, and the number of goroutines does
// not grow with the number of wanted images.
func (k *Keeper) worker(ctx context.Context) {
	for {
		k.mu.Lock()
		var job pullJob
		ok := len(k.queue) > 0
		if ok {
			job, k.queue = k.queue[0], k.queue[1:]
		}
		more := len(k.queue) > 0
		k.mu.Unlock()
		if !ok {
			select {
			case <-ctx.Done():
				return
			case <-k.wake:
			}
			continue
		}
		if more {
			signal(k.wake) // another worker takes the next one
		}
		k.pull(ctx, job.svc, job.state)
		k.mu.Lock()
		job.state.pulling = false
		k.mu.Unlock()
		k.updatePresentMetric()
		signal(k.pulled)
		signal(k.updated)
	}
}

// signal leaves a token in a one-token channel without blocking.
func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

func (k *Keeper) pull(ctx context.Context, svc ImageService, state *ImageState) {
	logger := klog.FromContext(ctx)
	k.mu.Lock()
	ref := state.Reference
	k.mu.Unlock()

	pullCtx, cancel := context.WithTimeout(ctx, k.opts.PullTimeout)
	defer cancel()
	start := time.Now()
	logger.V(2).Info("Pulling missing image", "image", ref)
	var auth *runtimeapi.AuthConfig
	if k.opts.Credentials != nil {
		auth = k.opts.Credentials.For(ref)
	}
	imageRef, err := svc.PullImage(pullCtx, &runtimeapi.ImageSpec{Image: ref}, auth, nil)
	elapsed := time.Since(start)

	k.mu.Lock()
	defer k.mu.Unlock()
	if ctx.Err() != nil {
		return // shutting down: not a registry failure
	}
	if err != nil {
		state.Failures++
		state.LastError = err.Error()
		delay := k.backoff(state.Failures)
		state.NextAttempt = time.Now().Add(delay)
		k.metrics.observePull("failure", elapsed)
		logger.Info("Failed to pull image; backing off", "image", ref, "failures", state.Failures, "retryIn", delay.Round(time.Millisecond), "err", err)
		return
	}
	state.Present, state.ImageID = true, imageRef
	state.LastPull, state.LastError, state.Failures, state.NextAttempt = time.Now(), "", 0, time.Time{}
	k.metrics.observePull("success", elapsed)
	logger.Info("Pulled image", "image", ref, "imageRef", imageRef, "duration", elapsed.Round(time.Millisecond))
}

// backoff is BackoffBase doubled per failure, capped at BackoffMax, with the upper half jittered
// so that many nodes do not retry in step. The caller holds mu (for rng).
func (k *Keeper) backoff(failures int) time.Duration {
	d := k.opts.BackoffBase
	for i := 1; i < failures && d < k.opts.BackoffMax; i++ {
		d *= 2
	}
	d = min(d, k.opts.BackoffMax)
	half := d / 2
	return half + time.Duration(k.rng.Int64N(int64(half)+1))
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
	for _, state := range k.states {
		if !state.Present && !state.NextAttempt.IsZero() && state.NextAttempt.Before(next) {
			next = state.NextAttempt
		}
	}
	return max(next.Sub(now), 10*time.Millisecond)
}

func (k *Keeper) updatePresentMetric() {
	k.mu.Lock()
	defer k.mu.Unlock()
	n := 0
	for _, state := range k.states {
		if state.Present {
			n++
		}
	}
	k.metrics.present.Set(float64(n))
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

// Healthy reports whether the process should keep running: false once the runtime has been
// unreachable for longer than Options.UnhealthyAfter.
func (k *Keeper) Healthy(now time.Time) (bool, string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.opts.UnhealthyAfter > 0 && !k.runtimeDownSince.IsZero() && now.Sub(k.runtimeDownSince) > k.opts.UnhealthyAfter {
		return false, fmt.Sprintf("container runtime unreachable for %v (more than %v): %s", now.Sub(k.runtimeDownSince).Round(time.Second), k.opts.UnhealthyAfter, k.status.RuntimeError)
	}
	return true, "ok"
}
