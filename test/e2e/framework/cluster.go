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
	"path/filepath"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

// JoinControlPlane gives the node a pod network, starts a control plane on the network's host
// address under Root/control-plane, waits until it can run pods (the controller manager made the
// default service account), and sets the node's kubelet to join it. Call it before
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
	if n.KubeletKubeconfig, err = cp.NodeKubeconfig(NodeName); err != nil {
		return cp, nil, errors.Join(err, cp.Stop())
	}
	return cp, client, nil
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
