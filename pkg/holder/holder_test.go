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
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"sigs.k8s.io/yaml"
)

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		refs []string
		want string // "" for valid
	}{
		{[]string{"docker.io/library/nginx:1.27", "ghcr.io/acme/agent@sha256:" + strings.Repeat("a", 64)}, ""},
		{[]string{"nginx:1.27"}, ""},
		{nil, "no images to hold"},
		{[]string{"ghcr.io/acme/*"}, `image 0 "ghcr.io/acme/*": an image volume needs one pullable image, a repository with a tag or a digest, not a repository pattern`},
		{[]string{"nginx:1", "ghcr.io/acme/agent"}, `image 1 "ghcr.io/acme/agent": an image volume needs one pullable image, a repository with a tag or a digest, not a repository pattern`},
		{[]string{"nginx:1", "nginx:1"}, `image 1 "nginx:1": duplicate of image 0`},
		{[]string{"Nginx:1"}, `image 0 "Nginx:1": repository name must be lowercase`},
	} {
		err := Validate(tc.refs)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("Validate(%q) = %v; want nil", tc.refs, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("Validate(%q) = %v; want an error containing %q", tc.refs, err, tc.want)
		}
	}
	many := make([]string, MaxImages+1)
	for i := range many {
		many[i] = fmt.Sprintf("registry.example/app:%d", i)
	}
	if err := Validate(many); err == nil || !strings.Contains(err.Error(), "at most 500") {
		t.Errorf("Validate(%d images) = %v; want the cap", len(many), err)
	}
}

// The holder mounts each image read-only, runs `hold` with the least privilege, tolerates every
// taint, and a DaemonSet rolls make-before-break.
func TestManifests(t *testing.T) {
	refs := []string{"docker.io/library/nginx:1.27", "registry.example/app:1"}
	opts := Options{Image: "registry.example/image-keeper:v1", PriorityClassName: "low", ImagePullSecrets: []string{"regcred"}}
	ds, err := DaemonSet(refs, opts)
	if err != nil {
		t.Fatal(err)
	}
	spec := ds.Spec.Template.Spec
	c := spec.Containers[0]
	if c.Image != opts.Image || strings.Join(c.Args, " ") != "hold" {
		t.Errorf("container %s %v; want %s hold", c.Image, c.Args, opts.Image)
	}
	for i, ref := range refs {
		v, m := spec.Volumes[i], c.VolumeMounts[i]
		if v.Image == nil || v.Image.Reference != ref || v.Image.PullPolicy != corev1.PullIfNotPresent || m.Name != v.Name || !m.ReadOnly || m.MountPath != fmt.Sprintf("/held/%d", i) {
			t.Errorf("image %d: volume %+v mount %+v", i, v, m)
		}
	}
	sc := c.SecurityContext
	if !*sc.RunAsNonRoot || !*sc.ReadOnlyRootFilesystem || *sc.AllowPrivilegeEscalation || len(sc.Capabilities.Drop) != 1 || sc.Capabilities.Drop[0] != "ALL" || *spec.AutomountServiceAccountToken {
		t.Errorf("the holder runs with more privilege than it needs: %+v, token %v", sc, *spec.AutomountServiceAccountToken)
	}
	if len(spec.Tolerations) != 1 || spec.Tolerations[0].Operator != corev1.TolerationOpExists {
		t.Errorf("tolerations %+v; want every taint tolerated", spec.Tolerations)
	}
	if spec.PriorityClassName != "low" || spec.ImagePullSecrets[0].Name != "regcred" {
		t.Errorf("priority %q, secrets %+v", spec.PriorityClassName, spec.ImagePullSecrets)
	}
	ru := ds.Spec.UpdateStrategy.RollingUpdate
	if ru.MaxSurge.IntValue() != 1 || ru.MaxUnavailable.IntValue() != 0 {
		t.Errorf("rolling update %+v; want maxSurge 1, maxUnavailable 0", ru)
	}
	if _, err := StaticPod(refs, opts); err == nil || !strings.Contains(err.Error(), "cannot name image pull secrets") {
		t.Errorf("a static pod with pull secrets: %v", err)
	}
	if _, err := DaemonSet([]string{"ghcr.io/acme/*"}, opts); err == nil {
		t.Error("a DaemonSet holding a pattern was rendered")
	}
	// Anything that changes the pod changes the static pod's name: the list, the holder's image.
	noSecrets := Options{Image: opts.Image}
	if name(t, []string{"a:1"}, noSecrets) == name(t, []string{"a:2"}, noSecrets) ||
		name(t, []string{"a:1"}, noSecrets) == name(t, []string{"a:1"}, Options{Image: "registry.example/image-keeper:v2"}) ||
		name(t, []string{"b:1", "a:1"}, noSecrets) != name(t, []string{"a:1", "b:1"}, noSecrets) {
		t.Error("the static pod's name does not follow the pod")
	}
}

