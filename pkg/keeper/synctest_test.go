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

// The tests here are about time: backoff, pull timeouts, liveness after the runtime has been
// away, the loop's schedule. They run in testing/synctest bubbles, where time is a fake clock
// that advances only when every goroutine of the bubble is blocked, so the exact boundaries can
// be checked (one tick before, at) without sleeping or flaking on a loaded machine.

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/klog/v2"
	"k8s.io/klog/v2/textlogger"
)

// inProcess is the fake runtime of fakecri_test.go called directly instead of over gRPC: in a
// bubble, a goroutine blocked on a socket is not durably blocked and the clock would never
// advance. down is the runtime gone (what gRPC returns then: Unavailable).
type inProcess struct {
	*imageServer
	down atomic.Bool
}

func newInProcess() *inProcess {
	return &inProcess{imageServer: &imageServer{images: map[string]*runtimeapi.Image{}, pulls: map[string]int{}}}
}

func (p *inProcess) connect(context.Context) (ImageService, error) { return p, nil }

func (p *inProcess) unavailable() error {
	return status.Error(codes.Unavailable, `connection error: desc = "transport: Error while dialing: dial unix /run/containerd/containerd.sock: connect: no such file or directory"`)
}

func (p *inProcess) ListImages(ctx context.Context, filter *runtimeapi.ImageFilter) ([]*runtimeapi.Image, error) {
	if p.down.Load() {
		return nil, p.unavailable()
	}
	resp, err := p.imageServer.ListImages(ctx, &runtimeapi.ListImagesRequest{Filter: filter})
	return resp.GetImages(), err
}

func (p *inProcess) ImageStatus(ctx context.Context, image *runtimeapi.ImageSpec, verbose bool) (*runtimeapi.ImageStatusResponse, error) {
	if p.down.Load() {
		return nil, p.unavailable()
	}
	return p.imageServer.ImageStatus(ctx, &runtimeapi.ImageStatusRequest{Image: image, Verbose: verbose})
}

func (p *inProcess) PullImage(ctx context.Context, image *runtimeapi.ImageSpec, auth *runtimeapi.AuthConfig, _ *runtimeapi.PodSandboxConfig) (string, error) {
	if p.down.Load() {
		return "", p.unavailable()
	}
	resp, err := p.imageServer.PullImage(ctx, &runtimeapi.PullImageRequest{Image: image, Auth: auth})
	return resp.GetImageRef(), err
}

// startRun runs k.Run with no reloads until stop, which waits for it to return.
func startRun(k *Keeper) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		k.Run(ctx, nil, nil)
	}()
	return func() { cancel(); <-done }
}

func newSyncKeeper(t *testing.T, p *inProcess, opts Options, refs ...string) *Keeper {
	t.Helper()
	return New(opts, wantedImages(t, refs...), p.connect, NewMetrics())
}

