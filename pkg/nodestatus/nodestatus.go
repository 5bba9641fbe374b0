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

// Package nodestatus publishes a node's image cache state on its Node object, with Kubernetes'
// own mechanisms, so that a node takes no pods before its cache is warm:
//
//   - the node condition ImageCacheReady (True when every wanted image is present; the reason
//     and message say how many are missing and which), patched on change and as a heartbeat, the
//     way node-problem-detector publishes its conditions;
//   - the removal of the startup taint StartupTaintKey (NoSchedule), which the kubelet registers
//     the node with (--register-with-taints), once the cache is warm for the first time, the way
//     CNI agents remove their not-ready taint (TaintRemoveOnce); or nothing, when another
//     controller owns the taint (TaintNone, for node-readiness-controller); or its removal and
//     its return while wanted images are missing again (TaintRearm);
//   - the wanted set's hash in the annotation WantedHashAnnotation, so that a rollout of a new
//     image list can be followed node by node.
package nodestatus

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"
	"k8s.io/klog/v2"

	"github.com/kubelet-imagecache/kubelet-imagecache/pkg/keeper"
)

const (
	// ConditionType is the node condition image-keeper owns.
	ConditionType corev1.NodeConditionType = "ImageCacheReady"
	// StartupTaintKey is the taint a node is registered with and image-keeper removes once the
	// cache is warm: kubelet --register-with-taints=imagecache.kubelet-imagecache.io/not-ready=:NoSchedule.
	StartupTaintKey = "imagecache.kubelet-imagecache.io/not-ready"
	// WantedHashAnnotation holds the hash of the wanted images (WantedHash).
	WantedHashAnnotation = "imagecache.kubelet-imagecache.io/wanted-hash"

	// Reasons of the condition.
	ReasonWarm           = "AllImagesPresent"
	ReasonMissing        = "ImagesMissing"
	ReasonNoPass         = "NotReconciled"
	ReasonWaitingKubelet = "KubeletConfigMissing"
	ReasonConfigInvalid  = "ConfigInvalid"
	ReasonNotHeld        = "ImagesNotHeld"

	// waitingForSlot ends the ImagesMissing message while the node waits for one of the
	// cluster's pull slots.
	waitingForSlot = "; waiting for one of the cluster's pull slots"

	// maxListed bounds the images named in the condition's message.
	maxListed = 5
	// maxMessage bounds the condition's message (deploy/admission.yaml allows 4096).
	maxMessage = 1024
)

// State is what the publisher is told after each pass.
type State struct {
	// Wanted are the wanted images' references; Missing those not present.
	Wanted, Missing []string
	// Reconciled is false until a pass has reached the runtime.
	Reconciled bool
	// KubeletConfigMissing says why the kubelet config, which may name wanted images, could not
	// be read yet ("" when read or not used).
	KubeletConfigMissing string
	// ConfigInvalid is the error of the last failed reload, while the previous configuration is
	// in force ("" when the last one loaded).
	ConfigInvalid string
	// Holder names the holder in holder mode ("" otherwise); Unheld are the present wanted
	// images no running holder pod protects yet, HolderPending what the holder waits for.
	Holder, HolderPending string
	Unheld                []string
	// WaitingForSlot says the node waits for one of the cluster's pull slots.
	WaitingForSlot bool
}

// ImagesMissing says a pass found wanted images missing, or, in holder mode, not held: what a
// re-arming gate taints the node for.
func (s State) ImagesMissing() bool {
	return s.Reconciled && s.KubeletConfigMissing == "" && (len(s.Missing) > 0 || len(s.Unheld) > 0)
}

// TaintMode is what image-keeper does with the startup taint.
type TaintMode string

const (
	// TaintRemoveOnce removes the taint the first time the cache is warm and never adds it back
	// (the default; node-readiness-controller calls this bootstrap-only).
	TaintRemoveOnce TaintMode = "remove-once"
	// TaintNone leaves the taint alone: another controller (node-readiness-controller) removes
	// it from the condition. image-keeper only publishes the condition and the annotation.
	TaintNone TaintMode = "none"
	// TaintRearm removes the taint while the cache is warm and adds it back (NoSchedule, never
	// NoExecute: running pods stay) while wanted images are missing (node-readiness-controller's
	// continuous mode).
	TaintRearm TaintMode = "rearm"
)

// TaintModes are the valid TaintMode values, for flag help and errors.
var TaintModes = []TaintMode{TaintRemoveOnce, TaintNone, TaintRearm}

// StateOf is the state of a keeper's status. A runtime that is unreachable now does not change
// it: the images found by the last pass that reached it are still on disk.
func StateOf(s keeper.Status) State {
	st := State{Reconciled: !s.LastReconcile.IsZero(), KubeletConfigMissing: s.KubeletConfigMissing, ConfigInvalid: s.ConfigError,
		Holder: s.Holder, HolderPending: s.HolderPending, Unheld: s.Unheld(), WaitingForSlot: strings.HasPrefix(s.PullSlot, "waiting")}
	for _, img := range s.Images {
		st.Wanted = append(st.Wanted, img.Reference)
		if !img.Present {
			st.Missing = append(st.Missing, img.Reference)
		}
	}
	return st
}

