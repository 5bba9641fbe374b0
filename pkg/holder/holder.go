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

// Package holder keeps images on a kubelet that cannot be replaced: a pod (the holder) mounts
// each wanted image as an image volume. The kubelet pulls them for the pod, with the pod's or the
// node's credentials, and its image garbage collector counts an image that a container mounts
// as in use (handleImageVolumes in pkg/kubelet/images/image_gc_manager.go; ImageVolume is GA
// and locked on since Kubernetes 1.36), so it never collects them while the holder runs.
//
// The holder's container is image-keeper's own image running `image-keeper hold`: one static
// binary, no shell, that waits for SIGTERM. A static holder's name carries a hash of the whole
// pod, so any change (the list, the holder's image) is a new pod, started before the old one goes
// (StaticPodSyncer); a DaemonSet rolls with maxSurge 1 and maxUnavailable 0.
package holder

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/kubelet-imagecache/kubelet-imagecache/pkg/kubelet/images/allowlist"
	"github.com/kubelet-imagecache/kubelet-imagecache/pkg/nodestatus"
)

const (
	// NamePrefix names the holder's pods, static pod manifests and DaemonSet.
	NamePrefix = "image-keeper-holder"
	// ContainerName is the holder container's name.
	ContainerName = "holder"
	// MountRoot is where the container mounts image i, at MountRoot/<i>.
	MountRoot = "/held"
	// HashAnnotation on the holder pod is the hash of the list it holds: nodestatus.WantedHash,
	// the same as the node's wanted-hash annotation when the lists agree.
	HashAnnotation = "imagekeeper.kubelet-imagecache.io/held-hash"
	// MaxImages caps a holder's list: each image is a mount in the container and a pull the
	// kubelet makes before the pod starts. A longer list is a registry mirror's job.
	MaxImages = 500
	// nonRootUID is the holder's user: it reads nothing and writes nothing.
	nonRootUID = 65532
)

// Options are what an operator chooses for the holder.
type Options struct {
	// Image is the holder container's image: image-keeper's (make image), run as
	// `image-keeper hold`.
	Image string
	// Namespace of the static pod or DaemonSet (default kube-system).
	Namespace string
	// PriorityClassName decides who wins when the node runs out of disk (docs/image-keeper.md,
	// "Holder mode"): "" leaves the holder at the default priority.
	PriorityClassName string
	// ImagePullSecrets are the names of secrets the kubelet uses to pull the held images (and the
	// holder's own) for a DaemonSet; a static pod cannot name secrets and uses the node's
	// credentials.
	ImagePullSecrets []string
}

// Validate checks a holder's list: at most MaxImages, each a reference a runtime can pull (a
// tag or a digest, no pattern), each once. Errors name the entry.
func Validate(refs []string) error {
	if len(refs) == 0 {
		return errors.New("no images to hold")
	}
	if len(refs) > MaxImages {
		return fmt.Errorf("%d images to hold: at most %d, each is a mount in the holder and a pull before it starts", len(refs), MaxImages)
	}
	seen := map[string]int{}
	var errs []error
	for i, ref := range refs {
		if err := validateRef(ref); err != nil {
			errs = append(errs, fmt.Errorf("image %d %q: %w", i, ref, err))
			continue
		}
		if j, dup := seen[ref]; dup {
			errs = append(errs, fmt.Errorf("image %d %q: duplicate of image %d", i, ref, j))
		}
		seen[ref] = i
	}
	return errors.Join(errs...)
}

// validateRef applies the rule image-keeper's list follows (keeper.Load): one pullable image,
// parsed as the kubelet's allowlist parses it.
func validateRef(ref string) error {
	p, err := allowlist.ParseExtendedPattern(ref)
	if err != nil {
		return err
	}
	if !p.Pullable() {
		return fmt.Errorf("an image volume needs one pullable image, a repository with a tag or a digest, not a %s pattern", p.Kind)
	}
	return nil
}

