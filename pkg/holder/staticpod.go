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
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"

	corev1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/klog/v2"
	"sigs.k8s.io/yaml"

	"github.com/kubelet-imagecache/kubelet-imagecache/pkg/configfile"
)

// Runtime is the part of CRI the syncer asks (keeper.RuntimeImageService has it).
type Runtime interface {
	ListPodSandbox(ctx context.Context) ([]*runtimeapi.PodSandbox, error)
	ListContainers(ctx context.Context) ([]*runtimeapi.Container, error)
}

// ManagedByAnnotation marks the static pod manifests a StaticPodSyncer wrote: the only files it
// ever removes. `image-keeper holder-manifest --kind Pod` does not set it.
const ManagedByAnnotation = "imagekeeper.kubelet-imagecache.io/managed-by"

// State is where a StaticPodSyncer stands, for image-keeper's status.
type State struct {
	// Wanted is the name of the holder pod of the wanted list ("" when the list is refused).
	Wanted string
	// Holding lists the holder pods that run (the wanted one once it runs, older ones until
	// then).
	Holding []string
	// Message says what the syncer waits for, or its last error ("" once the wanted holder runs
	// alone).
	Message string
	// Held maps each image a running holder mounts to that holder's pod name.
	Held map[string]string
}

// StaticPodSyncer keeps the holder static pod of the wanted list in the kubelet's
// staticPodPath, make-before-break: it writes the new pod's manifest beside the old one, and
// removes the old manifest only once the new pod's container runs, that is, once the kubelet has
// pulled and mounted every image of the new list. Until then the old pod holds the old list; if
// the new pod cannot start (an image or the holder's image cannot be pulled), it keeps holding
// it. It removes only manifests it wrote (ManagedByAnnotation). One runs per directory (Lock):
// two with different lists would replace each other's holders.
type StaticPodSyncer struct {
	// Dir is the kubelet's staticPodPath.
	Dir     string
	Options Options
	Runtime Runtime
}

// lockName is the lock file in Dir that keeps a second image-keeper from syncing the same
// directory (a dot file: the kubelet ignores it).
const lockName = ".image-keeper-holder.lock"

// Lock takes the directory's holder lock (flock) for the life of the process, or fails at once
// when another process holds it: two syncers with different lists would replace each other's
// holders. Call release to let it go.
func (s *StaticPodSyncer) Lock() (release func(), err error) {
	path := filepath.Join(s.Dir, lockName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("another image-keeper keeps the holder static pod in %s (it holds %s); run one per node", s.Dir, path)
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return func() { f.Close() }, nil
}

// Sync moves the node one step towards holding refs and reports where it stands. What the
// running holders hold is read first, so that a refused list still reports it.
func (s *StaticPodSyncer) Sync(ctx context.Context, refs []string) State {
	logger := klog.FromContext(ctx)
	var st State
	running, err := s.running(ctx)
	if err != nil {
		st.Message = fmt.Sprintf("list the runtime's pods: %v", err)
		return st
	}
	managed, err := s.managed()
	if err != nil {
		st.Message = fmt.Sprintf("read the static pod directory: %v", err)
		return st
	}
	st.Held = map[string]string{}
	for name := range running {
		st.Holding = append(st.Holding, name)
		if pod, ok := managed[name]; ok {
			for _, v := range pod.Spec.Volumes {
				if v.Image != nil {
					st.Held[v.Image.Reference] = name
				}
			}
		}
	}
	sort.Strings(st.Holding)

	pod, err := StaticPod(refs, s.Options)
	if err != nil {
		st.Message = err.Error()
		return st
	}
	pod.Annotations[ManagedByAnnotation] = "image-keeper"
	st.Wanted = pod.Name
	if _, ok := managed[pod.Name]; !ok {
		data, err := yaml.Marshal(pod)
		if err != nil {
			st.Message = err.Error()
			return st
		}
		if err := configfile.WriteDurable(filepath.Join(s.Dir, pod.Name+".yaml"), data); err != nil {
			st.Message = fmt.Sprintf("write the holder's static pod manifest: %v", err)
			return st
		}
		logger.Info("Wrote the holder static pod; the previous holder stays until it runs", "pod", pod.Name, "images", len(refs))
	}
	if !running[pod.Name] {
		st.Message = "waiting for the kubelet to pull and mount the images of " + pod.Name
		return st
	}
	for name := range managed {
		if name == pod.Name {
			continue
		}
		path := filepath.Join(s.Dir, name+".yaml")
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			st.Message = fmt.Sprintf("remove the previous holder's manifest: %v", err)
			return st
		}
		logger.Info("Removed a previous holder static pod: the new one holds the images", "manifest", path)
	}
	return st
}

// managed reads the manifests this syncer wrote: regular files (not symlinks) named
// NamePrefix-<16 hex>.yaml that hold a pod of that name with ManagedByAnnotation.
func (s *StaticPodSyncer) managed() (map[string]*corev1.Pod, error) {
	entries, err := os.ReadDir(s.Dir)
	if err != nil {
		return nil, err
	}
	out := map[string]*corev1.Pod{}
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), ".yaml")
		if !ok || !e.Type().IsRegular() || !holderName(name) {
			continue
		}
		data, err := os.ReadFile(filepath.Join(s.Dir, e.Name()))
		if err != nil {
			continue
		}
		var pod corev1.Pod
		if err := yaml.Unmarshal(data, &pod); err != nil || pod.Name != name || pod.Annotations[ManagedByAnnotation] == "" {
			continue
		}
		out[name] = &pod
	}
	return out, nil
}

// holderName reports whether name is NamePrefix-<16 lowercase hex digits>.
func holderName(name string) bool {
	hash, ok := strings.CutPrefix(name, NamePrefix+"-")
	if !ok || len(hash) != 16 {
		return false
	}
	_, err := hex.DecodeString(hash)
	return err == nil && strings.ToLower(hash) == hash
}

// running returns the names of the holder static pods whose container runs: a ready sandbox
// from the kubelet's file source (kubernetes.io/config.source, which the kubelet sets on every
// pod, so a pod created through the API server cannot pass for one) in the holder's namespace,
// named <holder name>-<node name>, with a running container named ContainerName.
func (s *StaticPodSyncer) running(ctx context.Context) (map[string]bool, error) {
	sandboxes, err := s.Runtime.ListPodSandbox(ctx)
	if err != nil {
		return nil, err
	}
	holders := map[string]string{} // sandbox ID -> holder name
	for _, sb := range sandboxes {
		labels := sb.GetLabels()
		if sb.GetState() != runtimeapi.PodSandboxState_SANDBOX_READY ||
			sb.GetAnnotations()["kubernetes.io/config.source"] != "file" ||
			labels["io.kubernetes.pod.namespace"] != namespace(s.Options) {
			continue
		}
		podName := labels["io.kubernetes.pod.name"]
		if len(podName) < len(NamePrefix)+18 || podName[len(NamePrefix)+17] != '-' || !holderName(podName[:len(NamePrefix)+17]) {
			continue
		}
		holders[sb.GetId()] = podName[:len(NamePrefix)+17]
	}
	containers, err := s.Runtime.ListContainers(ctx)
	if err != nil {
		return nil, err
	}
	out := map[string]bool{}
	for _, c := range containers {
		name, ok := holders[c.GetPodSandboxId()]
		if ok && c.GetState() == runtimeapi.ContainerState_CONTAINER_RUNNING && c.GetMetadata().GetName() == ContainerName {
			out[name] = true
		}
	}
	return out, nil
}
