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
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"k8s.io/utils/ptr"

	"github.com/kubelet-imagecache/kubelet-imagecache/test/e2e/framework"
)

// Scenario 2: a bad allowlist stops the kubelet at start-up, naming the entry.
func TestBadConfigurationStopsKubelet(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	// The kubelet stops at config validation, before it reaches the runtime, which never starts.
	n, err := framework.NewNode(root, binDir, repoRoot, runtimes(t, "containerd-2.4")[0])
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := n.Teardown(false); err != nil {
			t.Errorf("teardown: %v", err)
		}
	})
	for _, tc := range []struct {
		name string
		kc   framework.KubeletConfig
		want string
	}{
		{"empty entry", framework.KubeletConfig{Gate: true, Exclude: []string{"nginx", ""}}, `imageGCExclude[1] \"\": must not be empty`},
		{"uppercase", framework.KubeletConfig{Gate: true, Exclude: []string{"ghcr.io/Acme/app"}}, `imageGCExclude[0] \"ghcr.io/Acme/app\": repository name must be lowercase`},
		{"bad digest", framework.KubeletConfig{Gate: true, Exclude: []string{"nginx@sha256:abc"}}, `imageGCExclude[0] \"nginx@sha256:abc\": invalid digest`},
		{"bad image ID", framework.KubeletConfig{Gate: true, Exclude: []string{"sha256:xyz"}}, `imageGCExclude[0] \"sha256:xyz\": image ID must be`},
		{"only a wildcard", framework.KubeletConfig{Gate: true, Exclude: []string{"*"}}, `imageGCExclude[0] \"*\": its repository part has no literal name, so it would keep (nearly) every image; to turn off disk-usage image garbage collection set imageGCHighThresholdPercent: 100`},
		{"catch-all", framework.KubeletConfig{Gate: true, Exclude: []string{"*/*"}}, `imageGCExclude[0] \"*/*\": its repository part has no literal name`},
		{"registry host wildcard", framework.KubeletConfig{Gate: true, Exclude: []string{"*.io/*"}}, `imageGCExclude[0] \"*.io/*\": a '*' in the registry host \"*.io\" must leave at least 2 labels literal`},
		{"bare registry host", framework.KubeletConfig{Gate: true, Exclude: []string{"localhost:5000"}}, `imageGCExclude[0] \"localhost:5000\": a registry host alone names no image; to keep every image from it write \"localhost:5000/*\"`},
		{"duplicate", framework.KubeletConfig{Gate: true, Exclude: []string{"nginx", "docker.io/library/nginx"}}, `imageGCExclude[1] \"docker.io/library/nginx\": means the same as imageGCExclude[0] \"nginx\"`},
		{"negative-only selector", framework.KubeletConfig{Gate: true, Selectors: []string{"!deprecated"}}, `imageGCExcludeSelectors[0] \"!deprecated\": requires no label to be present`},
		{"budget out of range", framework.KubeletConfig{Gate: true, Exclude: []string{"nginx"}, BudgetPercent: ptr.To[int32](0)}, "imageGCExcludeBudgetPercent 0 must be between 1 and 100"},
		{"bad selector", framework.KubeletConfig{Gate: true, Selectors: []string{"tier in (edge"}}, `imageGCExcludeSelectors[0] \"tier in (edge\"`},
		{"empty selector", framework.KubeletConfig{Gate: true, Selectors: []string{" "}}, `imageGCExcludeSelectors[0] \" \": must not be empty`},
		{"contradictory selector", framework.KubeletConfig{Gate: true, Selectors: []string{"a=1,a=2"}}, `imageGCExcludeSelectors[0] \"a=1,a=2\": selects no image`},
		{"eviction policy typo", framework.KubeletConfig{Gate: true, Exclude: []string{"nginx"}, EvictionPolicy: "evictpods"}, `imageGCExcludeEvictionPolicy \"evictpods\" must be \"RemoveKeptImages\" (the default: kept images go last, and only when that relieves the pressure) or \"EvictPods\"`},
		{"eviction policy without the gate", framework.KubeletConfig{Exclude: nil, EvictionPolicy: "EvictPods"}, "ImageGCExclusion feature gate is required for Kubelet configuration option imageGCExcludeEvictionPolicy"},
		{"gate off", framework.KubeletConfig{Exclude: []string{"nginx"}}, "ImageGCExclusion feature gate is required"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			config, err := n.WriteKubeletConfig(strings.ReplaceAll(tc.name, " ", "-"), tc.kc)
			if err != nil {
				t.Fatal(err)
			}
			p, err := n.RunKubelet("kubelet-"+strings.ReplaceAll(tc.name, " ", "-"), config)
			if err != nil {
				t.Fatal(err)
			}
			exited, exitErr := p.Wait(60 * time.Second)
			if !exited {
				p.Stop(5 * time.Second)
				t.Fatalf("the kubelet kept running with a bad config")
			}
			if exitErr == nil {
				t.Fatalf("the kubelet exited 0 with a bad config")
			}
			if log := p.LogText(); !strings.Contains(log, tc.want) {
				t.Errorf("the kubelet's error does not contain %q:\n%s", tc.want, framework.Tail(p, 5))
			}
		})
	}
}

