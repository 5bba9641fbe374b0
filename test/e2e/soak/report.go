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

package soak

import (
	"cmp"
	"fmt"
	"math"
	"sort"
	"strings"
	"time"
)

// Summary is the report in a few lines, for logs.
func (r *Report) Summary() string {
	var b strings.Builder
	fmt.Fprintf(&b, "seed %d, %v, %s: %d faults (%s), %d checks (%s), %d kubelet image GC passes with %d removals (%d kept images by the eviction rule; pressure episodes: %s), %d restores (max %v), %d violations",
		r.Seed, r.Duration, r.Policy, total(r.Faults), counts(r.Faults), total(r.Checks), counts(r.Checks), r.GCPasses, r.Removed, r.KeptRemoved, counts(r.Episodes), len(r.Restores), r.maxRestore(), len(r.Violations))
	return b.String()
}

func (r *Report) maxRestore() time.Duration {
	var m time.Duration
	for _, d := range r.Restores {
		m = max(m, d)
	}
	return m.Round(100 * time.Millisecond)
}

func total(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

func counts(m map[string]int) string {
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
	}
	return strings.Join(parts, ", ")
}

// FileName is the base name of the report's files in docs/bench: soak for PolicyEvictPods,
// soak-remove-kept-images for the default rule.
func (r *Report) FileName() string {
	if r.Policy == PolicyRemoveKeptImages {
		return "soak-remove-kept-images"
	}
	return "soak"
}

// Markdown is docs/bench/<FileName>.md: what ran, what was checked, what broke.
func (r *Report) Markdown(command string) string {
	var b strings.Builder
	if r.Policy == PolicyRemoveKeptImages {
		b.WriteString("# Edge soak, default eviction rule\n\n")
	} else {
		b.WriteString("# Edge soak\n\n")
	}
	fmt.Fprintf(&b, "Written by `%s`. One throwaway node (containerd 2.4, a loopback registry, the patched kubelet\n", command)
	b.WriteString("with an allowlist of every pattern form, a label selector and a 50% retention budget on a 512 MiB\n")
	if r.Policy == PolicyRemoveKeptImages {
		b.WriteString("image filesystem, with the default `imageGCExcludeEvictionPolicy: RemoveKeptImages` (kept images\n")
		b.WriteString("yield to pods when that relieves the pressure) and `imageMinimumGCAge: 30s`; each pressure\n")
		b.WriteString("episode is, in turn, one the kept images can resolve (12 MiB short) or one they cannot\n")
		b.WriteString("(20% available); image-keeper every 5 s with at most 10 s of backoff, two static pods on\n")
		b.WriteString("allowlisted images with `IfNotPresent`) goes through a seeded random schedule of faults while the\n")
		b.WriteString("invariants of `test/e2e/soak` are checked every 2 s; `kept-yield` is the default rule's. `make test`\n")
		b.WriteString("runs the same for 3 minutes with seed 1.\n\n")
	} else {
		b.WriteString("image filesystem and `imageGCExcludeEvictionPolicy: EvictPods` (kept images stay under eviction\n")
		b.WriteString("pressure), image-keeper every 5 s with at most 10 s of backoff, two static pods on allowlisted\n")
		b.WriteString("images with `IfNotPresent`) goes through a seeded random schedule of faults while the invariants\n")
		b.WriteString("of `test/e2e/soak` are checked every 2 s. `make test` runs the same for 3 minutes with seed 1.\n\n")
	}
	fmt.Fprintf(&b, "| | |\n| --- | --- |\n| seed | %d |\n| duration | %v |\n| imageGCExcludeEvictionPolicy | %s |\n| faults | %d |\n| invariant checks | %d |\n| kubelet image GC passes | %d |\n| images the kubelet removed | %d |\n| kept images the eviction rule removed | %d (of %d decisions it logged) |\n| imagefs pressure episodes | %s |\n| restores of removed allowlisted images | %d, longest %v (counted from the removal, outages included) |\n| **violations** | **%d** |\n\n",
		r.Seed, r.Duration, r.Policy, total(r.Faults), total(r.Checks), r.GCPasses, r.Removed, r.KeptRemoved, r.RuleDecisions, cmp.Or(counts(r.Episodes), fmt.Sprint(r.Faults["imagefs-pressure"])), len(r.Restores), r.maxRestore(), len(r.Violations))
	b.WriteString("## Faults injected\n\n| fault | count |\n| --- | --- |\n")
	for _, k := range sortedKeys(r.Faults) {
		fmt.Fprintf(&b, "| %s | %d |\n", k, r.Faults[k])
	}
	b.WriteString("\n## Invariant checks run\n\n| invariant | checks |\n| --- | --- |\n")
	for _, k := range sortedKeys(r.Checks) {
		fmt.Fprintf(&b, "| %s | %d |\n", k, r.Checks[k])
	}
	b.WriteString("\n## Violations\n\n")
	if len(r.Violations) == 0 {
		b.WriteString("None.\n")
	}
	for _, v := range r.Violations {
		fmt.Fprintf(&b, "- at %v, **%s**: %s; after:\n\n  ```\n  %s\n  ```\n", v.At, v.Invariant, v.Detail, strings.Join(v.History, "\n  "))
	}
	fmt.Fprintf(&b, "\n## image-keeper's footprint\n\n![image-keeper's resident memory and goroutines over the run](%s.svg)\n\n", r.FileName())
	if len(r.Samples) > 0 {
		lo, hi := r.sampleRange(func(s Sample) float64 { return s.RSSBytes })
		glo, ghi := r.sampleRange(func(s Sample) float64 { return s.Goroutines })
		fmt.Fprintf(&b, "Resident memory %.1f–%.1f MiB, goroutines %.0f–%.0f over %d samples (bounds: %d MiB, %d).\n",
			lo/(1<<20), hi/(1<<20), glo, ghi, len(r.Samples), MaxRSSBytes>>20, MaxGoroutines)
	}
	return b.String()
}

