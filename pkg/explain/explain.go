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

// Package explain says, for each image on a node (or each reference given), what the patched
// kubelet's image garbage collection decides for it and why: in use, pinned by the runtime, kept
// by which allowlist entry (and by which name or labels), or collectable. It decides with the
// kubelet's own matcher (pkg/kubelet/images/allowlist), in the kubelet's order: images in use
// and pinned images are never candidates; the allowlist filters the rest.
package explain

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/kubelet-imagecache/kubelet-imagecache/pkg/kubelet/images/allowlist"
)

// Decision is what the kubelet's image garbage collection does with an image.
type Decision string

const (
	// InUse images belong to a container, running or exited; the kubelet never deletes them.
	InUse Decision = "in use"
	// HeldByImageVolume images are mounted by a container as image volumes (image-keeper's
	// holder mode); the kubelet counts them in use too.
	HeldByImageVolume Decision = "held by image volume"
	// Pinned images are pinned by the runtime (containerd pins its sandbox image).
	Pinned Decision = "pinned"
	// Kept images are kept by an allowlist entry.
	Kept Decision = "kept"
	// LabelsUnknown images may be kept by a selector, but their labels could not be read; the
	// kubelet keeps such an image for the pass and reads its labels again on the next.
	LabelsUnknown Decision = "labels unknown"
	// Collectable images are deleted when the kubelet frees space, and by imageMaximumGCAge.
	Collectable Decision = "collectable"
)

// Image is an image on the node, as the runtime reports it over CRI.
type Image struct {
	ID          string   `json:"id,omitempty"`
	RepoTags    []string `json:"repoTags,omitempty"`
	RepoDigests []string `json:"repoDigests,omitempty"`
	// Size is in bytes; 0 when not known (references given on stdin).
	Size   int64 `json:"size,omitempty"`
	Pinned bool  `json:"pinned,omitempty"`
	InUse  bool  `json:"inUse,omitempty"`
	// ImageVolume is set when a container mounts the image as an image volume.
	ImageVolume bool `json:"imageVolume,omitempty"`
	// Labels are the image config's labels, read only when the allowlist has selectors.
	Labels map[string]string `json:"labels,omitempty"`
	// LabelsError says why Labels could not be read.
	LabelsError string `json:"labelsError,omitempty"`
}

// Name is the image's first repo tag, else its first repo digest, else its ID.
func (img Image) Name() string {
	switch {
	case len(img.RepoTags) > 0:
		return img.RepoTags[0]
	case len(img.RepoDigests) > 0:
		return img.RepoDigests[0]
	}
	return img.ID
}

// Explanation is the decision for one image.
type Explanation struct {
	Image
	Decision Decision `json:"decision"`
	// Entry is the allowlist entry that keeps the image (also reported for images in use or
	// pinned: it keeps them once they are not), and Field the config field it is in.
	Entry string `json:"entry,omitempty"`
	Field string `json:"field,omitempty"`
	// MatchedBy is the image name, ID or labels the entry matched.
	MatchedBy string `json:"matchedBy,omitempty"`
	// AtRisk is set on kept images when the kept bytes exceed imageGCExcludeBudgetPercent: the
	// kubelet then collects some of them, least recently used first.
	AtRisk bool `json:"atRisk,omitempty"`
	// OverBudget is set on the kept images that fall beyond the budget in the kubelet's ranking
	// when none of the kept images has been used since the kubelet started (after a restart,
	// the case of every pre-pulled image): ranked by the position of the first entry that keeps
	// them, then by image ID, these are the ones the kubelet collects. An image used since then
	// ranks first and may push others over.
	OverBudget bool `json:"overBudget,omitempty"`
}

// EntryUse counts the images an allowlist entry matches, by itself (an image two entries match
// counts for both).
type EntryUse struct {
	Entry  string `json:"entry"`
	Field  string `json:"field"`
	Images int    `json:"images"`
}