// The allowlist set in a kubelet config drop-in (--config-dir), as deploy/ ships it: the
// kubelet honours it, and image-keeper, reading the same file and directory with the kubelet's
// merge, reports the image as protected; reading the file alone it would not.
func TestKubeletConfigDropIn(t *testing.T) {
	t.Parallel()
	n := newNode(t)
	kept := push(t, n, framework.ImageSpec{Repository: "e2e/dropin", Tag: "1"})
	other := push(t, n, framework.ImageSpec{Repository: "e2e/other", Tag: "1"})
	startRuntimeWithPause(t, n)
	pull(t, n, kept.Ref, other.Ref)
	config, err := n.WriteKubeletConfig("kubelet", framework.KubeletConfig{
		DropIn: fmt.Sprintf("apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\nfeatureGates:\n  ImageGCExclusion: true\nimageGCExclude:\n  - %q\n", n.RegistryAddr+"/e2e/dropin"),
	})
	if err != nil {
		t.Fatal(err)
	}
	dir := framework.KubeletConfigDir(config)
	if dir == "" {
		t.Fatal("no drop-in directory written")
	}
	if err := n.StartKubelet(config); err != nil {
		t.Fatal(err)
	}
	if !waitDeleted(t, n, map[string]string{"other": other.Ref}) {
		t.Fatalf("the unprotected image was not collected; present: %v", keys(present(t, n)))
	}
	waitGCPasses(t, n, 2)
	if !present(t, n)[kept.Ref] {
		t.Fatalf("the image allowlisted in the drop-in was collected")
	}

	status := func(name string, args ...string) (string, error) {
		p, err := framework.Start(n.LogDir, name, append([]string{filepath.Join(n.Bin, "image-keeper"), "status",
			"--runtime-endpoint", n.RuntimeEndpoint(), "--image", kept.Ref, "--kubelet-config", config}, args...))
		if err != nil {
			t.Fatal(err)
		}
		exited, exitErr := p.Wait(time.Minute)
		if !exited {
			p.Stop(5 * time.Second)
			t.Fatal("image-keeper status did not exit")
		}
		return p.LogText(), exitErr
	}
	if out, exitErr := status("status-with-dir", "--kubelet-config-dir", dir); exitErr != nil || !strings.Contains(out, "yes: "+n.RegistryAddr+"/e2e/dropin") {
		t.Errorf("with --kubelet-config-dir, status (%v) does not say the kubelet protects %s:\n%s", exitErr, kept.Ref, out)
	}
	if out, _ := status("status-without-dir"); strings.Contains(out, "yes: ") {
		t.Errorf("without --kubelet-config-dir, status still finds the drop-in's allowlist:\n%s", out)
	}
}