func name(t *testing.T, refs []string, opts Options) string {
	t.Helper()
	pod, err := StaticPod(refs, opts)
	if err != nil {
		t.Fatal(err)
	}
	return pod.Name
}

// fakeRuntime is what a runtime lists for the pods the kubelet runs: running names pods
// (<static pod>-<node>) from the kubelet's file source in kube-system, each with a running
// holder container; and, every time, pods that must not count.
type fakeRuntime struct{ running []string }

func (f *fakeRuntime) ListPodSandbox(context.Context) ([]*runtimeapi.PodSandbox, error) {
	sandbox := func(id, pod, namespace, source string, state runtimeapi.PodSandboxState) *runtimeapi.PodSandbox {
		return &runtimeapi.PodSandbox{Id: id, State: state,
			Labels:      map[string]string{"io.kubernetes.pod.name": pod, "io.kubernetes.pod.namespace": namespace},
			Annotations: map[string]string{"kubernetes.io/config.source": source}}
	}
	var out []*runtimeapi.PodSandbox
	for i, pod := range f.running {
		out = append(out, sandbox(fmt.Sprint("s", i), pod, "kube-system", "file", runtimeapi.PodSandboxState_SANDBOX_READY))
	}
	for _, pod := range f.running {
		// The same name through the API server, or in another namespace, or not ready.
		out = append(out,
			sandbox("api-"+pod, pod, "kube-system", "api", runtimeapi.PodSandboxState_SANDBOX_READY),
			sandbox("ns-"+pod, pod, "default", "file", runtimeapi.PodSandboxState_SANDBOX_READY),
			sandbox("nr-"+pod, pod, "kube-system", "file", runtimeapi.PodSandboxState_SANDBOX_NOTREADY))
	}
	return out, nil
}

func (f *fakeRuntime) ListContainers(ctx context.Context) ([]*runtimeapi.Container, error) {
	sandboxes, _ := f.ListPodSandbox(ctx)
	var out []*runtimeapi.Container
	for _, sb := range sandboxes {
		if strings.HasPrefix(sb.Id, "s") {
			out = append(out, &runtimeapi.Container{PodSandboxId: sb.Id, State: runtimeapi.ContainerState_CONTAINER_RUNNING, Metadata: &runtimeapi.ContainerMetadata{Name: ContainerName}})
			out = append(out, &runtimeapi.Container{PodSandboxId: sb.Id, State: runtimeapi.ContainerState_CONTAINER_RUNNING, Metadata: &runtimeapi.ContainerMetadata{Name: "sidecar"}})
			continue
		}
		// The impostors run a holder container too: only their sandbox tells them apart.
		out = append(out, &runtimeapi.Container{PodSandboxId: sb.Id, State: runtimeapi.ContainerState_CONTAINER_RUNNING, Metadata: &runtimeapi.ContainerMetadata{Name: ContainerName}})
	}
	return out, nil
}

func manifests(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		out = append(out, e.Name())
	}
	sort.Strings(out)
	return out
}

