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
	"errors"
	"fmt"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	grpcstatus "google.golang.org/grpc/status"
)

// registryTripAfter is how many images of one registry must fail in a row, each for a reason
// that is the registry's (registryWide), before image-keeper stops pulling from it and probes it
// with one pull per backoff instead: with a registry down and thousands of images, retrying each
// on its own clock is thousands of pulls a minute against a registry that answers none.
const registryTripAfter = 3

// registryState is what image-keeper knows of a registry that keeps failing. The caller holds mu.
type registryState struct {
	// failing are the images that failed in a row for a registry-wide reason.
	failing map[string]bool
	// trips counts the backoffs since the registry last answered; until is the end of the current
	// one (zero before the registry trips); probing is set while the one probe pull runs.
	trips   int
	until   time.Time
	probing bool
	// probe is the image that probes the registry while probing is set.
	probe   string
	lastErr string
}

// registryWide reports whether a pull error is the registry's rather than the image's: the
// registry cannot be reached, or refuses every pull for now. A missing image, a refused login or
// a pull timeout (a slow, large image) is the image's. The runtime reports these as text only
// (containerd and CRI-O wrap them in gRPC Unknown), so they are matched by the words Go's network
// stack and registries use.
func registryWide(reference string, err error) bool {
	// The reference is in the message, and a repository may be named "toomanyrequests".
	msg := strings.ToLower(strings.ReplaceAll(err.Error(), reference, ""))
	for _, s := range []string{
		"connection refused", "no such host", "i/o timeout", "network is unreachable", "no route to host",
		"connection reset by peer", "tls handshake timeout", "server misbehaving",
		"500 internal server error", "502 bad gateway", "503 service unavailable", "504 gateway timeout",
		"429 too many requests", "toomanyrequests",
	} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}

// registryOf is the registry host of a normalized reference ("docker.io/library/nginx:1.27").
func registryOf(reference string) string {
	host, _, _ := strings.Cut(reference, "/")
	return host
}

// registryBlocked says why an image is not to be pulled now, "" when it may be: its registry is
// backing off, or is being probed by another image. When the backoff is over, the first image
// asked about becomes the probe. The caller holds mu.
func (k *Keeper) registryBlocked(reference string, now time.Time) string {
	rs := k.registries[registryOf(reference)]
	if rs == nil || rs.until.IsZero() {
		return ""
	}
	if rs.probing {
		return fmt.Sprintf("not tried: registry %s failed for %d images in a row; another image is probing it (last error: %s)", registryOf(reference), len(rs.failing), rs.lastErr)
	}
	if now.Before(rs.until) {
		return fmt.Sprintf("not tried: registry %s failed for %d images in a row; it is probed again at %s (last error: %s)", registryOf(reference), len(rs.failing), rs.until.UTC().Format(time.RFC3339), rs.lastErr)
	}
	rs.probing, rs.probe = true, reference
	return ""
}

// registryBackingOff reports whether the image's registry is backing off or being probed, so
// that a pass does not queue its images. The caller holds mu.
func (k *Keeper) registryBackingOff(reference string, now time.Time) bool {
	rs := k.registries[registryOf(reference)]
	return rs != nil && !rs.until.IsZero() && (rs.probing || now.Before(rs.until))
}

// registryResult records a pull's outcome for its registry. The caller holds mu.
func (k *Keeper) registryResult(reference string, err error, now time.Time) {
	host := registryOf(reference)
	rs := k.registries[host]
	wasProbe := rs != nil && rs.probing && rs.probe == reference
	if wasProbe {
		rs.probing, rs.probe = false, ""
	}
	timedOut := err != nil && (errors.Is(err, context.DeadlineExceeded) || grpcstatus.Code(err) == codes.DeadlineExceeded)
	switch {
	case timedOut:
		// No answer: a registry that accepts connections and then hangs. It neither trips the
		// registry nor releases it; a probe that timed out counts as a failed probe.
		if !wasProbe {
			return
		}
	case err == nil || !registryWide(reference, err):
		delete(k.registries, host) // the registry answered
		return
	}
	if rs == nil {
		rs = &registryState{failing: map[string]bool{}}
		k.registries[host] = rs
	}
	rs.failing[reference] = true
	rs.lastErr = err.Error()
	// One trip per round: the failures of pulls that were in flight when it tripped do not
	// double the backoff again; the probe's does.
	if len(rs.failing) >= registryTripAfter && (wasProbe || !now.Before(rs.until)) {
		rs.trips++
		rs.until = k.retryAt(now.Add(k.backoff(rs.trips)))
	}
}

// pruneRegistries forgets the registries none of whose wanted images is missing: the kubelet
// pulled them, or they are no longer wanted. The caller holds mu.
func (k *Keeper) pruneRegistries() {
	if len(k.registries) == 0 {
		return
	}
	missing := map[string]bool{}
	for ref, state := range k.states {
		if !state.Present {
			missing[registryOf(ref)] = true
		}
	}
	for host := range k.registries {
		if !missing[host] {
			delete(k.registries, host)
		}
	}
}

// registryRetry is the earliest end of a registry's backoff still to come, zero when none: a
// backoff that has ended is the pass's business (its images are due, or have their own retries).
// The caller holds mu.
func (k *Keeper) registryRetry(now time.Time) time.Time {
	var next time.Time
	for _, rs := range k.registries {
		if !rs.probing && rs.until.After(now) && (next.IsZero() || rs.until.Before(next)) {
			next = rs.until
		}
	}
	return next
}