// A failed pull is retried at NextAttempt and not one tick before; the wait doubles per failure
// within [d/2, d] (jitter over the upper half) plus at most one retry slot (BackoffBase here),
// is capped at BackoffMax, and resets when a pull succeeds.
func TestBackoffGrowsAndResets(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		rt := newInProcess()
		rt.pullErr = map[string]bool{"*": true}
		opts := testOptions()
		const ref = "example.com/app:1"
		k := newSyncKeeper(t, rt, opts, ref)
		for i := 0; i < 6; i++ {
			if err := k.Reconcile(ctx); err != nil {
				t.Fatal(err)
			}
			s := k.Status().Images[0]
			if s.Failures != i+1 || s.Present || !strings.Contains(s.LastError, "connection refused") {
				t.Fatalf("after failure %d: %+v", i+1, s)
			}
			wait := time.Until(s.NextAttempt)
			want := min(opts.BackoffBase<<i, opts.BackoffMax)
			if wait < want/2 || wait > want+opts.BackoffBase || s.NextAttempt.UnixNano()%int64(opts.BackoffBase) != 0 {
				t.Errorf("wait after failure %d = %v (retry at %v); want within [%v, %v], at a multiple of the slot %v", i+1, wait, s.NextAttempt, want/2, want+opts.BackoffBase, opts.BackoffBase)
			}
			// One tick before the retry is due, a pass does not pull.
			time.Sleep(wait - time.Nanosecond)
			before := rt.pullCount(ref)
			if err := k.Reconcile(ctx); err != nil {
				t.Fatal(err)
			}
			if rt.pullCount(ref) != before {
				t.Fatalf("failure %d: pulled again %v before the backoff ran out", i+1, time.Nanosecond)
			}
			time.Sleep(time.Nanosecond) // now due: the next iteration's pass pulls
		}
		if ready, reason := k.Status().Ready(); ready || !strings.Contains(reason, "connection refused") {
			t.Errorf("Ready() = %v, %q; want not ready, with the pull error", ready, reason)
		}
		// The registry comes back: the due pull succeeds and the backoff resets.
		rt.mu.Lock()
		rt.pullErr = nil
		rt.mu.Unlock()
		if err := k.Reconcile(ctx); err != nil {
			t.Fatal(err)
		}
		if s := k.Status().Images[0]; !s.Present || s.Failures != 0 || s.LastError != "" || !s.NextAttempt.IsZero() {
			t.Errorf("after recovery: %+v", s)
		}
		if got := testutil.ToFloat64(k.metrics.pulls.WithLabelValues("failure")); got != 6 {
			t.Errorf("image_keeper_pulls_total{result=failure} = %v; want 6", got)
		}
	})
}

// A pull that hangs ends the pass after PullTimeout, exactly, as a failure.
func TestSlowPullIsBoundedByTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rt := newInProcess()
		rt.pullDelay = time.Hour
		opts := testOptions()
		opts.PullTimeout = 100 * time.Millisecond
		k := newSyncKeeper(t, rt, opts, "example.com/slow:1")
		start := time.Now()
		if err := k.Reconcile(context.Background()); err != nil {
			t.Fatal(err)
		}
		if took := time.Since(start); took != opts.PullTimeout {
			t.Errorf("the pass took %v with a hanging pull; want PullTimeout, %v", took, opts.PullTimeout)
		}
		if s := k.Status().Images[0]; s.Present || s.Failures != 1 || !strings.Contains(s.LastError, "deadline exceeded") {
			t.Errorf("after a timed-out pull: %+v", s)
		}
	})
}

// /healthz turns 503 once the runtime has been unreachable for longer than UnhealthyAfter (not
// at it), and 200 again with the first pass that reaches it; /readyz is about images, /healthz
// about the process, so a registry that stays away never fails it.
func TestHealthzFailsWhenRuntimeStaysAway(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		rt := newInProcess()
		rt.pullErr = map[string]bool{"*": true} // the registry is away throughout
		opts := testOptions()
		opts.UnhealthyAfter = 5 * time.Minute
		k := newSyncKeeper(t, rt, opts, "example.com/app:1")
		h := k.Handler(true)
		healthz := func() int {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/healthz", nil))
			return rec.Code
		}
		_ = k.Reconcile(ctx)
		time.Sleep(time.Hour)
		if code := healthz(); code != http.StatusOK {
			t.Fatalf("healthz %d after an hour of registry failures; want 200", code)
		}

		rt.down.Store(true)
		_ = k.Reconcile(ctx) // the first failure starts the clock
		time.Sleep(opts.UnhealthyAfter)
		_ = k.Reconcile(ctx)
		if code := healthz(); code != http.StatusOK {
			t.Fatalf("healthz %d after exactly UnhealthyAfter; want 200 until it is exceeded", code)
		}
		time.Sleep(time.Nanosecond)
		if code := healthz(); code != http.StatusServiceUnavailable {
			t.Fatalf("healthz %d once the runtime was away for longer than UnhealthyAfter; want 503", code)
		}
		rt.down.Store(false)
		if err := k.Reconcile(ctx); err != nil {
			t.Fatal(err)
		}
		if code := healthz(); code != http.StatusOK {
			t.Fatalf("healthz %d after the runtime came back; want 200", code)
		}
	})
}

