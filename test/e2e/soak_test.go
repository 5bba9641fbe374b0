//go:build e2e

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

package e2e

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/kubelet-imagecache/kubelet-imagecache/test/e2e/soak"
)

// The edge soak for 3 minutes with a fixed seed (the hour-long run is `make soak`; its result
// is docs/bench/soak.md): faults of every kind on one node, the invariants checked every 2 s.
// No kept image may go (imageGCExcludeEvictionPolicy: EvictPods).
func TestSoak(t *testing.T) {
	t.Parallel()
	runSoak(t, soak.PolicyEvictPods)
}

// TestSoakRemoveKeptImages is the soak with the default eviction rule
// (docs/bench/soak-remove-kept-images.md): kept images yield only under imagefs pressure they
// can relieve, after every unkept image old enough, and only as many as needed.
func TestSoakRemoveKeptImages(t *testing.T) {
	t.Parallel()
	report := runSoak(t, soak.PolicyRemoveKeptImages)
	if report.Episodes["resolvable"] == 0 || report.Episodes["unresolvable"] == 0 {
		t.Errorf("3 minutes saw pressure episodes %v; want both kinds", report.Episodes)
	}
	// Not vacuous: the kubelet's eviction reached the rule, which removed kept images or said
	// why it kept them.
	if report.RuleDecisions == 0 {
		t.Error("the eviction rule decided nothing in 3 minutes of pressure episodes: the kept-yield checks did not run")
	}
	t.Logf("the eviction rule decided %d times and removed %d kept images", report.RuleDecisions, report.KeptRemoved)
}

func runSoak(t *testing.T, policy string) *soak.Report {
	const seed = 1
	report, err := soak.Run(context.Background(), soak.Options{
		Repo: repoRoot, Bin: binDir, Duration: 3 * time.Minute, Seed: seed, Policy: policy,
		KeepLogs: filepath.Join(logsDir, t.Name()), Logf: t.Logf,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Log(report.Summary())
	for _, kind := range soak.FaultKinds() {
		if report.Faults[kind] == 0 {
			t.Errorf("no %s fault was injected in 3 minutes: %v", kind, report.Faults)
		}
	}
	for _, v := range report.Violations {
		t.Errorf("%s at %v: %s\n  after:\n    %v", v.Invariant, v.At, v.Detail, v.History)
	}
	return report
}
