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

// ImageState is what image-keeper knows of one wanted image: a row of `image-keeper status`.
type ImageState struct {
	Reference string `json:"reference"`
	Source    string `json:"source"`
	Present   bool   `json:"present"`
	ImageID   string `json:"imageID,omitempty"`
	Size      uint64 `json:"size,omitempty"`
	// Protected says whether the kubelet's allowlist keeps the image.
	Protected Protection `json:"protected"`
	LastPull  time.Time  `json:"lastPull,omitzero"`
	LastError string     `json:"lastError,omitempty"`
	// PulledWithLogin says image-keeper pulled the image with registry credentials (since it
	// started): a private image, which the kubelet did not pull.
	PulledWithLogin bool      `json:"pulledWithLogin,omitempty"`
	Failures        int       `json:"failures,omitempty"`
	NextAttempt     time.Time `json:"nextAttempt,omitzero"`

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
	// Holder names the holder in holder mode (Options.Holder), "" otherwise: then the node is
	// warm only once every wanted image is also protected.
	Holder string `json:"holder,omitempty"`
	// HolderPending says what the holder waits for or why it cannot hold the list.
	HolderPending string `json:"holderPending,omitempty"`
	// PullCredentialsPolicy is the kubelet's imagePullCredentialsVerificationPolicy, "" when
	// image-keeper does not read the kubelet config.
	PullCredentialsPolicy string `json:"pullCredentialsPolicy,omitempty"`
	// PreloadedAllowlist is the kubelet's preloadedImagesVerificationAllowlist.
	PreloadedAllowlist []string `json:"preloadedAllowlist,omitempty"`
	// PullSlot says what the node does with the cluster's pull slots (Options.PullSlots):
	// holding one, or waiting for one; "" when neither or without slots.
	PullSlot string `json:"pullSlot,omitempty"`
}

// OpenPrivate lists the present images image-keeper pulled with a login that any pod on the
// node may run without pull secrets: the kubelet did not pull them, so they count as preloaded
// (KEP-2535), which NeverVerify and NeverVerifyPreloadedImages (the default) let every pod use,
// NeverVerifyAllowlistedImages those in its allowlist, and AlwaysVerify none.
func (s Status) OpenPrivate() []string {
	var out []string
	for _, img := range s.Images {
		if !img.Present || !img.PulledWithLogin {
			continue
		}
		switch s.PullCredentialsPolicy {
		case "AlwaysVerify":
			continue
		case "NeverVerifyAllowlistedImages":
			if !inPreloadedAllowlist(s.PreloadedAllowlist, img.Reference) {
				continue
			}
		}
		out = append(out, img.Reference)
	}
	return out
}

// inPreloadedAllowlist reports whether the reference's repository is in the kubelet's
// preloadedImagesVerificationAllowlist: "registry/path" names one repository, "registry/path/*"
// every repository under it.
func inPreloadedAllowlist(allowlist []string, reference string) bool {
	repo := reference
	if i := strings.IndexAny(repo, "@"); i >= 0 {
		repo = repo[:i]
	}
	if i := strings.LastIndex(repo, ":"); i > strings.LastIndex(repo, "/") {
		repo = repo[:i]
	}
	for _, entry := range allowlist {
		if prefix, ok := strings.CutSuffix(entry, "/*"); ok {
			if strings.HasPrefix(repo, prefix+"/") {
				return true
			}
		} else if repo == entry {
			return true
		}
	}
	return false
}

// Unheld lists, in holder mode, the present wanted images that nothing protects yet: neither a
// running holder pod's image volume nor the kubelet's allowlist. Outside holder mode, nil.
func (s Status) Unheld() []string {
	if s.Holder == "" {
		return nil
	}
	var out []string
	for _, img := range s.Images {
		if img.Present && img.Protected.State != Protected {
			out = append(out, img.Reference)
		}
	}
	return out
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
		return false, "the config does not load, the previous configuration is in force: " + s.ConfigError
	}
	if s.LastReconcile.IsZero() {
		return false, "no reconcile pass has reached the runtime yet"
	}
	// The first few missing images, each with its last error: /readyz serves this on the pod IP
	// to every probe, so it stays short whatever the list (image-keeper status has them all).
	var missing []string
	n := 0
	for _, img := range s.Images {
		if img.Present {
			continue
		}
		n++
		if len(missing) < maxListed {
			reason := img.Reference
			if img.LastError != "" {
				reason += " (" + img.LastError + ")"
			}
			missing = append(missing, reason)
		}
	}
	if n > 0 {
		more := ""
		if n > len(missing) {
			more = fmt.Sprintf(" and %d more", n-len(missing))
		}
		return false, fmt.Sprintf("%d of %d wanted images missing: %v%s", n, len(s.Images), missing, more)
	}
	if unheld := s.Unheld(); len(unheld) > 0 {
		return false, HolderNotReady(len(unheld), len(s.Images), unheld, s.Holder, s.HolderPending)
	}
	if s.Holder != "" {
		return true, fmt.Sprintf("all %d wanted images present and protected (holder: %s)", len(s.Images), s.Holder)
	}
	return true, fmt.Sprintf("all %d wanted images present", len(s.Images))
}

// Status returns a copy of the current state, images sorted by reference.
func (k *Keeper) Status() Status {
	var holderMode, holderPending, slot string
	if k.opts.Holder != nil {
		holderMode, holderPending = k.opts.Holder.Mode(), k.opts.Holder.Pending()
	}
	if k.opts.PullSlots != nil {
		slot = k.opts.PullSlots.State()
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	s := k.status
	s.Holder, s.HolderPending, s.PullSlot = holderMode, holderPending, slot
	s.PullCredentialsPolicy, s.PreloadedAllowlist = k.wanted.PullCredentialsPolicy, k.wanted.PreloadedAllowlist
	s.KubeletConfigMissing = k.wanted.KubeletConfigMissing
	s.Images = make([]ImageState, 0, len(k.wanted.Images))
	for _, img := range k.wanted.Images {
		s.Images = append(s.Images, *k.states[img.Reference])
	}
	return s
}

// maxListed bounds the images a not-ready reason names.
const maxListed = 5

// HolderNotReady is the not-ready reason of holder mode: n of total present images unheld,
// the first few named, and what the holder waits for.
func HolderNotReady(n, total int, unheld []string, holder, pending string) string {
	listed, more := unheld, ""
	if len(listed) > maxListed {
		listed, more = listed[:maxListed], fmt.Sprintf(" and %d more", len(unheld)-maxListed)
	}
	reason := fmt.Sprintf("%d of %d wanted images present but not yet held by a running holder pod (%s): %s%s", n, total, holder, strings.Join(listed, ", "), more)
	if pending != "" {
		reason += "; the holder: " + pending
	}
	return reason
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