// Under Run, a failed pull is retried when its backoff runs out, not at the next Interval; an
// image removed behind image-keeper's back is restored at the next Interval, not before.
func TestRunSchedule(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rt := newInProcess()
		rt.pullErr = map[string]bool{"example.com/flaky:1": true}
		rt.add("example.com/kept:1")
		opts := testOptions() // Interval an hour; backoff 40 ms .. 320 ms
		k := newSyncKeeper(t, rt, opts, "example.com/flaky:1", "example.com/kept:1")
		stop := startRun(k)
		synctest.Wait()
		if n := rt.pullCount("example.com/flaky:1"); n != 1 {
			t.Fatalf("%d pulls of the missing image at start; want 1", n)
		}
		// Backoffs 20-40, 40-80, 80-160, 160-320 ms, each up to a 40 ms slot later: four retries
		// within 800 ms of fake time.
		time.Sleep(800 * time.Millisecond)
		synctest.Wait()
		if n := rt.pullCount("example.com/flaky:1"); n < 5 {
			t.Errorf("%d pulls in 800 ms with a 40-320 ms backoff; retries wait for the interval", n)
		}

		rt.remove("example.com/kept:1")
		start := time.Now()
		for rt.pullCount("example.com/kept:1") == 0 && time.Since(start) < 2*opts.Interval {
			time.Sleep(time.Second)
			synctest.Wait()
		}
		// Passes come with the flaky image's retries too (every ≤ 320 ms), so the removal is
		// seen within a backoff of its happening, at the latest one Interval later.
		if took := time.Since(start); rt.pullCount("example.com/kept:1") != 1 || took > opts.Interval {
			t.Errorf("removed image pulled %d times, %v after its removal; want once within Interval (%v)", rt.pullCount("example.com/kept:1"), took, opts.Interval)
		}
		stop()
	})
}

// Only the interval wakes Run when nothing is failing: no pass before it, one at it.
func TestRunWaitsForInterval(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rt := newInProcess()
		rt.add("example.com/kept:1")
		opts := testOptions()
		opts.Interval = 10 * time.Minute
		k := newSyncKeeper(t, rt, opts, "example.com/kept:1")
		stop := startRun(k)
		synctest.Wait()
		first := k.Status().LastReconcile
		rt.remove("example.com/kept:1")
		time.Sleep(opts.Interval - time.Nanosecond)
		synctest.Wait()
		if n := rt.pullCount("example.com/kept:1"); n != 0 || !k.Status().LastReconcile.Equal(first) {
			t.Errorf("a pass before the interval ran out (pulls %d)", n)
		}
		time.Sleep(time.Nanosecond)
		synctest.Wait()
		if n := rt.pullCount("example.com/kept:1"); n != 1 {
			t.Errorf("%d pulls at the interval; want 1", n)
		}
		stop()
	})
}

// Updated has a token after each pass and each pull under Run, so that the node status publisher
// sees a change when it happens rather than at its next tick.
func TestUpdatedAfterPassAndPull(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rt := newInProcess()
		rt.pullDelay = time.Second
		k := newSyncKeeper(t, rt, testOptions(), "example.com/app:1")
		select {
		case <-k.Updated():
			t.Fatal("a token before any pass")
		default:
		}
		stop := startRun(k)
		synctest.Wait()
		<-k.Updated() // the first pass
		if k.Status().Images[0].Present {
			t.Fatal("present before the pull ended")
		}
		time.Sleep(time.Second)
		synctest.Wait()
		select {
		case <-k.Updated():
		default:
			t.Fatal("no token when the pull ended")
		}
		if !k.Status().Images[0].Present {
			t.Error("the token came before the pulled image was in Status")
		}
		stop()
	})
}