// WantedHash is a short hash of the set of wanted references (order does not matter).
func WantedHash(wanted []string) string {
	sorted := wanted
	if !slices.IsSorted(wanted) { // image-keeper's status is sorted already: no copy, no sort
		sorted = slices.Clone(wanted)
		slices.Sort(sorted)
	}
	sum := sha256.Sum256([]byte(strings.Join(sorted, "\n")))
	return hex.EncodeToString(sum[:8])
}

// Condition is the ImageCacheReady condition for a state (times not set).
func Condition(s State) corev1.NodeCondition {
	c := corev1.NodeCondition{Type: ConditionType}
	switch {
	case s.KubeletConfigMissing != "":
		c.Status, c.Reason, c.Message = corev1.ConditionFalse, ReasonWaitingKubelet, "waiting for the kubelet config, which may name images to keep: "+s.KubeletConfigMissing
	case !s.Reconciled:
		c.Status, c.Reason, c.Message = corev1.ConditionFalse, ReasonNoPass, "image-keeper has not reached the container runtime yet"
	case s.ConfigInvalid != "":
		c.Status, c.Reason = corev1.ConditionFalse, ReasonConfigInvalid
		c.Message = fmt.Sprintf("image-keeper's new configuration is invalid; the previous one is in force (%d of %d of its images missing): %s", len(s.Missing), len(s.Wanted), bounded(s.ConfigInvalid))
	case len(s.Missing) == 0 && len(s.Unheld) > 0:
		// Holder mode: present is not enough, a pod's image volume must protect them.
		c.Status, c.Reason = corev1.ConditionFalse, ReasonNotHeld
		c.Message = bounded(keeper.HolderNotReady(len(s.Unheld), len(s.Wanted), s.Unheld, s.Holder, s.HolderPending))
	case len(s.Missing) == 0 && s.Holder != "":
		c.Status, c.Reason, c.Message = corev1.ConditionTrue, ReasonWarm, fmt.Sprintf("all %d wanted images are present and held (%s)", len(s.Wanted), s.Holder)
	case len(s.Missing) == 0:
		c.Status, c.Reason, c.Message = corev1.ConditionTrue, ReasonWarm, fmt.Sprintf("all %d wanted images are present", len(s.Wanted))
	default:
		listed := s.Missing
		more := ""
		if len(listed) > maxListed {
			listed, more = listed[:maxListed], fmt.Sprintf(" and %d more", len(s.Missing)-maxListed)
		}
		c.Status, c.Reason = corev1.ConditionFalse, ReasonMissing
		c.Message = fmt.Sprintf("%d of %d wanted images missing: %s%s", len(s.Missing), len(s.Wanted), strings.Join(listed, ", "), more)
		if s.WaitingForSlot {
			c.Message += waitingForSlot
		}
	}
	// deploy/admission.yaml refuses a longer one: every reader of the Node gets it.
	if len(c.Message) > maxMessage {
		c.Message = c.Message[:maxMessage-3] + "..."
	}
	return c
}

// Publisher writes State to one Node.
type Publisher struct {
	client kubernetes.Interface
	node   string
	// Heartbeat is how often the condition is patched when nothing changed.
	Heartbeat time.Duration
	// ConditionType is the condition's type (ConditionType), TaintKey the startup taint's key
	// (StartupTaintKey), TaintMode what is done with it (TaintRemoveOnce): other readiness
	// conventions (node-readiness-controller's readiness.k8s.io/<name> taints) set them.
	ConditionType corev1.NodeConditionType
	TaintKey      string
	TaintMode     TaintMode

	last          *corev1.NodeCondition // as last published
	lastHeartbeat time.Time
	lastHash      string
	// tainted is what the node's startup taint was left as by the last change image-keeper made
	// or checked (nil: not known yet).
	tainted *bool
}

// NewPublisher publishes on node through client, with the default condition type, taint key and
// taint mode.
func NewPublisher(client kubernetes.Interface, node string) *Publisher {
	return &Publisher{client: client, node: node, Heartbeat: time.Minute,
		ConditionType: ConditionType, TaintKey: StartupTaintKey, TaintMode: TaintRemoveOnce}
}

