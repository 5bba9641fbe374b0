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
	"time"
)

// containerd is containerd with its CRI plugin: the v2.x that hack/install-containerd.sh builds
// (dir), or Debian's 1.6 on PATH (dir empty). major decides its config format.
type containerd struct {
	name  string
	dir   string
	major int
}

func (c containerd) Name() string { return c.name }

// PinsSandboxImage: containerd 2.x pins it (pinned_images.sandbox), 1.6 does not.
func (c containerd) PinsSandboxImage() bool { return c.major >= 2 }

func (c containerd) RunsPods() bool { return true }

// ImageID: containerd lists the config digest as it is.
func (c containerd) ImageID(id string) string { return id }

func (c containerd) ResolvesImageIDs() bool { return true }

func (c containerd) endpoint(n *Node) string { return "unix://" + n.path("containerd.sock") }

func (c containerd) imageStore(n *Node) string { return n.path("containerd", "root") }

// stopGrace: containerd exits at once on SIGTERM; 15 s only bounds the wait.
func (c containerd) stopGrace() time.Duration { return 15 * time.Second }

// command writes containerd's config and its registry's hosts.toml, and returns
// containerd's command line and environment.
func (c containerd) command(n *Node, sandboxImage string) (args, env []string, err error) {
	hostsDir := n.path("containerd", "certs.d", n.RegistryAddr)
	if err := os.MkdirAll(hostsDir, 0o755); err != nil {
		return nil, nil, err
	}
	hosts := fmt.Sprintf("server = \"http://%[1]s\"\n\n[host.\"http://%[1]s\"]\n  capabilities = [\"pull\", \"resolve\"]\n", n.RegistryAddr)
	if err := os.WriteFile(filepath.Join(hostsDir, "hosts.toml"), []byte(hosts), 0o644); err != nil {
		return nil, nil, err
	}
	if len(n.RuntimePins) > 0 && c.major < 2 {
		return nil, nil, fmt.Errorf("%s has no pinned_images list for RuntimePins %q", c.Name(), n.RuntimePins)
	}
	if err := os.WriteFile(n.path("containerd", "config.toml"), []byte(c.config(n, sandboxImage)), 0o644); err != nil {
		return nil, nil, err
	}
	bin := "containerd"
	if c.dir != "" {
		// The shim is found on PATH: ours first, so Debian's 1.6 shim is never used with 2.x.
		bin, env = filepath.Join(c.dir, "containerd"), []string{"PATH=" + c.dir + ":" + os.Getenv("PATH")}
	}
	return []string{bin, "--config", n.path("containerd", "config.toml")}, env, nil
}

// config is the node's containerd config in the format of its major version. This
// machine may not lower oom_score_adj, hence restrict_oom_score_adj. NRI is off: its socket is
// machine-wide. With PodNetwork, the CRI plugin's CNI reads the node's own config directory.
func (c containerd) config(n *Node, sandboxImage string) string {
	root, state, socket, certs := n.path("containerd", "root"), n.path("containerd", "state"), n.path("containerd.sock"), n.path("containerd", "certs.d")
	cniDir := n.path("cni", "net.d")
	if c.major >= 2 {
		cni := ""
		if n.PodNetwork {
			cni = fmt.Sprintf("  [plugins.'io.containerd.cri.v1.runtime'.cni]\n    bin_dirs = [%q]\n    conf_dir = %q\n", CNIBinDir, cniDir)
		}
		pins := ""
		for i, ref := range n.RuntimePins {
			pins += fmt.Sprintf("    e2e-%d = %q\n", i, ref)
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
%s  [plugins.'io.containerd.cri.v1.images'.registry]
    config_path = %q

[plugins.'io.containerd.cri.v1.runtime']
  restrict_oom_score_adj = true
%s`, root, state, socket, sandboxImage, pins, certs, cni)
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