// Budget is imageGCExcludeBudgetPercent applied to the image filesystem.
type Budget struct {
	Percent int32 `json:"percent"`
	// CapacityBytes is the image filesystem's size; 0 when not known (the budget is then not
	// evaluated, as the kubelet does not apply it in a pass where it cannot read the capacity).
	CapacityBytes int64 `json:"capacityBytes"`
	// Bytes is what the unused kept images may hold: CapacityBytes × Percent / 100.
	Bytes int64 `json:"bytes"`
	// KeptBytes is what they hold.
	KeptBytes int64 `json:"keptBytes"`
	// AtLeast is the fewest kept images the kubelet must collect to get within Bytes, in any
	// ranking.
	AtLeast int `json:"atLeast"`
	// Collects is how many kept images are OverBudget: what the kubelet collects when none of
	// them has been used since it started. Which ones otherwise depends on when each was last
	// used, which only the kubelet knows (in memory).
	Collects int `json:"collects"`
}

// Over reports whether the kept images exceed the budget.
func (b *Budget) Over() bool { return b != nil && b.CapacityBytes > 0 && b.KeptBytes > b.Bytes }

// Report is the decisions for a node, or for a list of references.
type Report struct {
	Images  []Explanation `json:"images"`
	Entries []EntryUse    `json:"entries"`
	// GateOff is set when the kubelet config lists entries but the ImageGCExclusion gate is off:
	// the kubelet then keeps nothing, and Entry shows what would keep each image.
	GateOff bool `json:"gateOff,omitempty"`
	// Budget is nil when imageGCExcludeBudgetPercent is not set (or 100).
	Budget *Budget `json:"budget,omitempty"`
}

// Unmatched returns the entries that match no image.
func (r *Report) Unmatched() []EntryUse {
	var out []EntryUse
	for _, e := range r.Entries {
		if e.Images == 0 {
			out = append(out, e)
		}
	}
	return out
}

// Allowlist is the kubelet's allowlist settings.
type Allowlist struct {
	Patterns, Selectors []string
	GateOn              bool
	// BudgetPercent is imageGCExcludeBudgetPercent, 0 when unset.
	BudgetPercent int32
}

// single is one entry compiled alone, to count what it matches by itself.
type single struct {
	use     *EntryUse
	matcher *allowlist.Allowlist
}

