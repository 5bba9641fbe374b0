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
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	corev1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/klog/v2"
	"sigs.k8s.io/yaml"
)

// Containers lists the runtime's containers (keeper.RuntimeImageService does).
type Containers interface {
	ListContainers(ctx context.Context) ([]*runtimeapi.Container, error)
}

// State is where a StaticPodSyncer stands, for image-keeper's status.
type State struct {
	// Holding is the hash of the list the running holder holds ("" for none).
	Holding string
	// Wanted is the hash of the list it should hold.
	Wanted string
	// Message says what the syncer waits for, or its last error ("" when Holding == Wanted).
	Message string
	// Held maps each image a running holder mounts to that holder's pod name.
	Held map[string]string
}

// StaticPodSyncer keeps the holder static pod of the wanted list in the kubelet's
// staticPodPath, make-before-break: it writes the new list's manifest beside the old one, and
// removes the old manifest only once the new pod's container runs, that is, once the kubelet
// has pulled and mounted every image of the new list. Until then the old pod holds the old
// list; if the new pod cannot start (an image cannot be pulled), it keeps holding it. It removes
// only manifests it wrote (NamePrefix-*.yaml).
type StaticPodSyncer struct {
	// Dir is the kubelet's staticPodPath.
	Dir     string
	Options Options
	Runtime Containers
}

// Sync moves the node one step towards holding refs and reports where it stands.
func (s *StaticPodSyncer) Sync(ctx context.Context, refs []string) State {
	logger := klog.FromContext(ctx)
	pod, err := StaticPod(refs, s.Options)
	if err != nil {
		return State{Message: err.Error()}
	}
	st := State{Wanted: pod.Annotations[HashAnnotation]}
	manifest := filepath.Join(s.Dir, pod.Name+".yaml")
	data, err := yaml.Marshal(pod)
	if err != nil {
		st.Message = err.Error()
		return st
	}
	if current, err := os.ReadFile(manifest); err != nil || !bytes.Equal(current, data) {
		if err := writeAtomic(manifest, data); err != nil {
			st.Message = fmt.Sprintf("write the holder's static pod manifest: %v", err)
			return st
		}
		logger.Info("Wrote the holder static pod; the previous holder stays until it runs", "manifest", manifest, "images", len(refs))
	}
	running, err := s.running(ctx)
	if err != nil {
		st.Message = fmt.Sprintf("list the runtime's containers: %v", err)
		return st
	}
	st.Held = s.held(running)
	for hash := range running {
		if hash == st.Wanted {
			st.Holding = hash
		}
	}
	if st.Holding == "" {
		for hash := range running {
			st.Holding = hash // an older list, still held
		}
		st.Message = "waiting for the kubelet to pull and mount the images of " + pod.Name
		return st
	}
	old, err := filepath.Glob(filepath.Join(s.Dir, NamePrefix+"-*.yaml"))
	if err != nil {
		st.Message = err.Error()
		return st
	}
	for _, path := range old {
		if path == manifest {
			continue
		}
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			st.Message = fmt.Sprintf("remove the previous holder's manifest: %v", err)
			return st
		}
		logger.Info("Removed the previous holder static pod: the new one holds the images", "manifest", path)
	}
	return st
}

// running returns the list hashes of the holder pods whose container runs: static pods are
// named <pod name>-<node name>, so the container's pod name starts with NamePrefix-<hash>-.
func (s *StaticPodSyncer) running(ctx context.Context) (map[string]bool, error) {
	containers, err := s.Runtime.ListContainers(ctx)
	if err != nil {
		return nil, err
	}
	out := map[string]bool{}
	for _, c := range containers {
		labels := c.GetLabels()
		if c.GetState() != runtimeapi.ContainerState_CONTAINER_RUNNING || labels["io.kubernetes.container.name"] != ContainerName {
			continue
		}
		rest, ok := strings.CutPrefix(labels["io.kubernetes.pod.name"], NamePrefix+"-")
		if !ok {
			continue
		}
		if hash, _, ok := strings.Cut(rest, "-"); ok {
			out[hash] = true
		}
	}
	return out, nil
}

// held reads the manifests of the running holders (those it wrote and has not removed yet):
// which images each mounts.
func (s *StaticPodSyncer) held(running map[string]bool) map[string]string {
	out := map[string]string{}
	for hash := range running {
		name := NamePrefix + "-" + hash
		data, err := os.ReadFile(filepath.Join(s.Dir, name+".yaml"))
		if err != nil {
			continue // removed: the kubelet is stopping that pod
		}
		var pod corev1.Pod
		if err := yaml.Unmarshal(data, &pod); err != nil {
			continue
		}
		for _, v := range pod.Spec.Volumes {
			if v.Image != nil {
				out[v.Image.Reference] = name
			}
		}
	}
	return out
}

// writeAtomic writes data to path through a hidden temporary file (the kubelet ignores names
// that start with a dot) and a rename, so that the kubelet never reads half a manifest.
func writeAtomic(path string, data []byte) error {
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".tmp")
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		_ = os.Remove(tmp)
		return err
	}
	return nil
}
