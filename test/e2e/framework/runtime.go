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

// RuntimeKind is the family of container runtime a node runs.
type RuntimeKind string

const (
	// KindContainerd is containerd with its CRI plugin.
	KindContainerd RuntimeKind = "containerd"
	// KindCRIO is CRI-O.
	KindCRIO RuntimeKind = "cri-o"
)

// Runtime says which container runtime a node runs. Kubernetes 1.36+ supports containerd 2.x
// only, so the default is the v2.4 that hack/install-containerd.sh builds into _output/; Debian's
// 1.6 is the legacy leg, and CRI-O (hack/install-crio.sh) the third.
type Runtime struct {
	// Name is what tests and logs call it: "containerd-2.4", "containerd-1.6", "cri-o-1.34".
	Name string
	Kind RuntimeKind
	// Dir holds the runtime's binaries (containerd and containerd-shim-runc-v2; crio and pinns);
	// empty means the system's (PATH).
	Dir string
	// Major is containerd's major version, which decides its config format.
	Major int
}

// PinsSandboxImage reports whether the runtime reports its sandbox (pause) image as pinned in
// CRI, so that the kubelet never collects it: containerd 2.x (pinned_images.sandbox) and CRI-O
// (pause_image is always among its pinned_images) do, containerd 1.6 does not.
func (r Runtime) PinsSandboxImage() bool {
	return r.Kind == KindCRIO || r.Major >= 2
}

// RunsPods reports whether the runtime can start a pod sandbox on this machine. When CRI-O was
// first tried here (issue 12) its sandboxes failed: it gives the infra container oom_score_adj
// -998, which this machine refuses, and has no equivalent of containerd's
// restrict_oom_score_adj. On CRI-O only scenarios without pods run.
func (r Runtime) RunsPods() bool { return r.Kind != KindCRIO }

// ImageID is how the runtime lists an image whose config digest is id ("sha256:<hex>"): CRI-O
// lists the hex alone, containerd the digest.
func (r Runtime) ImageID(id string) string {
	if r.Kind == KindCRIO {
		return strings.TrimPrefix(id, "sha256:")
	}
	return id
}

// ResolvesImageIDs reports whether the runtime's ImageStatus finds an image by "sha256:<hex>":
// containerd does; CRI-O takes it for a short name and refuses it.
func (r Runtime) ResolvesImageIDs() bool { return r.Kind != KindCRIO }

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
			return Runtime{}, fmt.Errorf("containerd %s is not built (%v); run hack/install-containerd.sh", version, err)
		}
		return Runtime{Name: name, Kind: KindContainerd, Dir: dir, Major: 2}, nil
	case "containerd-1.6":
		if _, err := exec.LookPath("containerd"); err != nil {
			return Runtime{}, fmt.Errorf("containerd 1.6 (Debian's) is not installed (%v); run hack/install-e2e-deps.sh", err)
		}
		return Runtime{Name: name, Kind: KindContainerd, Major: 1}, nil
	case "cri-o-1.34":
		version := envOr("CRIO_VERSION", "v1.34.0")
		dir := filepath.Join(repoRoot, "_output", "cri-o-"+version, "bin")
		for _, bin := range []string{filepath.Join(dir, "crio"), filepath.Join(dir, "pinns"), conmonPath, runcPath} {
			if _, err := os.Stat(bin); err != nil {
				return Runtime{}, fmt.Errorf("CRI-O %s is not installed (%v); run hack/install-e2e-deps.sh", version, err)
			}
		}
		return Runtime{Name: name, Kind: KindCRIO, Dir: dir}, nil
	}
	return Runtime{}, fmt.Errorf("E2E_RUNTIME=%q: want one of %s", name, strings.Join(RuntimeNames, ", "))
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

// RuntimeEndpoint is the runtime's CRI endpoint.
func (n *Node) RuntimeEndpoint() string {
	if n.Runtime.Kind == KindCRIO {
		return "unix://" + n.path("crio", "crio.sock")
	}
	return "unix://" + n.path("containerd.sock")
}

