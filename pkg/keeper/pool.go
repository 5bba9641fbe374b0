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
		auth = k.opts.Credentials.For(pullCtx, ref)
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
