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
	"encoding/json"
	"io"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/kubelet-imagecache/kubelet-imagecache/pkg/keeper"
	"github.com/kubelet-imagecache/kubelet-imagecache/test/e2e/framework"
)

// check runs every invariant once.
func (r *run) check() {
	r.checkGC()
	r.checkRestore()
	r.checkKeeper()
}

var (
	removingRE = regexp.MustCompile(`"Removing image to free bytes" imageID="([^"]+)" size=(\d+)`)
	// ruleRE is the eviction rule's line before each kept image it removes.
	ruleRE = regexp.MustCompile(`"Removing an image that imageGCExclude keeps to relieve disk pressure" imageID="([^"]+)".* bytesToFree=(\d+) freed=(\d+)`)
)

// checkGC reads the kubelet's log from where it stopped last time.
func (r *run) checkGC() {
	r.report.Checks["gc"]++
	f, err := os.Open(r.n.Kubelet.Log)
	if err != nil {
		r.violate("harness", "read the kubelet's log: %v", err)
		return
	}
	defer f.Close()
	if _, err := f.Seek(r.kubeletLogOffset, io.SeekStart); err != nil {
		return
	}
	data, err := io.ReadAll(f)
	if err != nil {
		return
	}
	// Only whole lines: the kubelet may be writing the last one.
	end := strings.LastIndexByte(string(data), '\n') + 1
	r.kubeletLogOffset += int64(end)
	for _, line := range strings.Split(string(data[:end]), "\n") {
		if strings.Contains(line, "FLAG: --config=") {
			// A kubelet (re)start: its counter starts from zero, and it sees every image anew.
			r.removalsThisKubelet = 0
			for id := range r.junkSince {
				r.junkSince[id] = time.Time{}
			}
			continue
		}
		if strings.Contains(line, `"Attempting to delete unused images"`) {
			r.report.GCPasses++
			// The pass detected the images pulled since the last one (read up to checkEvery
			// late: a later clock, so the eligibility check below errs on the safe side).
			for id, since := range r.junkSince {
				if since.IsZero() {
					r.junkSince[id] = time.Now()
				}
			}
			continue
		}
		if strings.Contains(line, `"Keeping the images imageGCExclude keeps: removing all of them would not relieve disk pressure"`) {
			r.report.RuleDecisions++
			continue
		}
		if m := ruleRE.FindStringSubmatch(line); m != nil {
			r.report.RuleDecisions++
			r.checkRule(m[1], atoi(m[2]), atoi(m[3]))
			continue
		}
		m := removingRE.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		r.removalsThisKubelet++
		r.report.Removed++
		delete(r.junkSince, m[1])
		ref, kept := r.allowedIDs[m[1]]
		switch {
		case kept && r.opts.Policy == PolicyEvictPods:
			r.violate("gc", "the kubelet removed allowlisted image %s (%s)", ref, m[1])
		case kept && r.pendingRule != m[1]:
			r.violate("kept-yield", "the kubelet removed allowlisted image %s (%s) by another path than the eviction rule", ref, m[1])
		case kept:
			r.pendingRule = ""
			r.report.KeptRemoved++
		case !r.knownIDs[m[1]]:
			r.violate("keeper-scope", "the kubelet removed %s, an image the test never put on the node", m[1])
		}
	}
	// The counter of this kubelet process against the lines it wrote: a log line the scan
	// missed would hide a removal. The counter is read after the log, so it can only be behind.
	if metrics, err := r.n.KubeletMetrics(); err == nil {
		r.report.Checks["gc-metric"]++
		if total := r.sumMetric(metrics, "kubelet_image_garbage_collected_total"); total > float64(r.removalsThisKubelet) {
			r.violate("gc", "kubelet_image_garbage_collected_total is %v but its log shows %d removals", total, r.removalsThisKubelet)
		}
	}
}

// checkRule checks the eviction rule's decision to remove the kept image id: it needed
// bytesToFree and had freed freed before this image.
func (r *run) checkRule(id string, bytesToFree, freed int64) {
	r.report.Checks["kept-yield"]++
	r.pendingRule = id
	ref := r.allowedIDs[id]
	switch {
	case r.opts.Policy == PolicyEvictPods:
		r.violate("gc", "the eviction rule removes allowlisted image %s with imageGCExcludeEvictionPolicy EvictPods", ref)
	case r.pressureUntil.IsZero() && time.Since(r.pressureEnded) > pressureLag:
		r.violate("kept-yield", "the eviction rule removes allowlisted image %s with no imagefs pressure", ref)
	case !r.episode.resolvable:
		r.violate("kept-yield", "the eviction rule removes allowlisted image %s in an episode whose shortfall (%d MiB) the kept images cannot cover", ref, r.episode.shortfall>>20)
	case freed >= bytesToFree:
		r.violate("kept-yield", "the eviction rule removes allowlisted image %s after it freed %d of the %d bytes it needed", ref, freed, bytesToFree)
	}
	// Every unkept image old enough to go must have gone first.
	eligible := time.Now().Add(-minAge - eligibleSlack)
	for junkID, since := range r.junkSince {
		if !since.IsZero() && since.Before(eligible) {
			r.violate("kept-yield", "the eviction rule removes allowlisted image %s while unkept image %s, on the node since %v, is still there", ref, junkID, since.Sub(r.start).Round(time.Second))
		}
	}
}

