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

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/kubelet-imagecache/kubelet-imagecache/pkg/kubelet/images/allowlist"
)

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

// HeldByImageVolume starts the Entry of an image a holder pod mounts: "image volume of <pod>",
// where the patched kubelet's says which imageGCExclude entry keeps it.
const HeldByImageVolume = "image volume of "

// garbageCollected is why an image no entry keeps is not protected.
const garbageCollected = "the kubelet's garbage collection would delete it"

// protection decides what keeps the image: the kubelet's allowlist, with the kubelet's own
// matcher and, for present images, their labels; else, in holder mode, the holder pod that
// mounts it.
func (k *Keeper) protection(ctx context.Context, w *Wanted, gcAllowlist *allowlist.Allowlist, allowlistErr error, found *runtimeapi.Image, img WantedImage) Protection {
	p := k.allowlistProtection(ctx, w, gcAllowlist, allowlistErr, found, img)
	if k.opts.Holder == nil || p.State == Protected {
		return p
	}
	// Holder mode: the image volume protects what the allowlist (if any) does not.
	if pod := k.opts.Holder.HeldBy(img.Reference, found.GetId()); pod != "" {
		return protectedBy(HeldByImageVolume + pod)
	}
	if w.Allowlist == nil {
		return unprotected("no running holder pod mounts it yet")
	}
	return p
}

// allowlistProtection is the kubelet allowlist's decision alone.
func (k *Keeper) allowlistProtection(ctx context.Context, w *Wanted, gcAllowlist *allowlist.Allowlist, allowlistErr error, found *runtimeapi.Image, img WantedImage) Protection {
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
