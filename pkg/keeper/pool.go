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
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/klog/v2"
)

// pullJob is one queued pull.
type pullJob struct {
	svc   ImageService
	state *ImageState
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
				_ = k.pull(ctx, svc, state)
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
		pulled := k.pull(ctx, job.svc, job.state)
		k.mu.Lock()
		job.state.pulling = false
		k.mu.Unlock()
		if pulled {
			k.updatePresentMetric() // a failure changes nothing it counts
		}
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

// pull pulls one image and records the result in state; it reports whether the image is now
// present. A failure backs the image off to a retry slot (retryAt): the loop wakes once per
// slot, not once per failing image.
func (k *Keeper) pull(ctx context.Context, svc ImageService, state *ImageState) bool {
	logger := klog.FromContext(ctx)
	k.mu.Lock()
	ref := state.Reference
	if why := k.registryBlocked(ref, time.Now()); why != "" {
		state.LastError = why
		k.mu.Unlock()
		return false
	}
	k.mu.Unlock()

	// A cluster's pull slot first: waiting for one is not part of the pull's time or timeout.
	done, err := k.takeSlot(ctx)
	if err != nil {
		return false // shutting down
	}
	defer done()
	pullCtx, cancel := context.WithTimeout(ctx, k.opts.PullTimeout)
	defer cancel()
	start := time.Now()
	logger.V(2).Info("Pulling missing image", "image", ref)
	var auth *runtimeapi.AuthConfig
	if k.opts.Credentials != nil {
		auth = k.opts.Credentials.For(pullCtx, ref)
	}
	imageRef, err := svc.PullImage(pullCtx, &runtimeapi.ImageSpec{Image: ref}, auth, nil)
	elapsed := time.Since(start)

	k.mu.Lock()
	defer k.mu.Unlock()
	if ctx.Err() != nil {
		if rs := k.registries[registryOf(ref)]; rs != nil {
			rs.probing = false
		}
		return false // shutting down: not a registry failure
	}
	k.registryResult(ref, err, time.Now())
	if err != nil {
		state.Failures++
		changed := state.LastError != err.Error()
		state.LastError = err.Error()
		delay := k.backoff(state.Failures)
		state.NextAttempt = k.retryAt(time.Now().Add(delay))
		if k.earliestRetry.IsZero() || state.NextAttempt.Before(k.earliestRetry) {
			k.earliestRetry = state.NextAttempt
		}
		k.metrics.observePull("failure", elapsed)
		// A failure is logged when it is new for the image, within a rate: with a registry down
		// and thousands of images, one line per retry would be megabytes a minute. The rest are
		// counted and summed up in a line a minute (logFailureSummary); /status has every one.
		if changed && k.failureLog.Allow() {
			logger.Info("Failed to pull image; backing off", "image", ref, "failures", state.Failures, "retryIn", time.Until(state.NextAttempt).Round(time.Second), "err", err)
		} else {
			k.unloggedFailures++
			logger.V(4).Info("Failed to pull image; backing off", "image", ref, "failures", state.Failures, "err", err)
		}
		return false
	}
	state.Present, state.ImageID, state.PulledWithLogin = true, imageRef, auth != nil
	state.LastPull, state.LastError, state.Failures, state.NextAttempt = time.Now(), "", 0, time.Time{}
	k.metrics.observePull("success", elapsed)
	logger.Info("Pulled image", "image", ref, "imageRef", imageRef, "duration", elapsed.Round(time.Millisecond))
	return true
}

// maxRetrySlot is the coarsest granularity of retries: a retry is due at the end of the slot its
// backoff ends in, so that the images failing in one slot are retried by one pass. The slot is
// BackoffBase up to this (1 s by default): a retry comes at most one slot after its backoff.
const maxRetrySlot = time.Second

func (k *Keeper) retryAt(t time.Time) time.Time {
	slot := min(k.opts.BackoffBase, maxRetrySlot)
	if slot <= 0 {
		return t
	}
	if r := t.Truncate(slot); !r.Equal(t) {
		return r.Add(slot)
	}
	return t
}

// failureLogEvery is how often logFailureSummary sums up the failed pulls not logged one by one.
const failureLogEvery = time.Minute

// logFailureSummary logs, at most once every failureLogEvery, how many failed pulls were not
// logged one by one since the last summary, and how many images are failing. The caller holds mu.
func (k *Keeper) logFailureSummary(logger klog.Logger, now time.Time) {
	if k.unloggedFailures == 0 || now.Sub(k.lastFailureSummary) < failureLogEvery {
		return
	}
	failing := 0
	for _, state := range k.states {
		if !state.Present && state.Failures > 0 {
			failing++
		}
	}
	logger.Info("Failed pulls not logged one by one (image-keeper status lists every image's last error)", "failedPulls", k.unloggedFailures, "since", k.lastFailureSummary.Round(time.Second), "failingImages", failing)
	k.unloggedFailures, k.lastFailureSummary = 0, now
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
