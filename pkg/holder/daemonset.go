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
	"fmt"
	"sort"

	"google.golang.org/grpc/codes"
	grpcstatus "google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// MountRuntime is the part of CRI that DaemonSetHeld asks: the pods, and a container's mounts.
type MountRuntime interface {
	Runtime
	ContainerStatus(ctx context.Context, id string) (*runtimeapi.ContainerStatus, error)
}

// Held is what the holder DaemonSet's pods on this node hold.
type Held struct {
	// Pods are the running holder pods, sorted.
	Pods []string
	// ByImageID maps the ID of each image a running holder mounts to that holder's pod name.
	ByImageID map[string]string
}

// DaemonSetHeld reads what the holder DaemonSet's pods on this node hold, as the kubelet's image
// garbage collector sees it (handleImageVolumes): the image IDs that a running holder container
// mounts as image volumes, from its ContainerStatus. A holder pod is a ready sandbox from the API
// server (kubernetes.io/config.source "api") in namespace, labelled
// app.kubernetes.io/name=image-keeper-holder, with a running container named ContainerName.
// Anyone who can create pods in namespace can make a pod pass for a holder, so keep the holder in
// a namespace only cluster administrators write (kube-system, the default).
func DaemonSetHeld(ctx context.Context, rt MountRuntime, namespace string) (Held, error) {
	sandboxes, err := rt.ListPodSandbox(ctx)
	if err != nil {
		return Held{}, fmt.Errorf("list the runtime's pods: %w", err)
	}
	pods := map[string]string{} // sandbox ID -> pod name
	for _, sb := range sandboxes {
		l := sb.GetLabels()
		if sb.GetState() == runtimeapi.PodSandboxState_SANDBOX_READY &&
			sb.GetAnnotations()["kubernetes.io/config.source"] == "api" &&
			l["io.kubernetes.pod.namespace"] == namespace &&
			l["app.kubernetes.io/name"] == NamePrefix {
			pods[sb.GetId()] = l["io.kubernetes.pod.name"]
		}
	}
	containers, err := rt.ListContainers(ctx)
	if err != nil {
		return Held{}, fmt.Errorf("list the runtime's containers: %w", err)
	}
	held := Held{ByImageID: map[string]string{}}
	for _, c := range containers {
		pod, ok := pods[c.GetPodSandboxId()]
		if !ok || c.GetState() != runtimeapi.ContainerState_CONTAINER_RUNNING || c.GetMetadata().GetName() != ContainerName {
			continue
		}
		status, err := rt.ContainerStatus(ctx, c.GetId())
		if grpcstatus.Code(err) == codes.NotFound {
			continue // gone since it was listed
		}
		if err != nil {
			return Held{}, fmt.Errorf("status of holder container %s of pod %s: %w", c.GetId(), pod, err)
		}
		held.Pods = append(held.Pods, pod)
		for _, m := range status.GetMounts() {
			if id := m.GetImage().GetImage(); id != "" {
				held.ByImageID[id] = pod
			}
		}
	}
	sort.Strings(held.Pods)
	return held, nil
}