// Publish patches the condition when it changed or a heartbeat is due, the annotation when the
// wanted set changed, and removes the startup taint the first time the cache is warm. A
// restarted image-keeper continues from the condition on the Node: it keeps its transition time
// and is not replaced by "not reconciled" before the first pass.
func (p *Publisher) Publish(ctx context.Context, s State) error {
	logger := klog.FromContext(ctx)
	if p.last == nil {
		// After a restart, continue from what the Node says, so that an unchanged condition
		// keeps its lastTransitionTime.
		node, err := p.client.CoreV1().Nodes().Get(ctx, p.node, metav1.GetOptions{})
		if err != nil {
			return fmt.Errorf("node %s: %w", p.node, err)
		}
		for _, c := range node.Status.Conditions {
			if c.Type == p.ConditionType {
				p.last, p.lastHeartbeat = &c, c.LastHeartbeatTime.Time
			}
		}
	}
	if !s.Reconciled && s.KubeletConfigMissing == "" && p.last != nil {
		// Restarted, no pass yet: the Node's condition still says what the last pass found;
		// "not reconciled" would flip a warm node to False for a moment.
		return nil
	}
	now := time.Now()
	c := Condition(s)
	c.Type = p.ConditionType
	changed := p.last == nil || p.last.Status != c.Status || p.last.Reason != c.Reason || p.last.Message != c.Message
	if changed || now.Sub(p.lastHeartbeat) >= p.Heartbeat {
		c.LastHeartbeatTime = metav1.NewTime(now)
		c.LastTransitionTime = c.LastHeartbeatTime
		if p.last != nil && p.last.Status == c.Status {
			c.LastTransitionTime = p.last.LastTransitionTime
		}
		// Conditions merge by type in a strategic merge patch: the kubelet's are left alone.
		patch, err := json.Marshal(map[string]any{"status": map[string]any{"conditions": []corev1.NodeCondition{c}}})
		if err != nil {
			return err
		}
		if _, err := p.client.CoreV1().Nodes().PatchStatus(ctx, p.node, patch); err != nil {
			return fmt.Errorf("node %s: patch condition %s: %w", p.node, p.ConditionType, err)
		}
		if changed {
			logger.Info("Published node condition", "node", p.node, "type", p.ConditionType, "status", c.Status, "reason", c.Reason, "message", c.Message)
		}
		p.last, p.lastHeartbeat = &c, now
	}

	if hash := WantedHash(s.Wanted); hash != p.lastHash {
		patch, err := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]string{WantedHashAnnotation: hash}}})
		if err != nil {
			return err
		}
		if _, err := p.client.CoreV1().Nodes().Patch(ctx, p.node, types.StrategicMergePatchType, patch, metav1.PatchOptions{}); err != nil {
			return fmt.Errorf("node %s: annotate %s: %w", p.node, WantedHashAnnotation, err)
		}
		p.lastHash = hash
	}

	return p.publishTaint(ctx, c.Status == corev1.ConditionTrue, s.ImagesMissing())
}

// publishTaint removes the startup taint when the cache is warm (once, in TaintRemoveOnce; every
// time it is back, in TaintRearm) and, in TaintRearm, adds it back while images are missing.
func (p *Publisher) publishTaint(ctx context.Context, warm, missing bool) error {
	logger := klog.FromContext(ctx)
	var want bool
	switch {
	case p.TaintMode == TaintNone:
		return nil
	case warm:
		want = false
	case missing && p.TaintMode == TaintRearm:
		want = true
	default:
		return nil
	}
	if p.tainted != nil && *p.tainted == want {
		return nil
	}
	if p.TaintMode == TaintRemoveOnce && p.tainted != nil {
		return nil // removed once; never looked at again
	}
	changed, err := p.setTaint(ctx, want)
	if err != nil {
		return err
	}
	switch {
	case changed && want:
		logger.Info("Wanted images missing: added the startup taint back (NoSchedule; running pods stay)", "node", p.node, "taint", p.TaintKey)
	case changed:
		logger.Info("Image cache warm: removed the startup taint", "node", p.node, "taint", p.TaintKey)
	}
	p.tainted = &want
	return nil
}

// setTaint adds (NoSchedule) or removes TaintKey with a merge patch that carries the node's
// resourceVersion, so that a concurrent change to the taints is not lost (the patch then
// conflicts, and is made again from the new taints). changed says the taints changed.
func (p *Publisher) setTaint(ctx context.Context, want bool) (changed bool, err error) {
	err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
		node, err := p.client.CoreV1().Nodes().Get(ctx, p.node, metav1.GetOptions{})
		if err != nil {
			return err
		}
		taints := slices.DeleteFunc(slices.Clone(node.Spec.Taints), func(t corev1.Taint) bool { return t.Key == p.TaintKey })
		had := len(taints) != len(node.Spec.Taints)
		if had == want {
			changed = false
			return nil
		}
		if want {
			taints = append(taints, corev1.Taint{Key: p.TaintKey, Effect: corev1.TaintEffectNoSchedule})
		}
		if taints == nil {
			taints = []corev1.Taint{}
		}
		patch, err := json.Marshal(map[string]any{
			"metadata": map[string]any{"resourceVersion": node.ResourceVersion},
			"spec":     map[string]any{"taints": taints},
		})
		if err != nil {
			return err
		}
		_, err = p.client.CoreV1().Nodes().Patch(ctx, p.node, types.MergePatchType, patch, metav1.PatchOptions{})
		changed = err == nil
		return err
	})
	if err != nil {
		verb := "remove"
		if want {
			verb = "add"
		}
		return false, fmt.Errorf("node %s: %s taint %s: %w", p.node, verb, p.TaintKey, err)
	}
	return changed, nil
}

// bounded cuts an error for a condition message, which every reader of the Node gets.
func bounded(s string) string {
	const maxError = 512
	if len(s) <= maxError {
		return s
	}
	return s[:maxError] + "..."
}