// StartRuntime starts the node's runtime on a socket under Root, reaching the registry over
// plain HTTP, with sandboxImage as the pause image.
func (n *Node) StartRuntime(sandboxImage string) error {
	if n.PodNetwork {
		if err := n.setupPodNetwork(); err != nil {
			return err
		}
	}
	var args, env []string
	var err error
	if n.Runtime.Kind == KindCRIO {
		args, err = n.writeCRIOConfig(sandboxImage)
	} else {
		args, env, err = n.writeContainerdConfig(sandboxImage)
	}
	if err != nil {
		return err
	}
	p, err := Start(n.LogDir, n.Runtime.Name, args, env...)
	if err != nil {
		return err
	}
	n.RuntimeProcess = p
	n.resetClients()
	if !Eventually(30*time.Second, 200*time.Millisecond, func() bool {
		_, err := n.ImageService()
		return err == nil
	}) {
		return fmt.Errorf("%s did not serve CRI on %s; log: %s", n.Runtime.Name, n.RuntimeEndpoint(), tail(p.LogText(), 20))
	}
	return nil
}

// writeContainerdConfig writes containerd's config and its registry's hosts.toml, and returns
// containerd's command line and environment.
func (n *Node) writeContainerdConfig(sandboxImage string) (args, env []string, err error) {
	hostsDir := n.path("containerd", "certs.d", n.RegistryAddr)
	if err := os.MkdirAll(hostsDir, 0o755); err != nil {
		return nil, nil, err
	}
	hosts := fmt.Sprintf("server = \"http://%[1]s\"\n\n[host.\"http://%[1]s\"]\n  capabilities = [\"pull\", \"resolve\"]\n", n.RegistryAddr)
	if err := os.WriteFile(filepath.Join(hostsDir, "hosts.toml"), []byte(hosts), 0o644); err != nil {
		return nil, nil, err
	}
	if err := os.WriteFile(n.path("containerd", "config.toml"), []byte(n.containerdConfig(sandboxImage)), 0o644); err != nil {
		return nil, nil, err
	}
	bin := "containerd"
	if n.Runtime.Dir != "" {
		// The shim is found on PATH: ours first, so Debian's 1.6 shim is never used with 2.x.
		bin, env = filepath.Join(n.Runtime.Dir, "containerd"), []string{"PATH=" + n.Runtime.Dir + ":" + os.Getenv("PATH")}
	}
	return []string{bin, "--config", n.path("containerd", "config.toml")}, env, nil
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

// containerdConfig is the node's containerd config in the format of its major version. This
// machine may not lower oom_score_adj, hence restrict_oom_score_adj. NRI is off: its socket is
// machine-wide. With PodNetwork, the CRI plugin's CNI reads the node's own config directory.
func (n *Node) containerdConfig(sandboxImage string) string {
	root, state, socket, certs := n.path("containerd", "root"), n.path("containerd", "state"), n.path("containerd.sock"), n.path("containerd", "certs.d")
	cniDir := n.path("cni", "net.d")
	if n.Runtime.Major >= 2 {
		cni := ""
		if n.PodNetwork {
			cni = fmt.Sprintf("  [plugins.'io.containerd.cri.v1.runtime'.cni]\n    bin_dirs = [%q]\n    conf_dir = %q\n", CNIBinDir, cniDir)
		}
		return fmt.Sprintf(`version = 3
root = %q
state = %q
disabled_plugins = ["io.containerd.nri.v1.nri"]

[grpc]
  address = %q

[plugins.'io.containerd.cri.v1.images']
  [plugins.'io.containerd.cri.v1.images'.pinned_images]
    sandbox = %q
  [plugins.'io.containerd.cri.v1.images'.registry]
    config_path = %q

[plugins.'io.containerd.cri.v1.runtime']
  restrict_oom_score_adj = true
%s`, root, state, socket, sandboxImage, certs, cni)
	}
	cni := ""
	if n.PodNetwork {
		cni = fmt.Sprintf("  [plugins.\"io.containerd.grpc.v1.cri\".cni]\n    bin_dir = %q\n    conf_dir = %q\n", CNIBinDir, cniDir)
	}
	return fmt.Sprintf(`version = 2
root = %q
state = %q

[grpc]
  address = %q

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = %q
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = %q
%s`, root, state, socket, sandboxImage, certs, cni)
}

// StopRuntime stops the runtime (containerd's shims and CRI-O's conmons keep their containers
// running, as on a real node).
func (n *Node) StopRuntime() {
	n.RuntimeProcess.Stop(n.Runtime.stopGrace())
	n.resetClients()
}