// PodSpec is the holder's pod: one container of opts.Image running `image-keeper hold`, the
// images mounted read-only at MountRoot/<i>, with the least it can run with: no service account
// token, a non-root user, a read-only root, no capabilities, a few MiB of memory.
func PodSpec(refs []string, opts Options) corev1.PodSpec {
	var volumes []corev1.Volume
	var mounts []corev1.VolumeMount
	for i, ref := range refs {
		name := "image-" + strconv.Itoa(i)
		volumes = append(volumes, corev1.Volume{
			Name:         name,
			VolumeSource: corev1.VolumeSource{Image: &corev1.ImageVolumeSource{Reference: ref, PullPolicy: corev1.PullIfNotPresent}},
		})
		mounts = append(mounts, corev1.VolumeMount{Name: name, MountPath: MountRoot + "/" + strconv.Itoa(i), ReadOnly: true})
	}
	var secrets []corev1.LocalObjectReference
	for _, s := range opts.ImagePullSecrets {
		secrets = append(secrets, corev1.LocalObjectReference{Name: s})
	}
	resources := corev1.ResourceList{
		corev1.ResourceCPU:    resource.MustParse("1m"),
		corev1.ResourceMemory: resource.MustParse("16Mi"),
	}
	return corev1.PodSpec{
		Containers: []corev1.Container{{
			Name:            ContainerName,
			Image:           opts.Image,
			ImagePullPolicy: corev1.PullIfNotPresent,
			Args:            []string{"hold"},
			VolumeMounts:    mounts,
			// Requests what it uses; the memory limit bounds a Go process that only waits.
			Resources: corev1.ResourceRequirements{Requests: resources, Limits: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("32Mi")}},
			SecurityContext: &corev1.SecurityContext{
				RunAsNonRoot:             ptr.To(true),
				RunAsUser:                ptr.To[int64](nonRootUID),
				RunAsGroup:               ptr.To[int64](nonRootUID),
				ReadOnlyRootFilesystem:   ptr.To(true),
				AllowPrivilegeEscalation: ptr.To(false),
				Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
				SeccompProfile:           &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
			},
		}},
		Volumes:                       volumes,
		ImagePullSecrets:              secrets,
		AutomountServiceAccountToken:  ptr.To(false),
		EnableServiceLinks:            ptr.To(false),
		TerminationGracePeriodSeconds: ptr.To[int64](5),
		PriorityClassName:             opts.PriorityClassName,
		// It holds images on every node, tainted or not, including one that image-keeper's
		// startup taint keeps from taking pods until its cache is warm.
		Tolerations: []corev1.Toleration{{Operator: corev1.TolerationOpExists}},
	}
}

// sorted is refs in order, so that one set of images renders one pod.
func sorted(refs []string) []string {
	out := slices.Clone(refs)
	slices.Sort(out)
	return out
}

func namespace(opts Options) string {
	if opts.Namespace == "" {
		return "kube-system"
	}
	return opts.Namespace
}

func labels() map[string]string {
	return map[string]string{"app.kubernetes.io/name": NamePrefix, "app.kubernetes.io/part-of": "image-keeper"}
}

// StaticPod is the holder as a static pod for the kubelet's staticPodPath, named
// NamePrefix-<16 hex digits of the pod's hash>: a pod that differs in anything (its list, its
// image) has another name, so the kubelet runs it beside the old one instead of replacing it in
// place (it stops a static pod before it starts another of the same name).
func StaticPod(refs []string, opts Options) (*corev1.Pod, error) {
	if err := Validate(refs); err != nil {
		return nil, err
	}
	if len(opts.ImagePullSecrets) > 0 {
		return nil, errors.New("a static pod cannot name image pull secrets; the kubelet pulls its images with the node's credentials")
	}
	refs = sorted(refs)
	pod := &corev1.Pod{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{
			Namespace:   namespace(opts),
			Labels:      labels(),
			Annotations: map[string]string{HashAnnotation: nodestatus.WantedHash(refs)},
		},
		Spec: PodSpec(refs, opts),
	}
	data, err := json.Marshal(pod)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(data)
	pod.Name = NamePrefix + "-" + hex.EncodeToString(sum[:8])
	return pod, nil
}

// DaemonSet is the holder on every node of a cluster. A list change rolls out with maxSurge 1
// and maxUnavailable 0: on each node the new pod holds the new list (every image pulled and
// mounted: Ready) before the old pod is deleted, so no image is unprotected in between.
func DaemonSet(refs []string, opts Options) (*appsv1.DaemonSet, error) {
	if err := Validate(refs); err != nil {
		return nil, err
	}
	refs = sorted(refs)
	l := labels()
	return &appsv1.DaemonSet{
		TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "DaemonSet"},
		ObjectMeta: metav1.ObjectMeta{Name: NamePrefix, Namespace: namespace(opts), Labels: l},
		Spec: appsv1.DaemonSetSpec{
			Selector: &metav1.LabelSelector{MatchLabels: l},
			UpdateStrategy: appsv1.DaemonSetUpdateStrategy{
				Type: appsv1.RollingUpdateDaemonSetStrategyType,
				RollingUpdate: &appsv1.RollingUpdateDaemonSet{
					MaxSurge:       ptr.To(intstr.FromInt32(1)),
					MaxUnavailable: ptr.To(intstr.FromInt32(0)),
				},
			},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: l, Annotations: map[string]string{HashAnnotation: nodestatus.WantedHash(refs)}},
				Spec:       PodSpec(refs, opts),
			},
		},
	}, nil
}
