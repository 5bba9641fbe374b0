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
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/kubelet-imagecache/kubelet-imagecache/test/e2e/framework"
)

// The shipped DaemonSet's pod, run as it is deployed: image-keeper's own OCI image
// (`make image`, pushed to the node's registry) with the pod template of deploy/daemonset.yaml,
// as a static pod on the throwaway node, in the pod network (a CNI bridge), with the kubelet's
// probes on its pod IP. Only node-specific values change: the hostPaths (containerd's socket
// directory, the kubelet's config and drop-ins), the ConfigMap (a static pod cannot use one; the
// same config.yaml from a hostPath) and the image. The pod restores an image removed behind its
// back, and again after containerd restarts (the socket is recreated: the directory mount sees
// the new one).
func TestDaemonSetPodOnNode(t *testing.T) {
	t.Parallel()
	n := newNodeOn(t, podRuntime(t))
	n.PodNetwork = true
	kept := push(t, n, framework.ImageSpec{Repository: "e2e/kept", Tag: "1"})
	keeperRef := pushKeeperImage(t, n)
	pause := startRuntimeWithPause(t, n)
	pull(t, n, kept.Ref)
	config, err := n.WriteKubeletConfig("kubelet", framework.KubeletConfig{Gate: true, Exclude: []string{kept.Ref, keeperRef}, NoPressure: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := n.StartKubelet(config); err != nil {
		t.Fatal(err)
	}

	// The pod template as shipped.
	data, err := os.ReadFile(filepath.Join(repoRoot, "deploy", "daemonset.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var ds appsv1.DaemonSet
	for _, doc := range strings.Split(string(data), "\n---\n") {
		if strings.Contains(doc, "\nkind: DaemonSet\n") {
			if err := yaml.UnmarshalStrict([]byte(doc), &ds); err != nil {
				t.Fatal(err)
			}
		}
	}
	spec := ds.Spec.Template.Spec
	if len(spec.Containers) != 1 {
		t.Fatalf("the DaemonSet has %d containers", len(spec.Containers))
	}
	keeperConfig := filepath.Join(n.Root, "image-keeper-config")
	if err := os.MkdirAll(keeperConfig, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := framework.WriteKeeperConfig(filepath.Join(keeperConfig, "config.yaml"), kept.Ref); err != nil {
		t.Fatal(err)
	}
	dropIns := filepath.Join(n.Root, "kubelet", "conf.d")
	hostPaths := map[string]string{
		"/run/containerd":                filepath.Dir(strings.TrimPrefix(n.RuntimeEndpoint(), "unix://")),
		"/var/lib/kubelet/config.yaml":   config,
		"/etc/kubernetes/kubelet.conf.d": dropIns,
		"/var/lib/image-keeper":          filepath.Join(n.Root, "image-keeper-state"),
	}
	for i, v := range spec.Volumes {
		switch {
		case v.HostPath != nil:
			path, ok := hostPaths[v.HostPath.Path]
			if !ok {
				t.Fatalf("volume %q: hostPath %s has no node path in this test", v.Name, v.HostPath.Path)
			}
			spec.Volumes[i].HostPath.Path = path
		case v.ConfigMap != nil:
			spec.Volumes[i].VolumeSource = corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: keeperConfig}}
		}
	}
	// Nor a service account: with no API server, image-keeper publishes nothing (its cluster
	// side is TestClusterDaemonSet's).
	spec.ServiceAccountName, spec.AutomountServiceAccountToken = "", nil
	c := &spec.Containers[0]
	c.Image = keeperRef
	c.Args = append(c.Args, "--interval=2s", "--max-backoff=2s")
	pod := corev1.Pod{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{Name: "image-keeper", Namespace: "kube-system", Labels: ds.Spec.Template.Labels},
		Spec:       spec,
	}
	manifest, err := yaml.Marshal(pod)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(n.Root, "manifests", "image-keeper.yaml"), manifest, 0o644); err != nil {
		t.Fatal(err)
	}
	// /readyz on the pod IP, as the kubelet's readiness probe asks it.
	ready := func(timeout time.Duration) bool {
		return framework.Eventually(timeout, 500*time.Millisecond, func() bool {
			ip, err := n.PodIP("image-keeper")
			if err != nil {
				return false
			}
			code, _ := getURL(fmt.Sprintf("http://%s/readyz", net.JoinHostPort(ip, strconv.Itoa(int(c.Ports[0].ContainerPort)))))
			return code == http.StatusOK
		})
	}
	if !ready(2 * time.Minute) {
		t.Fatalf("the DaemonSet's pod did not become ready; manifest:\n%s\nkubelet: %s", manifest, framework.Tail(n.Kubelet, 30))
	}
	// /status, which names the images, the allowlist and the runtime's errors, is on the pod's
	// loopback only (--status-listen), not on its IP.
	if ip, err := n.PodIP("image-keeper"); err != nil {
		t.Error(err)
	} else if code, body := getURL(fmt.Sprintf("http://%s/status", net.JoinHostPort(ip, strconv.Itoa(int(c.Ports[0].ContainerPort))))); code != http.StatusNotFound || !strings.Contains(body, "loopback only") {
		t.Errorf("/status on the pod IP = %d %q; want 404, served on loopback only", code, body)
	}
	restored := func(what string) {
		t.Helper()
		if err := n.RemoveImage(kept.Ref); err != nil {
			t.Fatal(err)
		}
		if !framework.Eventually(time.Minute, 500*time.Millisecond, func() bool { return present(t, n)[kept.Ref] }) {
			t.Fatalf("%s: the pod did not restore %s", what, kept.Ref)
		}
	}
	restored("running")
	n.StopRuntime()
	if err := n.StartRuntime(pause.Ref); err != nil {
		t.Fatal(err)
	}
	if !ready(time.Minute) {
		t.Fatal("the pod did not become ready again after containerd restarted")
	}
	restored("after a containerd restart")
	if running, err := n.ContainerRunning("image-keeper"); err != nil || !running {
		t.Errorf("the image-keeper container is not running: %v", err)
	}

	// The kubelet config is a hostPath volume of type File, a bind mount of the file. Written in
	// place on the host (as kubeadm writes it), the pod's image-keeper sees the new allowlist at
	// its next look (no inotify event reaches it) and pulls the image it adds. Renamed over (as
	// editors and configuration managers write), the mount keeps the old file: image-keeper stops,
	// saying why, and the kubelet restarts its container with a mount of the new file.
	addExclude := func(ref string) []byte {
		t.Helper()
		data, err := os.ReadFile(config)
		if err != nil {
			t.Fatal(err)
		}
		var kc map[string]any
		if err := yaml.Unmarshal(data, &kc); err != nil {
			t.Fatal(err)
		}
		kc["imageGCExclude"] = append(kc["imageGCExclude"].([]any), ref)
		out, err := yaml.Marshal(kc)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	inPlace := push(t, n, framework.ImageSpec{Repository: "e2e/in-place", Tag: "1"})
	renamed := push(t, n, framework.ImageSpec{Repository: "e2e/renamed", Tag: "1"})
	withInPlace := addExclude(inPlace.Ref)
	f, err := os.OpenFile(config, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(withInPlace); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if !framework.Eventually(time.Minute, 500*time.Millisecond, func() bool { return present(t, n)[inPlace.Ref] }) {
		t.Fatalf("the pod did not follow the kubelet config written in place (%s not pulled)", inPlace.Ref)
	}
	next := config + ".new"
	if err := os.WriteFile(next, addExclude(renamed.Ref), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(next, config); err != nil {
		t.Fatal(err)
	}
	if !framework.Eventually(2*time.Minute, 500*time.Millisecond, func() bool { return present(t, n)[renamed.Ref] }) {
		t.Fatalf("the pod did not follow the kubelet config renamed into place (%s not pulled); kubelet: %s", renamed.Ref, framework.Tail(n.Kubelet, 20))
	}
	if !ready(time.Minute) {
		t.Error("the restarted pod is not ready")
	}
	// The first container said why it stopped (the kubelet keeps its log as 0.log).
	logs, _ := filepath.Glob(filepath.Join(n.Root, "kubelet", "pod-logs", "*", "image-keeper", "0.log"))
	if len(logs) != 1 {
		t.Fatalf("the first image-keeper container's log: %v", logs)
	}
	if data, err := os.ReadFile(logs[0]); err != nil || !strings.Contains(string(data), "renamed over on the host") {
		t.Errorf("the first container did not say why it stopped (%v):\n%s", err, data)
	}
}
