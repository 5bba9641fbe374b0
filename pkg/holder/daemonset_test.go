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

package holder

import (
	"context"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	grpcstatus "google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// podRuntime lists sandboxes and containers as given; a container's status mounts mounts[id].
type podRuntime struct {
	sandboxes  []*runtimeapi.PodSandbox
	containers []*runtimeapi.Container
	mounts     map[string][]string // container ID -> image IDs mounted as image volumes
}

func (r *podRuntime) ListPodSandbox(context.Context) ([]*runtimeapi.PodSandbox, error) {
	return r.sandboxes, nil
}

func (r *podRuntime) ListContainers(context.Context) ([]*runtimeapi.Container, error) {
	return r.containers, nil
}

func (r *podRuntime) ContainerStatus(_ context.Context, id string) (*runtimeapi.ContainerStatus, error) {
	images, ok := r.mounts[id]
	if !ok {
		return nil, grpcstatus.Error(codes.NotFound, "no such container")
	}
	status := &runtimeapi.ContainerStatus{Id: id, Mounts: []*runtimeapi.Mount{{ContainerPath: "/etc/hosts", HostPath: "/var/lib/kubelet/pods/x/etc-hosts"}}}
	for _, img := range images {
		status.Mounts = append(status.Mounts, &runtimeapi.Mount{ContainerPath: MountRoot + "/0", Image: &runtimeapi.ImageSpec{Image: img}})
	}
	return status, nil
}

// add puts a pod with one container into the runtime; the container mounts images.
func (r *podRuntime) add(id, pod, namespace, source, app string, ready bool, container string, running bool, images ...string) {
	state := runtimeapi.PodSandboxState_SANDBOX_READY
	if !ready {
		state = runtimeapi.PodSandboxState_SANDBOX_NOTREADY
	}
	labels := map[string]string{"io.kubernetes.pod.name": pod, "io.kubernetes.pod.namespace": namespace}
	if app != "" {
		labels["app.kubernetes.io/name"] = app
	}
	r.sandboxes = append(r.sandboxes, &runtimeapi.PodSandbox{Id: id, State: state, Labels: labels, Annotations: map[string]string{"kubernetes.io/config.source": source}})
	cstate := runtimeapi.ContainerState_CONTAINER_RUNNING
	if !running {
		cstate = runtimeapi.ContainerState_CONTAINER_EXITED
	}
	r.containers = append(r.containers, &runtimeapi.Container{Id: "c-" + id, PodSandboxId: id, State: cstate, Metadata: &runtimeapi.ContainerMetadata{Name: container}})
	if r.mounts == nil {
		r.mounts = map[string][]string{}
	}
	r.mounts["c-"+id] = images
}

// Only a running holder container of a ready DaemonSet pod (API source) in the namespace counts;
// what it holds is what its container status mounts as image volumes, by image ID.
func TestDaemonSetHeld(t *testing.T) {
	r := &podRuntime{}
	r.add("old", "image-keeper-holder-abcde", "kube-system", "api", NamePrefix, true, ContainerName, true, "sha256:a", "sha256:b")
	r.add("new", "image-keeper-holder-fghij", "kube-system", "api", NamePrefix, true, ContainerName, true, "sha256:a", "sha256:c")
	// Impostors and leftovers: none of their images is held.
	r.add("ns", "image-keeper-holder-x", "default", "api", NamePrefix, true, ContainerName, true, "sha256:x1")
	r.add("static", "image-keeper-holder-y", "kube-system", "file", NamePrefix, true, ContainerName, true, "sha256:x2")
	r.add("label", "image-keeper-holder-z", "kube-system", "api", "something-else", true, ContainerName, true, "sha256:x3")
	r.add("notready", "image-keeper-holder-w", "kube-system", "api", NamePrefix, false, ContainerName, true, "sha256:x4")
	r.add("exited", "image-keeper-holder-v", "kube-system", "api", NamePrefix, true, ContainerName, false, "sha256:x5")
	r.add("sidecar", "image-keeper-holder-u", "kube-system", "api", NamePrefix, true, "sidecar", true, "sha256:x6")
	// Listed, then gone before its status was asked: skipped, not an error.
	r.add("gone", "image-keeper-holder-t", "kube-system", "api", NamePrefix, true, ContainerName, true)
	delete(r.mounts, "c-gone")

	held, err := DaemonSetHeld(context.Background(), r, "kube-system")
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(held.Pods, " "); got != "image-keeper-holder-abcde image-keeper-holder-fghij" {
		t.Errorf("pods %q; want the two holders", got)
	}
	if len(held.ByImageID) != 3 || held.ByImageID["sha256:b"] != "image-keeper-holder-abcde" || held.ByImageID["sha256:c"] != "image-keeper-holder-fghij" || held.ByImageID["sha256:a"] == "" {
		t.Errorf("held %v; want a, b and c only", held.ByImageID)
	}
	if held, err := DaemonSetHeld(context.Background(), r, "other"); err != nil || len(held.Pods) != 0 || len(held.ByImageID) != 0 {
		t.Errorf("another namespace: %+v, %v; want nothing", held, err)
	}
}
