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
	"time"
)

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
	if s.ConfigError != "" {
		// The previous configuration still keeps its images, but what the operator asked for
		// last is not being kept: a rollout of a broken config must not look done.
		return false, "config reload failed, the previous configuration is in force: " + s.ConfigError
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
