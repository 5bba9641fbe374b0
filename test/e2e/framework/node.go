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
	"fmt"
	"os"
	"path/filepath"
	"sync"

	criapi "k8s.io/cri-api/pkg/apis"
)

// NodeName is a throwaway node's name (the kubelet's --hostname-override) unless the caller
// names it: the one node of a scenario, the first of a cluster.
const NodeName = "e2e-node"

// Node is a throwaway node under Root.
type Node struct {
	// Name is the node's name (NodeName unless set before the kubelet starts).
	Name string
	Root string
	// Bin holds the binaries under test: kubelet, image-keeper.
	Bin string
	// KubeletBinary, when set, is the kubelet to run instead of Bin/kubelet: the upstream tier
	// alone (Bin/upstream-tier/kubelet) or upstream as released (Bin/stock/kubelet).
	KubeletBinary string
	// KeeperBinary, when set, is the image-keeper to run instead of Bin/image-keeper (a
	// benchmark's baseline build).
	KeeperBinary string
	// LogDir collects every component's log.
	LogDir string

	RegistryAddr string
	// RegistryUser and RegistryPassword, when set before StartRegistry, make the registry
	// require that login (htpasswd, basic auth); the framework's pushes send it.
	RegistryUser, RegistryPassword string
	Registry                       *Process
	// RuntimeProcess is the container runtime's process (containerd or crio).
	RuntimeProcess *Process
	Kubelet        *Process
	Keeper         *Process

	// Runtime is the container runtime the node runs.
	Runtime Runtime
	// PodNetwork, when set before StartRuntime, gives pods without hostNetwork a network: a
	// bridge only this host reaches, configured for containerd's CNI (see podnetwork.go).
	PodNetwork bool
	podNetwork *podNetwork
	// RuntimePins, when set before StartRuntime, are entries for the runtime's own list of
	// images it reports as pinned (containerd 2.x and CRI-O pinned_images), written as given;
	// containerd 1.6 has no such list.
	RuntimePins []string
	// KubeletKubeconfig, when set, joins the kubelet to a control plane (ControlPlane's
	// NodeKubeconfig) as node Name; RegisterWithTaints are its --register-with-taints.
	KubeletKubeconfig  string
	RegisterWithTaints []string

	// KeeperAddr is image-keeper's --listen address.
	KeeperAddr string
	// Sleeper is the static binary inside every test image.
	Sleeper []byte

	// KubeletPort is the running kubelet's HTTPS port (its config's port).
	KubeletPort  int
	kubeletPorts map[string]int // by config path

	// mu guards the CRI clients, which are reset when the runtime restarts.
	mu      sync.Mutex
	images  criapi.ImageManagerService
	runtime criapi.RuntimeService
}

// NewNode prepares directories under root for a node that runs runtime, and builds the sleeper
// binary.
func NewNode(root, bin, repoRoot string, runtime Runtime) (*Node, error) {
	n := &Node{Name: NodeName, Root: root, Bin: bin, LogDir: filepath.Join(root, "logs"), Runtime: runtime}
	for _, d := range []string{n.LogDir, n.path("registry"), n.path("containerd"), n.path("kubelet"), n.path("manifests")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}
	out := n.path("sleeper")
	build := GoCommand(repoRoot, "build", "-ldflags=-s -w", "-o", out, "./test/e2e/sleeper")
	build.Env = append(build.Env, "GOOS=linux", "GOARCH=amd64")
	if msg, err := build.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("build sleeper: %v: %s", err, msg)
	}
	var err error
	n.Sleeper, err = os.ReadFile(out)
	return n, err
}

func (n *Node) path(parts ...string) string {
	return filepath.Join(append([]string{n.Root}, parts...)...)
}
