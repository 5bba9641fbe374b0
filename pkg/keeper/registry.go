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
	"fmt"
	"strings"
	"time"
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
	lastErr string
}

// registryWide reports whether a pull error is the registry's rather than the image's: the
// registry cannot be reached, or refuses every pull for now. A missing image, a refused login or
// a pull timeout (a slow, large image) is the image's. The runtime reports these as text only
// (containerd and CRI-O wrap them in gRPC Unknown), so they are matched by the words Go's network
// stack and registries use.
func registryWide(err error) bool {
	msg := strings.ToLower(err.Error())
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
	rs.probing = true
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
	if err == nil || !registryWide(err) {
		delete(k.registries, host) // the registry answered
		return
	}
	rs := k.registries[host]
	if rs == nil {
		rs = &registryState{failing: map[string]bool{}}
		k.registries[host] = rs
	}
	rs.failing[reference] = true
	rs.lastErr = err.Error()
	rs.probing = false
	if len(rs.failing) >= registryTripAfter {
		rs.trips++
		rs.until = k.retryAt(now.Add(k.backoff(rs.trips)))
	}
}

// registryRetry is the earliest time a registry that backs off may be probed, zero when none
// does. The caller holds mu.
func (k *Keeper) registryRetry() time.Time {
	var next time.Time
	for _, rs := range k.registries {
		if !rs.until.IsZero() && !rs.probing && (next.IsZero() || rs.until.Before(next)) {
			next = rs.until
		}
	}
	return next
}
