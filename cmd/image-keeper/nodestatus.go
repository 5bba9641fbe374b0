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

package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"

	"github.com/kubelet-imagecache/kubelet-imagecache/pkg/configfile"
	"github.com/kubelet-imagecache/kubelet-imagecache/pkg/keeper"
	"github.com/kubelet-imagecache/kubelet-imagecache/pkg/nodestatus"
	"github.com/kubelet-imagecache/kubelet-imagecache/pkg/pullslots"
)

const serviceAccountToken = "/var/run/secrets/kubernetes.io/serviceaccount/token"

// newClient returns a client of the API server, or nil when there is none: no --kubeconfig, and
// no service account token (outside a pod, or automountServiceAccountToken: false). With one,
// image-keeper publishes its node's image cache state and takes the cluster's pull slots.
func newClient(cfg *config) (kubernetes.Interface, error) {
	var restConfig *rest.Config
	var err error
	switch {
	case cfg.kubeconfig != "":
		// Read as every other config file is (a regular file of bounded size, no FIFO): a
		// kubeconfig of /dev/zero would otherwise grow without bound. clientcmd then reads it
		// again, resolving the certificate paths it names relative to it.
		if _, _, err := configfile.Read(cfg.kubeconfig); err != nil {
			return nil, fmt.Errorf("--kubeconfig: %w", err)
		}
		if restConfig, err = clientcmd.BuildConfigFromFlags("", cfg.kubeconfig); err != nil {
			return nil, fmt.Errorf("--kubeconfig %s: %w", cfg.kubeconfig, err)
		}
	case os.Getenv("KUBERNETES_SERVICE_HOST") == "":
		return nil, nil // not in a pod
	default:
		if _, err := os.Stat(serviceAccountToken); os.IsNotExist(err) {
			return nil, nil // a pod without a token: automountServiceAccountToken: false
		}
		if restConfig, err = rest.InClusterConfig(); err != nil {
			return nil, fmt.Errorf("in-cluster config: %w", err)
		}
	}
	if cfg.nodeName == "" {
		return nil, errors.New("publishing the node's image cache state and taking pull slots need the node's name: set --node-name, or NODE_NAME from the downward API (fieldRef: spec.nodeName)")
	}
	restConfig.UserAgent = "image-keeper"
	return kubernetes.NewForConfig(restConfig)
}

// newPublisher returns the node status publisher on client.
func newPublisher(cfg *config, client kubernetes.Interface) *nodestatus.Publisher {
	p := nodestatus.NewPublisher(client, cfg.nodeName)
	p.Heartbeat = cfg.heartbeat
	p.ConditionType, p.TaintKey, p.TaintMode = corev1.NodeConditionType(cfg.conditionType), cfg.taintKey, nodestatus.TaintMode(cfg.taintMode)
	return p
}

// newPullSlots returns the cluster's pull slots on client, nil when --pull-slots is 0.
func newPullSlots(cfg *config, client kubernetes.Interface) (*pullslots.Slots, error) {
	if cfg.pullSlots == 0 {
		return nil, nil
	}
	s, err := pullslots.New(client, cfg.pullSlotNamespace, cfg.nodeName, cfg.pullSlots)
	if err != nil {
		return nil, err
	}
	s.LeaseDuration = cfg.pullSlotLease
	return s, nil
}

// minPublishGap is the least time between two looks at the keeper's state: with thousands of
// images failing, a pull ends every few milliseconds, and each look copies every image's row.
const minPublishGap = time.Second

// publishNodeStatus publishes the keeper's state when a pass or a pull ends (at most once every
// minPublishGap), and every couple of seconds (heartbeats, retries), until ctx is done; the
// publisher calls the API server only on a change or a due heartbeat. A failure is logged when
// it differs from the previous one, and retried on the next tick.
func publishNodeStatus(ctx context.Context, p *nodestatus.Publisher, k *keeper.Keeper) {
	logger := klog.FromContext(ctx)
	ticker := time.NewTicker(2 * time.Second)
	defer ticker.Stop()
	lastErr := ""
	var last time.Time
	for {
		if wait := minPublishGap - time.Since(last); wait > 0 {
			select {
			case <-ctx.Done():
				return
			case <-time.After(wait):
			}
		}
		last = time.Now()
		err := p.Publish(ctx, nodestatus.StateOf(k.Status()))
		switch {
		case err != nil && err.Error() != lastErr && ctx.Err() == nil:
			logger.Error(err, "Publishing the node's image cache state failed; retrying")
			lastErr = err.Error()
		case err == nil && lastErr != "":
			logger.Info("Publishing the node's image cache state works again")
			lastErr = ""
		}
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		case <-k.Updated():
		}
	}
}
