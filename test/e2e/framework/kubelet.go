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
	"cmp"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kubeletv1beta1 "k8s.io/kubelet/config/v1beta1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"
)

// KubeletConfig is the part of the kubelet's config the tests vary.
type KubeletConfig struct {
	// Gate turns the ImageGCExclusion feature gate on.
	Gate bool
	// Exclude, Selectors, BudgetPercent and EvictionPolicy are imageGCExclude,
	// imageGCExcludeSelectors, imageGCExcludeBudgetPercent and imageGCExcludeEvictionPolicy;
	// nil and "" leave them out (the kubelet's defaults).
	Exclude        []string
	Selectors      []string
	BudgetPercent  *int32
	EvictionPolicy string
	// NoPressure leaves out the always-crossed imagefs eviction threshold, and keeps the host's
	// disk (shared by every test, and on CI machines often past the kubelet's default 85 %)
	// from starting image GC or disk eviction: imageGCHighThresholdPercent 100, with which the
	// kubelet runs no image GC at all unless imageMaximumGCAge is set (Customize), and no disk
	// eviction signals. Not with ImagefsAvailable.
	NoPressure bool
	// ImagefsAvailable, when set, is the evictionHard imagefs.available threshold (a quantity or
	// a percentage) instead of the always-crossed one, with no minimum reclaim.
	ImagefsAvailable string
	// Customize, when set, changes upstream's fields last (e.g. imageMaximumGCAge).
	Customize func(*kubeletv1beta1.KubeletConfiguration)
	// DropIn, when set, is written as the only file of the config's --config-dir
	// (<name>.conf.d/50-e2e.conf), which the kubelet merges onto the file.
	DropIn string
	// RuntimeEndpoint, when set, is the kubelet's containerRuntimeEndpoint instead of the
	// node's runtime (a CRIProxy in front of it).
	RuntimeEndpoint string
}

// forkFields are the fields this fork adds to upstream's v1beta1 KubeletConfiguration
// (pkg/kubelet/apis/config of the patched tree).
type forkFields struct {
	ImageGCExclude               []string `json:"imageGCExclude,omitempty"`
	ImageGCExcludeSelectors      []string `json:"imageGCExcludeSelectors,omitempty"`
	ImageGCExcludeBudgetPercent  *int32   `json:"imageGCExcludeBudgetPercent,omitempty"`
	ImageGCExcludeEvictionPolicy string   `json:"imageGCExcludeEvictionPolicy,omitempty"`
}

