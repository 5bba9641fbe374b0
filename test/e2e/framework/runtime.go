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
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Runtime is the container runtime a node runs: containerd (2.x, and Debian's 1.6 as the
// legacy leg) or CRI-O. Kubernetes 1.36+ supports containerd 2.x only, so the default is the v2.4
// that hack/install-containerd.sh builds into _output/. What differs between runtimes is here
// and in their implementations (containerd.go, crio.go); tests ask these methods, never which
// runtime it is.
type Runtime interface {
	// Name is what tests and logs call it: "containerd-2.4", "containerd-1.6", "cri-o-1.34".
	Name() string
	// PinsSandboxImage reports whether the runtime reports its sandbox (pause) image as pinned
	// in CRI, so that the kubelet never collects it.
	PinsSandboxImage() bool
	// RunsPods reports whether the runtime can start a pod sandbox on this machine.
	RunsPods() bool
	// ImageID is how the runtime lists an image whose config digest is id ("sha256:<hex>").
	ImageID(id string) string
	// ResolvesImageIDs reports whether the runtime's ImageStatus finds an image by
	// "sha256:<hex>".
	ResolvesImageIDs() bool

	// endpoint is the runtime's CRI endpoint on node n; imageStore, the directory of its images
	// (the image filesystem the kubelet measures).
	endpoint(n *Node) string
	imageStore(n *Node) string
	// command writes the runtime's config for node n and returns its command line and
	// environment.
	command(n *Node, sandboxImage string) (args, env []string, err error)
	// stopGrace is how long the runtime gets to exit after SIGTERM before SIGKILL.
	stopGrace() time.Duration
}

// RuntimeNames are the runtimes RuntimeNamed knows, the default first.
var RuntimeNames = []string{"containerd-2.4", "containerd-1.6", "cri-o-1.34"}

// RuntimeFromEnv returns the runtime that E2E_RUNTIME names (one of RuntimeNames; default
// containerd-2.4).
func RuntimeFromEnv(repoRoot string) (Runtime, error) {
	name := os.Getenv("E2E_RUNTIME")
	if name == "" {
		name = RuntimeNames[0]
	}
	return RuntimeNamed(repoRoot, name)
}

// RuntimeNamed returns the runtime of that name: "containerd-2.4" (from
// _output/containerd-<CONTAINERD_VERSION>/bin), "containerd-1.6" (Debian's, on PATH) or
// "cri-o-1.34" (from _output/cri-o-<CRIO_VERSION>/bin, with Debian's conmon and runc).
func RuntimeNamed(repoRoot, name string) (Runtime, error) {
	switch name {
	case "containerd-2.4":
		version := envOr("CONTAINERD_VERSION", "v2.4.2")
		dir := filepath.Join(repoRoot, "_output", "containerd-"+version, "bin")
		if _, err := os.Stat(filepath.Join(dir, "containerd")); err != nil {
			return nil, fmt.Errorf("containerd %s is not built (%v); run hack/install-containerd.sh", version, err)
		}
		return containerd{name: name, dir: dir, major: 2}, nil
	case "containerd-1.6":
		if _, err := exec.LookPath("containerd"); err != nil {
			return nil, fmt.Errorf("containerd 1.6 (Debian's) is not installed (%v); run hack/install-e2e-deps.sh", err)
		}
		return containerd{name: name, major: 1}, nil
	case "cri-o-1.34":
		version := envOr("CRIO_VERSION", "v1.34.0")
		dir := filepath.Join(repoRoot, "_output", "cri-o-"+version, "bin")
		for _, bin := range []string{filepath.Join(dir, "crio"), filepath.Join(dir, "pinns"), conmonPath, runcPath} {
			if _, err := os.Stat(bin); err != nil {
				return nil, fmt.Errorf("CRI-O %s is not installed (%v); run hack/install-e2e-deps.sh", version, err)
			}
		}
		return crio{name: name, dir: dir}, nil
	}
	return nil, fmt.Errorf("E2E_RUNTIME=%q: want one of %s", name, strings.Join(RuntimeNames, ", "))
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

// RuntimeEndpoint is the runtime's CRI endpoint.
func (n *Node) RuntimeEndpoint() string { return n.Runtime.endpoint(n) }

// ImageStore is the directory that holds the runtime's images: the image filesystem the kubelet
// measures.
func (n *Node) ImageStore() string { return n.Runtime.imageStore(n) }

// StartRuntime starts the node's runtime on a socket under Root, reaching the registry over
// plain HTTP, with sandboxImage as the pause image.
func (n *Node) StartRuntime(sandboxImage string) error {
	if n.PodNetwork {
		if err := n.setupPodNetwork(); err != nil {
			return err
		}
	}
	args, env, err := n.Runtime.command(n, sandboxImage)
	if err != nil {
		return err
	}
	p, err := Start(n.LogDir, n.Runtime.Name(), args, env...)
	if err != nil {
		return err
	}
	n.RuntimeProcess = p
	n.resetClients()
	if !Eventually(30*time.Second, 200*time.Millisecond, func() bool {
		_, err := n.ImageService()
		return err == nil
	}) {
		return fmt.Errorf("%s did not serve CRI on %s; log: %s", n.Runtime.Name(), n.RuntimeEndpoint(), TailLines(p.LogText(), 20))
	}
	return nil
}

// LimitImageFS puts the runtime's image store on a tmpfs of the given size, so that the image
// filesystem the kubelet sees has a small capacity (imageGCExcludeBudgetPercent is a share of
// it). Call it before StartRuntime; Teardown unmounts it.
func (n *Node) LimitImageFS(bytes int64) error {
	root := n.ImageStore()
	if err := os.MkdirAll(root, 0o755); err != nil {
		return err
	}
	if err := syscall.Mount("tmpfs", root, "tmpfs", 0, fmt.Sprintf("size=%d,mode=0755", bytes)); err != nil {
		return fmt.Errorf("mount a %d-byte tmpfs on %s: %w", bytes, root, err)
	}
	return nil
}

// StopRuntime stops the runtime (containerd's shims and CRI-O's conmons keep their containers
// running, as on a real node).
func (n *Node) StopRuntime() {
	n.RuntimeProcess.Stop(n.Runtime.stopGrace())
	n.resetClients()
}