// With many images failing, a failure is logged one by one only when it is new for its image
// and within the rate (a burst of 50, then 5 a second); the others are summed up in one line a
// minute. With the registry down and 20,000 images, one line per retry was 15 MB a minute.
func TestFailureLogIsBounded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var buf bytes.Buffer
		ctx := klog.NewContext(context.Background(), textlogger.NewLogger(textlogger.NewConfig(textlogger.Output(&buf))))
		rt := newInProcess()
		rt.pullErr = map[string]bool{"*": true}
		// The image's own failure: a registry that cannot be reached is backed off as a whole
		// (TestRegistryBackoff).
		rt.pullErrFormat = `failed to pull and unpack image %q: failed to resolve reference: not found`
		refs := make([]string, 200)
		for i := range refs {
			refs[i] = fmt.Sprintf("example.com/app-%d:1", i)
		}
		opts := testOptions()
		opts.BackoffMax = 40 * time.Millisecond
		k := newSyncKeeper(t, rt, opts, refs...)
		if err := k.Reconcile(ctx); err != nil {
			t.Fatal(err)
		}
		if n := strings.Count(buf.String(), `"Failed to pull image; backing off"`); n != 50 {
			t.Errorf("%d failures logged for 200 first failures at once; want the burst, 50", n)
		}
		// The same errors again, a minute later: none one by one, one summary of what was not.
		buf.Reset()
		time.Sleep(time.Minute)
		if err := k.Reconcile(ctx); err != nil {
			t.Fatal(err)
		}
		out := buf.String()
		if n := strings.Count(out, `"Failed to pull image; backing off"`); n != 0 {
			t.Errorf("%d repeated failures logged one by one; want none", n)
		}
		if !strings.Contains(out, `"Failed pulls not logged one by one`) || !strings.Contains(out, "failedPulls=150") || !strings.Contains(out, "failingImages=200") {
			t.Errorf("no summary of the 150 failures not logged:\n%s", out)
		}
	})
}

// rt2Down is a runtime whose registry refuses connections.
func rt2Down() *inProcess {
	rt := newInProcess()
	rt.pullErr = map[string]bool{"*": true}
	return rt
}