// WriteKubeletConfig writes a standalone kubelet config: static pods from Root/manifests, no API
// server, cgroupfs under the node's own cgroup root (CgroupRoot), and an imagefs eviction
// threshold that is always crossed, so that the eviction manager calls DeleteUnusedImages every
// ~10 s, and that removing kept images can never relieve, so that they stay.
func (n *Node) WriteKubeletConfig(name string, kc KubeletConfig) (string, error) {
	if kc.NoPressure && kc.ImagefsAvailable != "" {
		return "", fmt.Errorf("kubelet config %s: NoPressure and ImagefsAvailable %q contradict each other; set one", name, kc.ImagefsAvailable)
	}
	if err := n.EnsureCgroupRoot(); err != nil {
		return "", err
	}
	ports := make([]int, 2)
	for i := range ports {
		p, err := FreePort()
		if err != nil {
			return "", err
		}
		ports[i] = p
	}
	c := kubeletv1beta1.KubeletConfiguration{
		TypeMeta:                 metav1.TypeMeta{APIVersion: "kubelet.config.k8s.io/v1beta1", Kind: "KubeletConfiguration"},
		FailCgroupV1:             ptr.To(false),
		CgroupDriver:             "cgroupfs",
		CgroupRoot:               n.CgroupRoot(),
		ContainerRuntimeEndpoint: cmp.Or(kc.RuntimeEndpoint, n.RuntimeEndpoint()),
		StaticPodPath:            n.path("manifests"),
		PodLogsDir:               n.path("kubelet", "pod-logs"),
		Authentication: kubeletv1beta1.KubeletAuthentication{
			Anonymous: kubeletv1beta1.KubeletAnonymousAuthentication{Enabled: ptr.To(true)},
			Webhook:   kubeletv1beta1.KubeletWebhookAuthentication{Enabled: ptr.To(false)},
		},
		Authorization:      kubeletv1beta1.KubeletAuthorization{Mode: kubeletv1beta1.KubeletAuthorizationModeAlwaysAllow},
		Address:            "127.0.0.1",
		Port:               int32(ports[0]),
		HealthzBindAddress: "127.0.0.1",
		HealthzPort:        ptr.To(int32(ports[1])),
		FileCheckFrequency: metav1.Duration{Duration: time.Second},
		ImageMinimumGCAge:  metav1.Duration{Duration: time.Second},
	}
	switch {
	case kc.NoPressure:
		c.ImageGCHighThresholdPercent = ptr.To(int32(100))
		c.ImageGCLowThresholdPercent = ptr.To(int32(99))
		c.EvictionHard = map[string]string{"memory.available": "100Mi"}
	case kc.ImagefsAvailable != "":
		c.EvictionHard = map[string]string{"imagefs.available": kc.ImagefsAvailable}
		c.EvictionPressureTransitionPeriod = metav1.Duration{Duration: 5 * time.Second}
	default:
		// The minimum reclaim puts the threshold out of the kept images' reach: on a small image
		// filesystem the kept images could otherwise bring 99% back, and the eviction manager
		// would rightly remove them (a cache, not a pin; TestKeptImagesUnderEviction).
		c.EvictionHard = map[string]string{"imagefs.available": "99%"}
		c.EvictionMinimumReclaim = map[string]string{"imagefs.available": "1Ti"}
		c.EvictionPressureTransitionPeriod = metav1.Duration{Duration: 5 * time.Second}
	}
	if kc.Gate {
		c.FeatureGates = map[string]bool{"ImageGCExclusion": true}
	}
	if kc.Customize != nil {
		kc.Customize(&c)
	}
	data, err := marshalKubeletConfig(c, forkFields{kc.Exclude, kc.Selectors, kc.BudgetPercent, kc.EvictionPolicy})
	if err != nil {
		return "", err
	}
	path := n.path("kubelet", name+".yaml")
	if n.kubeletPorts == nil {
		n.kubeletPorts = map[string]int{}
	}
	n.kubeletPorts[path] = ports[0]
	if kc.DropIn != "" {
		dir := dropInDir(path)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return "", err
		}
		if err := os.WriteFile(filepath.Join(dir, "50-e2e.conf"), []byte(kc.DropIn), 0o644); err != nil {
			return "", err
		}
	}
	return path, os.WriteFile(path, data, 0o644)
}

// marshalKubeletConfig writes c as YAML without the zero values of upstream's fields that have
// no omitempty effect (durations "0s", structs of zeros): the kubelet defaults them, and a reader
// of the file sees only what the test set. The fork's fields are written as set (a budget of 0
// is what a bad-config test writes).
func marshalKubeletConfig(c kubeletv1beta1.KubeletConfiguration, fork forkFields) ([]byte, error) {
	upstream, err := json.Marshal(c)
	if err != nil {
		return nil, err
	}
	var fields map[string]any
	if err := json.Unmarshal(upstream, &fields); err != nil {
		return nil, err
	}
	pruneZeros(fields)
	forkJSON, err := json.Marshal(fork)
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(forkJSON, &fields); err != nil {
		return nil, err
	}
	return yaml.Marshal(fields)
}

// pruneZeros removes from m, recursively, the values "0s", "0", 0 and the objects left empty.
func pruneZeros(m map[string]any) {
	for k, v := range m {
		switch v := v.(type) {
		case map[string]any:
			pruneZeros(v)
			if len(v) == 0 {
				delete(m, k)
			}
		case string:
			if v == "0s" || v == "0" {
				delete(m, k)
			}
		case float64:
			if v == 0 {
				delete(m, k)
			}
		}
	}
}