// Explain decides for each image. capacity is the image filesystem's size in bytes (0 if not
// known). An invalid allowlist is an error, with every invalid entry named, as the kubelet
// refuses to start with it.
func Explain(al Allowlist, images []Image, capacity int64) (*Report, error) {
	matcher, err := allowlist.Compile(al.Patterns, al.Selectors)
	if err != nil {
		return nil, err
	}
	r := &Report{GateOff: !matcher.Empty() && !al.GateOn}
	singles := make([]single, 0, len(al.Patterns)+len(al.Selectors))
	r.Entries = make([]EntryUse, 0, len(al.Patterns)+len(al.Selectors))
	field := map[string]string{}
	for _, p := range al.Patterns {
		r.Entries = append(r.Entries, EntryUse{Entry: p, Field: allowlist.ExcludeFieldName})
		field[p] = allowlist.ExcludeFieldName
	}
	for _, s := range al.Selectors {
		r.Entries = append(r.Entries, EntryUse{Entry: s, Field: allowlist.ExcludeSelectorsFieldName})
		field[s] = allowlist.ExcludeSelectorsFieldName
	}
	for i := range r.Entries {
		e := &r.Entries[i]
		var m *allowlist.Allowlist
		if e.Field == allowlist.ExcludeFieldName {
			m, err = allowlist.Compile([]string{e.Entry}, nil)
		} else {
			m, err = allowlist.Compile(nil, []string{e.Entry})
		}
		if err != nil {
			return nil, err // cannot happen: the entry compiled with the others
		}
		singles = append(singles, single{use: e, matcher: m})
	}

	r.Images = make([]Explanation, len(images))
	for i, img := range images {
		x := &r.Images[i]
		x.Image = img
		for _, s := range singles {
			if s.matcher.MatchReferences(img.ID, img.RepoTags, img.RepoDigests) != "" || (img.Labels != nil && s.matcher.MatchLabels(img.Labels) != "") {
				s.use.Images++
			}
		}
		// The entry the kubelet credits: the first by references, else the first by labels.
		labelsUnknown := false
		if x.Entry = matcher.MatchReferences(img.ID, img.RepoTags, img.RepoDigests); x.Entry != "" {
			x.MatchedBy = matchedName(x.Entry, img)
		} else if matcher.HasSelectors() {
			if img.Labels == nil && img.LabelsError != "" {
				labelsUnknown = true
			} else if x.Entry = matcher.MatchLabels(img.Labels); x.Entry != "" {
				x.MatchedBy = "labels " + matchedLabels(x.Entry, img.Labels)
			}
		}
		x.Field = field[x.Entry]
		switch {
		case img.InUse:
			x.Decision = InUse
		case img.ImageVolume:
			x.Decision = HeldByImageVolume
		case img.Pinned:
			x.Decision = Pinned
		case r.GateOff:
			x.Decision = Collectable
		case x.Entry != "":
			x.Decision = Kept
		case labelsUnknown:
			x.Decision = LabelsUnknown
		default:
			x.Decision = Collectable
		}
	}
	sort.SliceStable(r.Images, func(i, j int) bool { return r.Images[i].Name() < r.Images[j].Name() })

	if al.BudgetPercent > 0 && al.BudgetPercent < 100 && !r.GateOff {
		b := &Budget{Percent: al.BudgetPercent, CapacityBytes: capacity, Bytes: allowlist.BudgetBytes(capacity, int(al.BudgetPercent))}
		var sizes []int64
		var kept []*Explanation
		for i := range r.Images {
			if x := &r.Images[i]; x.Decision == Kept {
				b.KeptBytes += x.Size
				sizes = append(sizes, x.Size)
				kept = append(kept, x)
			}
		}
		if b.Over() {
			b.Collects = overBudget(matcher, kept, b.Bytes)
			// The kubelet holds the kept images that fit, most recently used first, with the
			// rule below; the most it can hold in any order is the smallest first.
			sort.Slice(sizes, func(i, j int) bool { return sizes[i] < sizes[j] })
			fit := allowlist.WithinBudget(sizes, b.Bytes)
			b.AtLeast = len(sizes) - fit
			for i := range r.Images {
				if r.Images[i].Decision == Kept {
					r.Images[i].AtRisk = true
				}
			}
		}
		r.Budget = b
	}
	return r, nil
}

// overBudget marks the kept images beyond budget bytes in the kubelet's ranking of images
// used equally recently: by the position of the first entry that keeps them, then by image ID.
// It returns how many it marked.
func overBudget(matcher *allowlist.Allowlist, ranked []*Explanation, budget int64) int {
	slices.SortStableFunc(ranked, func(a, b *Explanation) int {
		return allowlist.CompareKept(matcher.Position(a.Entry), a.ID, matcher.Position(b.Entry), b.ID)
	})
	sizes := make([]int64, len(ranked))
	for i, x := range ranked {
		sizes[i] = x.Size
	}
	held := allowlist.WithinBudget(sizes, budget)
	for _, x := range ranked[held:] {
		x.OverBudget = true
	}
	return len(ranked) - held
}

// matchedName returns the ID, tag or digest by which entry matches img.
func matchedName(entry string, img Image) string {
	m, err := allowlist.Compile([]string{entry}, nil)
	if err != nil {
		return ""
	}
	if m.MatchReferences(img.ID, nil, nil) != "" {
		return img.ID
	}
	for _, names := range [][]string{img.RepoTags, img.RepoDigests} {
		for _, name := range names {
			if m.MatchReferences("", []string{name}, nil) != "" {
				return name
			}
		}
	}
	return ""
}

// matchedLabels lists the image's labels that the selector names, sorted.
func matchedLabels(selector string, labels map[string]string) string {
	var out []string
	for k, v := range labels {
		if strings.Contains(selector, k) {
			out = append(out, k+"="+v)
		}
	}
	sort.Strings(out)
	return strings.Join(out, ",")
}

// FormatBytes is a size for people: "1.5 GiB".
func FormatBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
