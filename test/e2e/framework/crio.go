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
	"strconv"
	"strings"
	"time"
)

// Debian's conmon and runc: CRI-O's container monitor and OCI runtime.
const (
	conmonPath = "/usr/bin/conmon"
	runcPath   = "/usr/bin/runc"
)

// crio is CRI-O from hack/install-crio.sh (dir: crio and pinns) with Debian's conmon and runc.
type crio struct {
	name string
	dir  string
}

func (c crio) Name() string { return c.name }

// PinsSandboxImage: pause_image is always among CRI-O's pinned_images.
func (c crio) PinsSandboxImage() bool { return true }

// RunsPods: when CRI-O was first tried here (issue 12) its sandboxes failed: it gives the infra
// container oom_score_adj -998, which this machine refuses, and has no equivalent of
// containerd's restrict_oom_score_adj. On CRI-O only scenarios without pods run.
func (c crio) RunsPods() bool { return false }

// ImageID: CRI-O lists the config digest's hex alone.
func (c crio) ImageID(id string) string { return strings.TrimPrefix(id, "sha256:") }

// ResolvesImageIDs: CRI-O's ImageStatus takes "sha256:<hex>" for a short name and refuses it.
func (c crio) ResolvesImageIDs() bool { return false }

func (c crio) endpoint(n *Node) string { return "unix://" + n.path("crio", "crio.sock") }

func (c crio) imageStore(n *Node) string { return n.path("crio", "root") }

// stopGrace: CRI-O 1.34 here does not exit on SIGTERM once it has served CRI calls: its debug
// log ends at "Closed hook monitor", and the next step of its main ("Closed main server") waits
// for the connection multiplexer (cmux) that serves gRPC and HTTP on its socket to return; why
// that never happens was not traced further. It is killed after a short grace, as systemd would
// after its stop timeout.
func (c crio) stopGrace() time.Duration { return 3 * time.Second }

// command writes CRI-O's config, registries.conf and signature policy under Root/crio
// and returns crio's command line. Every path CRI-O would otherwise take machine-wide (storage,
// state, sockets, exits, namespaces, version files, signature policies, NRI) is under Root or
// off. The socket is not named .../run/crio/crio.sock: the kubelet would then read image
// filesystem stats from cadvisor's CRI-O client, which only knows /var/run/crio/crio.sock; under
// any other name it asks CRI (ImageFsInfo), as it does for containerd.
func (c crio) command(n *Node, sandboxImage string) (args, env []string, err error) {
	dir := n.path("crio")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, nil, err
	}
	policy := filepath.Join(dir, "policy.json")
	if err := os.WriteFile(policy, []byte(`{"default":[{"type":"insecureAcceptAnything"}]}`+"\n"), 0o644); err != nil {
		return nil, nil, err
	}
	// The registry speaks plain HTTP on loopback; no unqualified-name search, as on a node.
	registries := filepath.Join(dir, "registries.conf")
	if err := os.WriteFile(registries, []byte(fmt.Sprintf("unqualified-search-registries = []\n\n[[registry]]\nlocation = %q\ninsecure = true\n", n.RegistryAddr)), 0o644); err != nil {
		return nil, nil, err
	}
	cni := ""
	if n.PodNetwork {
		cni = fmt.Sprintf("\n[crio.network]\nnetwork_dir = %q\nplugin_dirs = [%q]\n", n.path("cni", "net.d"), CNIBinDir)
	}
	run := filepath.Join(dir, "run")
	config := fmt.Sprintf(`[crio]
root = %q
runroot = %q
storage_driver = "vfs"
log_dir = %q
version_file = %q
version_file_persist = %q
clean_shutdown_file = %q

[crio.api]
listen = %q

[crio.runtime]
cgroup_manager = "cgroupfs"
conmon_cgroup = "pod"
default_runtime = "runc"
pinns_path = %q
namespaces_dir = %q
container_exits_dir = %q
container_attach_socket_dir = %q
hooks_dir = []

[crio.runtime.runtimes.runc]
runtime_path = %q
runtime_type = "oci"
runtime_root = %q
monitor_path = %q

[crio.image]
pause_image = %q
pinned_images = %s
signature_policy = %q
signature_policy_dir = %q

[crio.nri]
enable_nri = false
%s`, n.ImageStore(), run, filepath.Join(dir, "pod-logs"), filepath.Join(run, "version"), filepath.Join(dir, "version"),
		filepath.Join(dir, "clean.shutdown"), n.path("crio", "crio.sock"), filepath.Join(c.dir, "pinns"),
		filepath.Join(run, "ns"), filepath.Join(run, "exits"), filepath.Join(run, "attach"), runcPath, filepath.Join(run, "runc"),
		conmonPath, sandboxImage, tomlStrings(n.RuntimePins), policy, filepath.Join(dir, "policies"), cni)
	configPath := filepath.Join(dir, "crio.conf")
	if err := os.WriteFile(configPath, []byte(config), 0o644); err != nil {
		return nil, nil, err
	}
	return []string{filepath.Join(c.dir, "crio"), "--config", configPath, "--config-dir", filepath.Join(dir, "crio.conf.d"),
		"--registries-conf", registries, "--registries-conf-dir", filepath.Join(dir, "registries.conf.d"),
		"--disable-hostport-mapping", "--log-level", "info"}, nil, nil
}

// tomlStrings is a TOML array of strings.
func tomlStrings(values []string) string {
	quoted := make([]string, len(values))
	for i, v := range values {
		quoted[i] = strconv.Quote(v)
	}
	return "[" + strings.Join(quoted, ", ") + "]"
}