// Make-before-break: the old manifest goes only once the new pod's container runs; a pod of the
// same name from the API server or another namespace does not count; a manifest the syncer did
// not write is never touched; a refused list still reports what is held.
func TestStaticPodSyncer(t *testing.T) {
	dir := t.TempDir()
	opts := Options{Image: "registry.example/image-keeper:v1"}
	v1 := []string{"registry.example/a:1", "registry.example/b:1"}
	v2 := []string{"registry.example/a:1", "registry.example/c:1"}
	// Not the syncer's: another static pod, and a holder rendered by hand (holder-manifest).
	if err := os.WriteFile(filepath.Join(dir, "etcd.yaml"), []byte("kind: Pod\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	byHand, err := StaticPod([]string{"registry.example/manual:1"}, opts)
	if err != nil {
		t.Fatal(err)
	}
	byHandYAML, _ := yaml.Marshal(byHand)
	if err := os.WriteFile(filepath.Join(dir, byHand.Name+".yaml"), byHandYAML, 0o644); err != nil {
		t.Fatal(err)
	}
	runtime := &fakeRuntime{}
	s := &StaticPodSyncer{Dir: dir, Options: opts, Runtime: runtime}
	ctx := context.Background()
	n1, n2 := name(t, v1, opts), name(t, v2, opts)

	// The impostors (API, other namespace, not ready) run under v1's name: not held.
	runtime.running = nil
	st := s.Sync(ctx, v1)
	if len(st.Holding) != 0 || !strings.Contains(st.Message, "waiting for the kubelet") || st.Wanted != n1 {
		t.Errorf("before the kubelet runs it: %+v", st)
	}
	data, err := os.ReadFile(filepath.Join(dir, n1+".yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var pod corev1.Pod
	if err := yaml.UnmarshalStrict(data, &pod); err != nil || len(pod.Spec.Volumes) != 2 || pod.Annotations[ManagedByAnnotation] == "" {
		t.Fatalf("the manifest is not the holder pod: %v\n%s", err, data)
	}
	if info, err := os.Stat(filepath.Join(dir, n1+".yaml")); err != nil || info.Mode().Perm() != 0o600 {
		t.Errorf("manifest mode %v, %v; want 0600", info.Mode(), err)
	}
	runtime.running = []string{n1 + "-node-1"}
	if st := s.Sync(ctx, v1); st.Message != "" || st.Held["registry.example/b:1"] != n1 || len(st.Held) != 2 {
		t.Errorf("once it runs: %+v", st)
	}

	st = s.Sync(ctx, v2)
	if got, want := manifests(t, dir), sortStrings([]string{n1 + ".yaml", n2 + ".yaml", "etcd.yaml", byHand.Name + ".yaml"}); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("while the new holder starts, manifests %v; want %v (both holders)", got, want)
	}
	if st.Held["registry.example/b:1"] != n1 || st.Held["registry.example/c:1"] != "" {
		t.Errorf("while the new holder starts: %+v; want the old list held", st)
	}
	runtime.running = append(runtime.running, n2+"-node-1")
	if st := s.Sync(ctx, v2); st.Message != "" || st.Held["registry.example/c:1"] != n2 {
		t.Errorf("once the new holder runs: %+v", st)
	}
	if got, want := manifests(t, dir), sortStrings([]string{n2 + ".yaml", "etcd.yaml", byHand.Name + ".yaml"}); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("after the switch, manifests %v; want %v", got, want)
	}

	// A new holder image is a new pod too, started beside the old one.
	s.Options.Image = "registry.example/image-keeper:v2"
	runtime.running = []string{n2 + "-node-1"}
	if st := s.Sync(ctx, v2); st.Wanted == n2 || len(manifests(t, dir)) != 4 {
		t.Errorf("a new holder image replaced the holder in place: %+v, manifests %v", st, manifests(t, dir))
	}

	st = s.Sync(ctx, []string{"registry.example/*"})
	if !strings.Contains(st.Message, "not a repository pattern") || st.Held["registry.example/c:1"] != n2 {
		t.Errorf("a refused list: %+v; want the error and what is still held", st)
	}
	if got := manifests(t, dir); len(got) != 4 {
		t.Errorf("a refused list changed the manifests: %v", got)
	}
}

func sortStrings(s []string) []string {
	sort.Strings(s)
	return s
}

// One syncer per directory: a second fails at once, naming the lock; released, it can be taken.
func TestStaticPodSyncerLock(t *testing.T) {
	dir := t.TempDir()
	s := &StaticPodSyncer{Dir: dir}
	release, err := s.Lock()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := (&StaticPodSyncer{Dir: dir}).Lock(); err == nil || !strings.Contains(err.Error(), "another image-keeper keeps the holder static pod in "+dir) {
		t.Errorf("second Lock: %v; want it refused", err)
	}
	release()
	again, err := (&StaticPodSyncer{Dir: dir}).Lock()
	if err != nil {
		t.Fatalf("Lock after release: %v", err)
	}
	again()
}