func atoi(s string) int64 {
	n, _ := strconv.ParseInt(s, 10, 64)
	return n
}

func (r *run) checkRestore() {
	p, err := r.n.Present()
	if err != nil {
		return // the runtime is restarting
	}
	r.report.Checks["restore"]++
	now := time.Now()
	for _, img := range r.wanted {
		ref := r.wantedRef(img)
		if p[ref] {
			if since, ok := r.missingSince[ref]; ok {
				r.report.Restores = append(r.report.Restores, now.Sub(since))
				delete(r.missingSince, ref)
				delete(r.reported, ref)
			}
			continue
		}
		if _, ok := r.missingSince[ref]; !ok {
			r.missingSince[ref] = now
		}
		if !r.registryDownUntil.IsZero() || r.reported[ref] {
			continue
		}
		// The clock starts when everything a restore needs is up again, and, with the default
		// rule, when the pressure that kept images yield to has ended.
		from := latest(r.missingSince[ref], r.registryUpSince, r.runtimeUpSince, r.keeperUpSince)
		if r.opts.Policy == PolicyRemoveKeptImages {
			if !r.pressureUntil.IsZero() {
				continue
			}
			from = latest(from, r.pressureEnded)
		}
		if now.Sub(from) > RestoreWindow {
			r.reported[ref] = true
			r.violate("restore", "%s missing for %v with the registry, containerd and image-keeper up (since %v)", ref, now.Sub(from).Round(time.Second), from.Sub(r.start).Round(time.Second))
		}
	}
	for id := range imageIDs(p) {
		if !r.knownIDs[id] {
			r.violate("keeper-scope", "the node holds image %s, which the test never put there", id)
			r.knownIDs[id] = true // once
		}
	}
}

func imageIDs(p map[string]bool) map[string]bool {
	ids := map[string]bool{}
	for k := range p {
		if strings.HasPrefix(k, "sha256:") {
			ids[k] = true
		}
	}
	return ids
}

func latest(ts ...time.Time) time.Time {
	var out time.Time
	for _, t := range ts {
		if t.After(out) {
			out = t
		}
	}
	return out
}

func (r *run) checkKeeper() {
	if r.n.Keeper == nil || r.n.Keeper.Exited() {
		r.violate("keeper-bounded", "image-keeper exited: %s", framework.Tail(r.n.Keeper, 5))
		return
	}
	client := http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get("http://" + r.n.KeeperAddr + "/metrics")
	if err != nil {
		return // starting
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	r.report.Checks["keeper-bounded"]++
	s := Sample{At: r.since(), RSSBytes: r.sumMetric(string(body), "process_resident_memory_bytes"), Goroutines: r.sumMetric(string(body), "go_goroutines")}
	r.report.Samples = append(r.report.Samples, s)
	if s.Goroutines > MaxGoroutines || s.RSSBytes > MaxRSSBytes {
		r.violate("keeper-bounded", "image-keeper has %v goroutines and %.1f MiB resident (bounds %d, %d MiB)", s.Goroutines, s.RSSBytes/(1<<20), MaxGoroutines, MaxRSSBytes>>20)
	}
	resp, err = client.Get("http://" + r.n.KeeperAddr + "/status")
	if err != nil {
		return
	}
	var status keeper.Status
	err = json.NewDecoder(resp.Body).Decode(&status)
	resp.Body.Close()
	if err != nil {
		r.violate("harness", "decode image-keeper's /status: %v", err)
		return
	}
	r.report.Checks["keeper-scope"]++
	if len(status.Images) != len(r.wanted)+1 { // its list and the kubelet's concrete entries
		var refs []string
		for _, img := range status.Images {
			refs = append(refs, img.Reference)
		}
		r.violate("keeper-scope", "image-keeper wants %d images, not %d: %v (config error %q)", len(status.Images), len(r.wanted)+1, refs, status.ConfigError)
	}
	for _, img := range status.Images {
		// "unknown" is what image-keeper says of an image it has not seen yet when selectors
		// could protect it (labels are read from the image): only a "no" is a violation.
		if img.Protected.State == keeper.Unprotected && !r.reported["scope:"+img.Reference] {
			r.reported["scope:"+img.Reference] = true // once per image
			r.violate("keeper-scope", "image-keeper keeps %s, which the kubelet's allowlist does not protect (%s)", img.Reference, img.Protected.Reason)
		}
	}
}

// sumMetric adds up every sample of a metric family; a body that does not parse is the
// harness's failure, and reads as 0.
func (r *run) sumMetric(text, name string) float64 {
	v, err := framework.MetricSum(text, name)
	if err != nil {
		r.violate("harness", "%s: %v", name, err)
	}
	return v
}
