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
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kubelet-imagecache/kubelet-imagecache/test/e2e/framework"
)

// Scenario 4: a static pod whose image is kept starts without a request to the registry, and
// with the registry down; a pod whose image was never pulled goes to image pull back-off.
func TestOfflineEdgeNode(t *testing.T) {
	t.Parallel()
	n, _, kept, _ := keeperNode(t, podRuntime(t))
	never := push(t, n, framework.ImageSpec{Repository: "e2e/never", Tag: "1"})

	// Registry up: IfNotPresent uses the cached image; the registry's access log stays silent.
	registryLog := n.Registry.LogText()
	if !strings.Contains(registryLog, "/v2/e2e/kept/manifests/") {
		t.Fatal("the registry's access log does not show image-keeper's pull: it cannot show the absence of one either")
	}
	registryLogBefore := len(registryLog)
	if err := n.WriteStaticPod("cached-online", kept.Ref, "IfNotPresent"); err != nil {
		t.Fatal(err)
	}
	if !framework.Eventually(2*time.Minute, 200*time.Millisecond, func() bool { ok, _ := n.ContainerRunning("cached-online"); return ok }) {
		t.Fatal("static pod with the kept image did not start")
	}
	if log := n.Registry.LogText()[registryLogBefore:]; strings.Contains(log, "/v2/e2e/kept/") {
		t.Errorf("the registry was asked for the kept image although it was cached:\n%s", log)
	}

	// Registry down: the edge node is offline.
	n.StopRegistry()
	if err := n.WriteStaticPod("cached", kept.Ref, "IfNotPresent"); err != nil {
		t.Fatal(err)
	}
	if err := n.WriteStaticPod("uncached", never.Ref, "IfNotPresent"); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if !framework.Eventually(2*time.Minute, 200*time.Millisecond, func() bool { ok, _ := n.ContainerRunning("cached"); return ok }) {
		t.Fatalf("static pod with the kept image did not start offline")
	}
	t.Logf("cached pod running %v after its manifest was written, registry down", time.Since(start).Round(100*time.Millisecond))
	if !framework.Eventually(2*time.Minute, time.Second, func() bool {
		return strings.Contains(n.Kubelet.LogText(), "Back-off pulling image") && strings.Contains(n.Kubelet.LogText(), never.Ref)
	}) {
		t.Errorf("the never-pulled image did not go to image pull back-off")
	}
	if running, _ := n.ContainerRunning("uncached"); running {
		t.Errorf("a pod whose image was never pulled is running")
	}
}

// Scenario 5: image-keeper recovers from a runtime restart by itself, and the allowlist still
// protects after a kubelet restart.
func TestRestarts(t *testing.T) {
	t.Parallel()
	legs(t, keeperLegs, restarts)
}

func restarts(t *testing.T, runtime framework.Runtime) {
	n, pause, kept, _ := keeperNode(t, runtime)
	keeperPID := n.Keeper.PID()
	if !framework.Eventually(30*time.Second, 500*time.Millisecond, func() bool {
		code, body := getURL("http://" + n.KeeperAddr + "/readyz")
		return code == http.StatusOK || strings.Contains(body, "e2e/unprotected") // may be mid-fight with GC
	}) {
		t.Fatal("image-keeper never reported its images")
	}
	n.StopRuntime()
	if !framework.Eventually(30*time.Second, 500*time.Millisecond, func() bool {
		_, body := getURL("http://" + n.KeeperAddr + "/readyz")
		return strings.Contains(body, "container runtime unreachable")
	}) {
		t.Fatal("image-keeper did not notice the runtime going away")
	}
	if err := n.StartRuntime(pause.Ref); err != nil {
		t.Fatal(err)
	}
	if !framework.Eventually(60*time.Second, 500*time.Millisecond, func() bool {
		_, body := getURL("http://" + n.KeeperAddr + "/status")
		return !strings.Contains(body, "runtimeError")
	}) {
		t.Fatal("image-keeper did not reconnect to the restarted runtime")
	}
	if n.Keeper.Exited() || n.Keeper.PID() != keeperPID {
		t.Fatal("image-keeper restarted instead of recovering")
	}

	// Kubelet restart: the allowlist applies again from the config file.
	if err := n.RemoveImage(kept.Ref); err != nil {
		t.Fatal(err)
	}
	n.Keeper.Stop(5 * time.Second) // nothing may bring the image back but the cache itself
	pull(t, n, kept.Ref)
	n.StopKubelet()
	config := filepath.Join(n.Root, "kubelet", "kubelet.yaml")
	if err := n.StartKubelet(config); err != nil {
		t.Fatal(err)
	}
	waitGCPasses(t, n, 3)
	if !present(t, n)[kept.Ref] {
		t.Errorf("after a kubelet restart and 3 GC passes %s is gone", kept.Ref)
	}
}