func sortedKeys(m map[string]int) []string {
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func (r *Report) sampleRange(f func(Sample) float64) (lo, hi float64) {
	lo, hi = math.Inf(1), math.Inf(-1)
	for _, s := range r.Samples {
		lo, hi = math.Min(lo, f(s)), math.Max(hi, f(s))
	}
	return lo, hi
}

// SVG charts image-keeper's resident memory (MiB, left axis) and goroutines (right axis) over
// the run.
func (r *Report) SVG() string {
	const w, h, left, right, top, bottom = 780, 320, 60, 60, 30, 40
	if len(r.Samples) == 0 {
		return ""
	}
	_, rssHi := r.sampleRange(func(s Sample) float64 { return s.RSSBytes / (1 << 20) })
	_, gHi := r.sampleRange(func(s Sample) float64 { return s.Goroutines })
	rssMax, gMax := math.Ceil(rssHi*1.2/5)*5, math.Ceil(gHi*1.2/10)*10
	tMax := r.Samples[len(r.Samples)-1].At.Seconds()
	x := func(t time.Duration) float64 { return left + (w-left-right)*t.Seconds()/tMax }
	yRSS := func(v float64) float64 { return top + (h-top-bottom)*(1-v/rssMax) }
	yG := func(v float64) float64 { return top + (h-top-bottom)*(1-v/gMax) }
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="12">`+"\n", w, h)
	fmt.Fprintf(&b, `<text x="%d" y="18" font-size="14">image-keeper during the soak (seed %d): resident memory (MiB, left) and goroutines (right)</text>`+"\n", left, r.Seed)
	for i := 0; i <= 4; i++ {
		v := rssMax * float64(i) / 4
		fmt.Fprintf(&b, `<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#ddd"/><text x="%d" y="%.1f" text-anchor="end" fill="#2a9d8f">%.0f</text><text x="%d" y="%.1f" fill="#e76f51">%.0f</text>`+"\n",
			left, w-right, yRSS(v), yRSS(v), left-6, yRSS(v)+4, v, w-right+6, yRSS(v)+4, gMax*float64(i)/4)
	}
	for i := 0; i <= 6; i++ {
		t := time.Duration(float64(i) / 6 * tMax * float64(time.Second))
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle">%s</text>`+"\n", x(t), h-bottom+18, t.Round(time.Second))
	}
	line := func(color string, y func(Sample) float64) {
		var pts []string
		for _, s := range r.Samples {
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", x(s.At), y(s)))
		}
		fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="1.5" points="%s"/>`+"\n", color, strings.Join(pts, " "))
	}
	line("#2a9d8f", func(s Sample) float64 { return yRSS(s.RSSBytes / (1 << 20)) })
	line("#e76f51", func(s Sample) float64 { return yG(s.Goroutines) })
	b.WriteString("</svg>\n")
	return b.String()
}