// A registry that cannot be reached is backed off as a whole: after registryTripAfter images fail
// for a reason of the registry's, its other images are not tried; once the backoff is over one
// image probes it; when it answers again, every image is pulled at the next pass. A registry
// whose images fail for their own reasons (not found) is not backed off.
func TestRegistryBackoff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		rt := newInProcess()
		rt.pullErr = map[string]bool{"*": true} // connection refused
		refs := make([]string, 200)
		for i := range refs {
			refs[i] = fmt.Sprintf("example.com/app-%d:1", i)
		}
		opts := testOptions()
		opts.PullConcurrency = 1
		k := newSyncKeeper(t, rt, opts, refs...)
		total := func() int {
			n := 0
			for _, ref := range refs {
				n += rt.pullCount(ref)
			}
			return n
		}
		if err := k.Reconcile(ctx); err != nil {
			t.Fatal(err)
		}
		if n := total(); n != registryTripAfter {
			t.Fatalf("%d pulls from a registry that refuses connections; want %d, then none", n, registryTripAfter)
		}
		var notTried int
		for _, s := range k.Status().Images {
			if strings.HasPrefix(s.LastError, "not tried: registry example.com failed for 3 images in a row") {
				notTried++
			}
		}
		if notTried != 200-registryTripAfter {
			t.Errorf("%d images say they were not tried; want %d", notTried, 200-registryTripAfter)
		}
		// The loop sleeps until the registry's backoff is over, then one image probes it.
		if d := k.NextDelay(); d > opts.BackoffBase+opts.BackoffBase {
			t.Errorf("NextDelay = %v; want the registry's backoff, at most %v", d, 2*opts.BackoffBase)
		}
		time.Sleep(opts.BackoffMax + opts.BackoffBase)
		if err := k.Reconcile(ctx); err != nil {
			t.Fatal(err)
		}
		if n := total(); n != registryTripAfter+1 {
			t.Errorf("%d pulls after the backoff; want one probe (%d)", n, registryTripAfter+1)
		}
		// Back: the probe succeeds and the next pass pulls the rest.
		rt.pullErr = nil
		time.Sleep(time.Minute)
		if err := k.Reconcile(ctx); err != nil {
			t.Fatal(err)
		}
		if err := k.Reconcile(ctx); err != nil {
			t.Fatal(err)
		}
		if ready, reason := k.Status().Ready(); !ready {
			t.Errorf("not every image pulled once the registry answered: %s", reason)
		}

		// Tripped again, then the images come by another way (the kubelet pulled them): the
		// registry is forgotten, and the loop sleeps for the interval, not 10 ms at a time.
		k3 := newSyncKeeper(t, rt2Down(), opts, refs[:5]...)
		if err := k3.Reconcile(ctx); err != nil {
			t.Fatal(err)
		}
		if len(k3.registries) != 1 {
			t.Fatalf("registries %v; want example.com tripped", k3.registries)
		}
		// A timed-out probe neither releases the registry nor trips it twice per round.
		time.Sleep(opts.BackoffMax + opts.BackoffBase)
		k3.mu.Lock()
		k3.registryBlocked("example.com/app-0:1", time.Now()) // the probe
		trips := k3.registries["example.com"].trips
		k3.registryResult("example.com/app-0:1", context.DeadlineExceeded, time.Now())
		k3.registryResult("example.com/app-1:1", status.Error(codes.Unknown, "dial tcp: connect: connection refused"), time.Now()) // in flight
		rs := k3.registries["example.com"]
		k3.mu.Unlock()
		if rs == nil || rs.trips != trips+1 || !rs.until.After(time.Now()) {
			t.Errorf("after a timed-out probe: %+v (trips were %d); want backing off, one more trip", rs, trips)
		}
		p3, _ := k3.connect(ctx)
		for _, ref := range refs[:5] {
			p3.(*inProcess).add(ref) // pulled by the kubelet
		}
		if err := k3.Reconcile(ctx); err != nil {
			t.Fatal(err)
		}
		if d := k3.NextDelay(); d < opts.Interval/2 || len(k3.registries) != 0 {
			t.Errorf("NextDelay = %v, registries %v once every image is present; want the interval, none", d, k3.registries)
		}

		// A repository named like a registry's error is still the image's failure.
		rtName := newInProcess()
		rtName.pullErr = map[string]bool{"*": true}
		rtName.pullErrFormat = `failed to pull and unpack image %q: not found`
		named := []string{"example.com/toomanyrequests-a:1", "example.com/toomanyrequests-b:1", "example.com/toomanyrequests-c:1", "example.com/toomanyrequests-d:1"}
		k4 := newSyncKeeper(t, rtName, opts, named...)
		if err := k4.Reconcile(ctx); err != nil {
			t.Fatal(err)
		}
		if n := rtName.pullCount(named[3]); n != 1 || len(k4.registries) != 0 {
			t.Errorf("images named toomanyrequests-*: %d pulls of the fourth, registries %v; want tried, none backing off", n, k4.registries)
		}

		// Not found is the image's failure: every image is tried.
		rt2 := newInProcess()
		rt2.pullErr = map[string]bool{"*": true}
		rt2.pullErrFormat = `failed to pull and unpack image %q: not found`
		k2 := newSyncKeeper(t, rt2, opts, refs[:10]...)
		if err := k2.Reconcile(ctx); err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, ref := range refs[:10] {
			n += rt2.pullCount(ref)
		}
		if n != 10 {
			t.Errorf("%d pulls of 10 images a registry says it does not have; want 10", n)
		}
	})
}
