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

package framework

import (
	"context"
	"fmt"
	"os"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// WriteStaticPod writes a static pod running image with hostNetwork.
func (n *Node) WriteStaticPod(name, image, pullPolicy string) error {
	manifest := fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata:
  name: %[1]s
  namespace: default
spec:
  hostNetwork: true
  terminationGracePeriodSeconds: 1
  containers:
    - name: main
      image: %[2]s
      imagePullPolicy: %[3]s
`, name, image, pullPolicy)
	return os.WriteFile(n.path("manifests", name+".yaml"), []byte(manifest), 0o644)
}

// StaticPodDir is the kubelet's staticPodPath.
func (n *Node) StaticPodDir() string { return n.path("manifests") }

// RemoveStaticPod deletes a static pod's manifest.
func (n *Node) RemoveStaticPod(name string) error {
	return os.Remove(n.path("manifests", name+".yaml"))
}

// ContainerRunning reports whether a container of the static pod is running.
func (n *Node) ContainerRunning(podName string) (bool, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	rs, err := n.RuntimeService()
	if err != nil {
		return false, err
	}
	list, err := rs.ListContainers(ctx, &runtimeapi.ContainerFilter{
		State:         &runtimeapi.ContainerStateValue{State: runtimeapi.ContainerState_CONTAINER_RUNNING},
		LabelSelector: map[string]string{"io.kubernetes.pod.name": podName + "-" + n.Name},
	})
	if err != nil {
		return false, err
	}
	return len(list) > 0, nil
}

// RemovePod stops and removes the sandboxes of a static pod whose manifest is gone, so that
// nothing on the node references its image any more.
func (n *Node) RemovePod(podName string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rs, err := n.RuntimeService()
	if err != nil {
		return err
	}
	sandboxes, err := rs.ListPodSandbox(ctx, &runtimeapi.PodSandboxFilter{LabelSelector: map[string]string{"io.kubernetes.pod.name": podName + "-" + n.Name}})
	if err != nil {
		return err
	}
	for _, s := range sandboxes {
		if err := rs.StopPodSandbox(ctx, s.Id); err != nil {
			return err
		}
		if err := rs.RemovePodSandbox(ctx, s.Id); err != nil {
			return err
		}
	}
	return nil
}

// removePods stops and removes every sandbox so that no shim or container outlives the test.
func (n *Node) removePods() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rs, err := n.RuntimeService()
	if err != nil {
		return
	}
	sandboxes, err := rs.ListPodSandbox(ctx, nil)
	if err != nil {
		return
	}
	for _, s := range sandboxes {
		_ = rs.StopPodSandbox(ctx, s.Id)
		_ = rs.RemovePodSandbox(ctx, s.Id)
	}
}
