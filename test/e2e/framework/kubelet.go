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
	"bytes"
	"cmp"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// KubeletConfig is the part of the kubelet's config the tests vary.
type KubeletConfig struct {
	Gate      bool
	Exclude   []string
	Selectors []string
	// Extra is appended to the config verbatim.
	Extra string
	// NoPressure leaves out the always-crossed imagefs eviction threshold.
	NoPressure bool
	// DropIn, when set, is written as the only file of the config's --config-dir
	// (<name>.conf.d/50-e2e.conf), which the kubelet merges onto the file.
	DropIn string
	// RuntimeEndpoint, when set, is the kubelet's containerRuntimeEndpoint instead of the
	// node's runtime (a CRIProxy in front of it).
	RuntimeEndpoint string
}

// WriteKubeletConfig writes a standalone kubelet config: static pods from Root/manifests, no API
// server, cgroupfs, and an imagefs eviction threshold that is always crossed, so that the
// eviction manager calls DeleteUnusedImages every ~10 s, and that removing kept images can
// never relieve, so that they stay.
func (n *Node) WriteKubeletConfig(name string, kc KubeletConfig) (string, error) {
	ports := make([]int, 2)
	for i := range ports {
		p, err := FreePort()
		if err != nil {
			return "", err
		}
		ports[i] = p
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, `apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
failCgroupV1: false
cgroupDriver: cgroupfs
containerRuntimeEndpoint: %s
staticPodPath: %s
podLogsDir: %s
authentication:
  anonymous:
    enabled: true
  webhook:
    enabled: false
authorization:
  mode: AlwaysAllow
address: 127.0.0.1
port: %d
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: %d
fileCheckFrequency: 1s
imageMinimumGCAge: 1s
`, cmp.Or(kc.RuntimeEndpoint, n.RuntimeEndpoint()), n.path("manifests"), n.path("kubelet", "pod-logs"), ports[0], ports[1])
	if !kc.NoPressure {
		// The minimum reclaim puts the threshold out of the kept images' reach: on a small image
		// filesystem the kept images could otherwise bring 99% back, and the eviction manager
		// would rightly remove them (a cache, not a pin; TestKeptImagesUnderEviction).
		b.WriteString("evictionHard:\n  imagefs.available: \"99%\"\nevictionMinimumReclaim:\n  imagefs.available: \"1Ti\"\nevictionPressureTransitionPeriod: 5s\n")
	}
	if kc.Gate {
		b.WriteString("featureGates:\n  ImageGCExclusion: true\n")
	}
	writeList(&b, "imageGCExclude", kc.Exclude)
	writeList(&b, "imageGCExcludeSelectors", kc.Selectors)
	b.WriteString(kc.Extra)
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
	return path, os.WriteFile(path, b.Bytes(), 0o644)
}

// dropInDir is the --config-dir that goes with a kubelet config file written by
// WriteKubeletConfig.
func dropInDir(config string) string {
	return strings.TrimSuffix(config, ".yaml") + ".conf.d"
}

func writeList(b *bytes.Buffer, field string, entries []string) {
	if entries == nil {
		return
	}
	fmt.Fprintf(b, "%s:\n", field)
	for _, e := range entries {
		fmt.Fprintf(b, "  - %q\n", e)
	}
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
	args := []string{cmp.Or(n.KubeletBinary, filepath.Join(n.Bin, "kubelet")),
		"--config", config,
		"--root-dir", n.path("kubelet", "root"),
		"--cert-dir", n.path("kubelet", "pki"),
		"--hostname-override", NodeName,
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