// dropInDir is the --config-dir that goes with a kubelet config file written by
// WriteKubeletConfig.
func dropInDir(config string) string {
	return strings.TrimSuffix(config, ".yaml") + ".conf.d"
}

// StartKubelet starts the patched kubelet with a config file.
func (n *Node) StartKubelet(config string) error {
	p, err := n.RunKubelet("kubelet", config)
	if err != nil {
		return err
	}
	n.Kubelet = p
	n.KubeletPort = n.kubeletPorts[config]
	return nil
}

// KubeletMetrics returns the running kubelet's /metrics (anonymous, as the config allows).
func (n *Node) KubeletMetrics() (string, error) {
	if n.KubeletPort == 0 {
		return "", errors.New("no kubelet started from a config written by WriteKubeletConfig")
	}
	// The kubelet serves a self-signed certificate of its own on loopback.
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	resp, err := client.Get(fmt.Sprintf("https://127.0.0.1:%d/metrics", n.KubeletPort))
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("kubelet /metrics: %s", resp.Status)
	}
	return string(body), err
}

// RunKubelet starts the kubelet under another log name (for start-up failure tests).
func (n *Node) RunKubelet(logName, config string) (*Process, error) {
	if err := n.sharedKubeletRoot(); err != nil {
		return nil, err
	}
	args := []string{cmp.Or(n.KubeletBinary, filepath.Join(n.Bin, "kubelet")),
		"--config", config,
		"--root-dir", n.KubeletRootDir(),
		"--cert-dir", n.path("kubelet", "pki"),
		"--hostname-override", n.Name,
		"-v=5",
	}
	if n.KubeletKubeconfig != "" {
		args = append(args, "--kubeconfig", n.KubeletKubeconfig)
		if len(n.RegisterWithTaints) > 0 {
			args = append(args, "--register-with-taints", strings.Join(n.RegisterWithTaints, ","))
		}
	}
	if dir := dropInDir(config); isDir(dir) {
		args = append(args, "--config-dir", dir)
	}
	return Start(n.LogDir, logName, args)
}

// KubeletRootDir is the kubelet's --root-dir (/var/lib/kubelet on a node).
func (n *Node) KubeletRootDir() string { return n.path("kubelet", "root") }

// sharedKubeletRoot makes the kubelet's --root-dir a shared mount point, as /var/lib/kubelet is
// on a node whose root is shared (systemd's default). Otherwise the kubelet bind-mounts it onto
// itself at start, while its podresources server may already have made a temporary socket file
// under it: the rename onto the new mount then fails with EXDEV and the kubelet exits (seen once
// in ~30 starts, on the CRI-O leg). Teardown unmounts it with everything under Root.
func (n *Node) sharedKubeletRoot() error {
	root := n.path("kubelet", "root")
	if err := os.MkdirAll(root, 0o750); err != nil {
		return err
	}
	if slices.Contains(MountsUnder(root), root) {
		return nil
	}
	if err := syscall.Mount(root, root, "", syscall.MS_BIND, ""); err != nil {
		return fmt.Errorf("bind-mount the kubelet's root dir %s: %w", root, err)
	}
	if err := syscall.Mount("", root, "", syscall.MS_SHARED, ""); err != nil {
		return fmt.Errorf("make the kubelet's root dir %s shared: %w", root, err)
	}
	return nil
}

// KubeletConfigDir is the --config-dir of a kubelet config written by WriteKubeletConfig, ""
// when it has no drop-in.
func KubeletConfigDir(config string) string {
	if dir := dropInDir(config); isDir(dir) {
		return dir
	}
	return ""
}

func isDir(path string) bool {
	info, err := os.Stat(path)
	return err == nil && info.IsDir()
}

// StopKubelet stops the kubelet; its pods keep running in the runtime, as on a real node.
func (n *Node) StopKubelet() {
	n.Kubelet.Stop(15 * time.Second)
}

// GCPasses counts the kubelet's DeleteUnusedImages calls so far.
func (n *Node) GCPasses() int {
	if n.Kubelet == nil {
		return 0
	}
	return n.Kubelet.CountInLog("Attempting to delete unused images")
}
