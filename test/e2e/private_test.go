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
	"context"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kubeletv1beta1 "k8s.io/kubelet/config/v1beta1"

	"github.com/kubelet-imagecache/kubelet-imagecache/test/e2e/framework"
)

// Private images image-keeper cached, and the kubelet's imagePullCredentialsVerificationPolicy
// (KEP-2535): image-keeper pulls with its own login, so the kubelet has no record of the pull and
// counts the image as preloaded. Under the default policy (NeverVerifyPreloadedImages) a pod
// without pull secrets runs it, registry up or down, and image-keeper's status says so. Under
// AlwaysVerify a pod without pull secrets cannot run it; one with a pull secret runs it once the
// kubelet has checked that secret against the registry, and, after that, also with the registry
// down; with the registry down nothing else is checked, so no pod without secrets starts. An
// image the kubelet itself pulled with credentials is no longer preloaded, under any policy:
// back on the default one, offline, a pod without secrets runs the image the kubelet never
// pulled and not the one it did.
func TestPrivateImagesPolicy(t *testing.T) {
	t.Parallel()
	c := newClusterNode(t, func(n *framework.Node) {
		n.RegistryUser, n.RegistryPassword = "e2e", fmt.Sprintf("pw-%d", time.Now().UnixNano())
	})
	ctx := context.Background()
	private := push(t, c.Node, framework.ImageSpec{Repository: "e2e/private", Tag: "1"})
	untouched := push(t, c.Node, framework.ImageSpec{Repository: "e2e/private-untouched", Tag: "1"})
	pause := startRuntimeWithPause(t, c.Node)
	pull(t, c.Node, pause.Ref) // the runtime has no login for its sandbox image: pre-loaded
	startKubelet := func(name string, policy kubeletv1beta1.ImagePullCredentialsVerificationPolicy) string {
		t.Helper()
		// NoPressure: no threshold image GC pass. One hands its post-GC hooks only the unused
		// images it left (upstream v1.37.2's freeSpace), so the pull manager's
		// PruneUnknownRecords drops the records of the images in use, and an image the
		// kubelet pulled with credentials counts as preloaded again (docs/image-keeper.md).
		config, err := c.WriteKubeletConfig(name, framework.KubeletConfig{NoPressure: true, Customize: func(kc *kubeletv1beta1.KubeletConfiguration) {
			kc.ImagePullCredentialsVerificationPolicy = policy
		}})
		if err != nil {
			t.Fatal(err)
		}
		if err := c.StartKubelet(config); err != nil {
			t.Fatal(err)
		}
		if !framework.Eventually(2*time.Minute, time.Second, func() bool {
			node, err := c.client.CoreV1().Nodes().Get(ctx, c.Name, metav1.GetOptions{})
			ready := framework.NodeCondition(node, corev1.NodeReady)
			return err == nil && ready != nil && ready.Status == corev1.ConditionTrue
		}) {
			t.Fatalf("the node is not Ready; kubelet: %s", framework.Tail(c.Kubelet, 20))
		}
		return config
	}
	config := startKubelet("kubelet", "")

	// image-keeper pulls the private image with its own login and flags it.
	auth := base64.StdEncoding.EncodeToString([]byte(c.RegistryUser + ":" + c.RegistryPassword))
	dockerConfig := fmt.Sprintf(`{"auths":{%q:{"auth":%q}}}`, c.RegistryAddr, auth)
	loginFile := filepath.Join(c.Root, "docker-config.json")
	if err := os.WriteFile(loginFile, []byte(dockerConfig), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := runKeeperOnce(t, c.Node, "keeper-private", "--image", private.Ref, "--image", untouched.Ref, "--docker-config", loginFile, "--kubelet-config", config)
	if err != nil || !present(t, c.Node)[private.Ref] || !present(t, c.Node)[untouched.Ref] {
		t.Fatalf("image-keeper did not pull the private image (%v):\n%s", err, out)
	}
	if !strings.Contains(out, "2 images were pulled with a registry login, not by the kubelet: under its imagePullCredentialsVerificationPolicy (NeverVerifyPreloadedImages) any pod on this node may run them without pull secrets") {
		t.Errorf("image-keeper's status does not flag the private image any pod may run:\n%s", out)
	}

	secret := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "regcred", Namespace: "default"},
		Type:       corev1.SecretTypeDockerConfigJson,
		Data:       map[string][]byte{corev1.DockerConfigJsonKey: []byte(dockerConfig)},
	}
	if _, err := c.client.CoreV1().Secrets("default").Create(ctx, secret, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// start starts a pod of image on the node, with the pull secret or none.
	start := func(name string, image *framework.Image, withSecret bool) {
		t.Helper()
		pod := framework.Pod(name, image.Ref)
		pod.Spec.NodeName = c.Name
		if withSecret {
			pod.Spec.ImagePullSecrets = []corev1.LocalObjectReference{{Name: secret.Name}}
		}
		if _, err := c.client.CoreV1().Pods("default").Create(ctx, pod, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	// pullError is the kubelet's ErrImagePull or ImagePullBackOff message of a pod, "" if none.
	pullError := func(p *corev1.Pod) string {
		for _, cs := range p.Status.ContainerStatuses {
			if w := cs.State.Waiting; w != nil && (w.Reason == "ErrImagePull" || w.Reason == "ImagePullBackOff") {
				return w.Reason + ": " + w.Message
			}
		}
		return ""
	}
	// runs starts a pod that must run. A failed pull before that is not the answer: the kubelet
	// retries, and one that could not read the pull secret in time (its secret manager waits a
	// second for its first sync) pulls without it once.
	runs := func(name string, image *framework.Image, withSecret bool) bool {
		t.Helper()
		start(name, image, withSecret)
		last := ""
		ok := framework.Eventually(2*time.Minute, time.Second, func() bool {
			p, err := c.client.CoreV1().Pods("default").Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return false
			}
			if msg := pullError(p); msg != "" && msg != last {
				t.Logf("pod %s (retried by the kubelet): %s", name, msg)
				last = msg
			}
			return p.Status.Phase == corev1.PodRunning
		})
		if !ok {
			t.Logf("pod %s did not run; kubelet: %s", name, framework.Tail(c.Kubelet, 20))
		}
		return ok
	}
	// refused starts a pod that the kubelet must not run for want of credentials: its pull
	// fails with the registry's answer (wantErr), and it has not run.
	refused := func(name string, image *framework.Image, withSecret bool, wantErr string) bool {
		t.Helper()
		start(name, image, withSecret)
		var p *corev1.Pod
		if !framework.Eventually(2*time.Minute, time.Second, func() bool {
			var err error
			p, err = c.client.CoreV1().Pods("default").Get(ctx, name, metav1.GetOptions{})
			return err == nil && (p.Status.Phase == corev1.PodRunning || pullError(p) != "")
		}) {
			t.Fatalf("pod %s neither runs nor fails to get its image; kubelet: %s", name, framework.Tail(c.Kubelet, 20))
		}
		msg := pullError(p)
		t.Logf("pod %s: phase %s, %s", name, p.Status.Phase, msg)
		return p.Status.Phase != corev1.PodRunning && strings.Contains(msg, wantErr)
	}
	const (
		noLogin = "no basic auth credentials"
		offline = "connection refused"
	)

	if !runs("default-no-secret", private, false) {
		t.Error("default policy: a pod without pull secrets could not run the private image image-keeper cached")
	}
	c.StopKubelet()
	startKubelet("kubelet-always-verify", kubeletv1beta1.AlwaysVerify)
	if !refused("verify-no-secret", private, false, noLogin) {
		t.Errorf("AlwaysVerify: a pod without pull secrets was not refused the private image for want of a login (%q)", noLogin)
	}
	if !runs("verify-secret", private, true) {
		t.Error("AlwaysVerify: a pod with a valid pull secret could not run the private image")
	}

	// Offline. A refusal for want of the registry counts only while the image is on the node.
	c.Registry.Stop(5 * time.Second)
	requirePresent := func() {
		t.Helper()
		if !present(t, c.Node)[private.Ref] {
			t.Fatalf("%s is no longer on the node: the offline refusals would not be about credentials", private.Ref)
		}
	}
	if !runs("verify-secret-offline", private, true) {
		t.Error("AlwaysVerify, registry down: a pod with the pull secret the kubelet checked before could not run the image")
	}
	requirePresent()
	if !refused("verify-no-secret-offline", private, false, offline) {
		t.Errorf("AlwaysVerify, registry down: a pod without pull secrets was not refused for want of the registry (%q)", offline)
	}
	// Back to the default policy, still offline: the image the kubelet never pulled is still
	// preloaded, and runs without secrets; the one it pulled with a secret (under AlwaysVerify)
	// is no longer preloaded, and a pod without secrets needs the registry to be checked.
	c.StopKubelet()
	startKubelet("kubelet-default-again", "")
	if !runs("default-no-secret-offline", untouched, false) {
		t.Error("default policy, registry down: a pod without pull secrets could not run the cached image")
	}
	requirePresent()
	if !refused("default-no-secret-offline-pulled", private, false, offline) {
		t.Errorf("default policy, registry down: a pod without pull secrets was not refused an image the kubelet had pulled with credentials (want %q)", offline)
	}
}
