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
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

// JoinControlPlane gives the node a pod network, starts a control plane on the network's host
// address under Root/control-plane, waits until it can run pods (the controller manager made the
// default service account), and sets the node's kubelet to join it (Join). Call it before
// StartContainerd; stop the control plane with its Stop.
func (n *Node) JoinControlPlane() (*ControlPlane, kubernetes.Interface, error) {
	n.PodNetwork = true
	gateway, err := n.PodNetworkGateway()
	if err != nil {
		return nil, nil, err
	}
	cp, err := StartControlPlane(filepath.Join(n.Root, "control-plane"), n.Bin, gateway)
	if err != nil {
		return nil, nil, err
	}
	client, err := cp.Client()
	if err != nil {
		return cp, nil, errors.Join(err, cp.Stop())
	}
	if !Eventually(time.Minute, 500*time.Millisecond, func() bool {
		_, err := client.CoreV1().ServiceAccounts("default").Get(context.Background(), "default", metav1.GetOptions{})
		return err == nil
	}) {
		return cp, nil, errors.Join(fmt.Errorf("no default service account after a minute; kube-controller-manager: %s", Tail(cp.ControllerManager, 20)), cp.Stop())
	}
	if err := n.Join(cp); err != nil {
		return cp, nil, errors.Join(err, cp.Stop())
	}
	return cp, client, nil
}

// Join sets the node's kubelet to join cp as node Name, with a pod network of its own (its own
// bridge and subnet): a further node of a cluster whose control plane another node started. Call
// it before StartRuntime.
func (n *Node) Join(cp *ControlPlane) error {
	n.PodNetwork = true
	var err error
	n.KubeletKubeconfig, err = cp.NodeKubeconfig(n.Name)
	return err
}

// Client is a clientset of the control plane's admin.
func (cp *ControlPlane) Client() (kubernetes.Interface, error) {
	restConfig, err := clientcmd.BuildConfigFromFlags("", cp.AdminKubeconfig)
	if err != nil {
		return nil, err
	}
	return kubernetes.NewForConfig(restConfig)
}

// NodeCondition returns the node's condition of that type, nil if it has none (or node is nil).
func NodeCondition(node *corev1.Node, typ corev1.NodeConditionType) *corev1.NodeCondition {
	if node == nil {
		return nil
	}
	for i := range node.Status.Conditions {
		if node.Status.Conditions[i].Type == typ {
			return &node.Status.Conditions[i]
		}
	}
	return nil
}

// HasTaint reports whether the node has a taint with that key.
func HasTaint(node *corev1.Node, key string) bool {
	if node == nil {
		return false
	}
	for _, t := range node.Spec.Taints {
		if t.Key == key {
			return true
		}
	}
	return false
}

// Pod is a pod of one container that runs image in the default namespace (no pull if present,
// stopped at once), what the cluster scenarios schedule against the warm-node gate.
func Pod(name, image string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
		Spec: corev1.PodSpec{
			TerminationGracePeriodSeconds: new(int64),
			Containers:                    []corev1.Container{{Name: name, Image: image, ImagePullPolicy: corev1.PullIfNotPresent}},
		},
	}
}

// Deployment is a one-replica Deployment of image in the default namespace, pulled
// IfNotPresent, that tolerates nothing special.
func Deployment(name, image string) *appsv1.Deployment {
	replicas := int32(1)
	labels := map[string]string{"app": name}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					TerminationGracePeriodSeconds: new(int64),
					Containers:                    []corev1.Container{{Name: name, Image: image, ImagePullPolicy: corev1.PullIfNotPresent}},
				},
			},
		},
	}
}

// DocBlock returns the body of the fenced code block (```lang) that follows marker in the doc
// at path: the examples the tests and demos run.
func DocBlock(path, marker, lang string) (string, error) {
	doc, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	_, block, ok := strings.Cut(string(doc), marker+"\n```"+lang+"\n")
	if !ok {
		return "", fmt.Errorf("%s has no %s block after %s", path, lang, marker)
	}
	block, _, _ = strings.Cut(block, "```")
	return block, nil
}
