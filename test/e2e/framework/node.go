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
	"bufio"
	"bytes"
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/crypto/bcrypt"
	criapi "k8s.io/cri-api/pkg/apis"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	remote "k8s.io/cri-client/pkg"
)

// Process is a component started by the framework, stopped by its PID.
type Process struct {
	Name string
	Log  string
	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

// Start runs a command with its output in logDir/<name>.log.
func Start(logDir, name string, args []string, env ...string) (*Process, error) {
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		return nil, err
	}
	logPath := filepath.Join(logDir, name+".log")
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.Env = append(os.Environ(), env...)
	// Its own process group, so that Stop reaches its children (containerd's shims excepted: they
	// are stopped with their containers by containerd).
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &Process{Name: name, Log: logPath, cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		logFile.Close()
		close(p.done)
	}()
	return p, nil
}

// Stop sends SIGTERM to the process, then SIGKILL after the grace period.
func (p *Process) Stop(grace time.Duration) {
	if p == nil || p.Exited() {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(grace):
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
	}
}

// Kill sends SIGKILL to the process's group and waits for it to end: a crash, not a shutdown.
func (p *Process) Kill() {
	if p == nil || p.Exited() {
		return
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	<-p.done
}

// Exited reports whether the process has ended.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Wait waits for the process to exit, at most timeout.
func (p *Process) Wait(timeout time.Duration) (exited bool, exitErr error) {
	select {
	case <-p.done:
		return true, p.err
	case <-time.After(timeout):
		return false, nil
	}
}

// PID is the process ID.
func (p *Process) PID() int { return p.cmd.Process.Pid }

// LogText returns the whole log.
func (p *Process) LogText() string {
	data, _ := os.ReadFile(p.Log)
	return string(data)
}

// CountInLog counts the log lines containing s.
func (p *Process) CountInLog(s string) int {
	f, err := os.Open(p.Log)
	if err != nil {
		return 0
	}
	defer f.Close()
	n := 0
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if strings.Contains(sc.Text(), s) {
			n++
		}
	}
	return n
}

// FreePort returns a free TCP port on 127.0.0.1.
func FreePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// Eventually polls cond every interval until it holds or timeout passes.
func Eventually(timeout, interval time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(interval)
	}
}

// NodeName is the throwaway node's name (the kubelet's --hostname-override).
const NodeName = "e2e-node"

// Node is a throwaway node under Root.
type Node struct {
	Root string
	// Bin holds the binaries under test: kubelet, image-keeper.
	Bin string
	// KubeletBinary, when set, is the kubelet to run instead of Bin/kubelet: the upstream tier
	// alone (Bin/upstream-tier/kubelet) or upstream as released (Bin/stock/kubelet).
	KubeletBinary string
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
	// KubeletKubeconfig, when set, joins the kubelet to a control plane (ControlPlane's
	// NodeKubeconfig) as node NodeName; RegisterWithTaints are its --register-with-taints.
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
	n := &Node{Root: root, Bin: bin, LogDir: filepath.Join(root, "logs"), Runtime: runtime}
	for _, d := range []string{n.LogDir, n.path("registry"), n.path("containerd"), n.path("kubelet"), n.path("manifests")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}
	out := n.path("sleeper")
	build := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", out, "./test/e2e/sleeper")
	build.Dir = repoRoot
	build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64")
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

// StartRegistry starts Debian's docker-registry on a loopback port (the same port again after
// StopRegistry, so that references stay valid).
func (n *Node) StartRegistry() error {
	if n.RegistryAddr == "" {
		port, err := FreePort()
		if err != nil {
			return err
		}
		n.RegistryAddr = fmt.Sprintf("127.0.0.1:%d", port)
	}
	config := fmt.Sprintf(`version: 0.1
log:
  level: info
  accesslog:
    disabled: false
storage:
  filesystem:
    rootdirectory: %s
  delete:
    enabled: true
http:
  addr: %s
`, n.path("registry", "data"), n.RegistryAddr)
	if n.RegistryUser != "" {
		hash, err := bcrypt.GenerateFromPassword([]byte(n.RegistryPassword), bcrypt.MinCost)
		if err != nil {
			return err
		}
		if err := os.WriteFile(n.path("registry", "htpasswd"), []byte(n.RegistryUser+":"+string(hash)+"\n"), 0o600); err != nil {
			return err
		}
		config += fmt.Sprintf("auth:\n  htpasswd:\n    realm: e2e\n    path: %s\n", n.path("registry", "htpasswd"))
		registryLogins.Store(n.RegistryAddr, [2]string{n.RegistryUser, n.RegistryPassword})
	}
	if err := os.WriteFile(n.path("registry", "config.yml"), []byte(config), 0o644); err != nil {
		return err
	}
	p, err := Start(n.LogDir, "registry", []string{"docker-registry", "serve", n.path("registry", "config.yml")})
	if err != nil {
		return err
	}
	n.Registry = p
	if !Eventually(15*time.Second, 100*time.Millisecond, func() bool {
		c, err := net.Dial("tcp", n.RegistryAddr)
		if err == nil {
			c.Close()
		}
		return err == nil
	}) {
		return fmt.Errorf("registry did not listen on %s; log: %s", n.RegistryAddr, tail(p.LogText(), 20))
	}
	return nil
}

// StopRegistry stops the registry: the node is offline.
func (n *Node) StopRegistry() {
	n.Registry.Stop(5 * time.Second)
}

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

func (n *Node) resetClients() {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.images, n.runtime = nil, nil
}

// RuntimeService is a CRI client of the runtime's runtime service, shared by every poll.
func (n *Node) RuntimeService() (criapi.RuntimeService, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.runtime != nil {
		return n.runtime, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	rs, err := remote.NewRemoteRuntimeServiceBuilder().WithEndpoint(n.RuntimeEndpoint()).WithConnectionTimeout(30 * time.Second).Build(ctx)
	if err != nil {
		return nil, err
	}
	n.runtime = rs
	return rs, nil
}

// ImageService is a CRI client of the runtime's image service.
func (n *Node) ImageService() (criapi.ImageManagerService, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.images != nil {
		return n.images, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	svc, err := remote.NewRemoteImageServiceBuilder().WithEndpoint(n.RuntimeEndpoint()).WithConnectionTimeout(2 * time.Minute).Build(ctx)
	if err != nil {
		return nil, err
	}
	n.images = svc
	return svc, nil
}

// Pull pulls an image through CRI, as the kubelet would.
func (n *Node) Pull(ref string) error {
	svc, err := n.ImageService()
	if err != nil {
		return err
	}
	_, err = svc.PullImage(context.Background(), &runtimeapi.ImageSpec{Image: ref}, nil, nil)
	return err
}

// RemoveImage is `crictl rmi`.
func (n *Node) RemoveImage(ref string) error {
	svc, err := n.ImageService()
	if err != nil {
		return err
	}
	return svc.RemoveImage(context.Background(), &runtimeapi.ImageSpec{Image: ref})
}

// Present lists the node's images by every repo tag, repo digest and ID.
func (n *Node) Present() (map[string]bool, error) {
	svc, err := n.ImageService()
	if err != nil {
		return nil, err
	}
	list, err := svc.ListImages(context.Background(), nil)
	if err != nil {
		return nil, err
	}
	present := map[string]bool{}
	for _, img := range list {
		present[img.Id] = true
		for _, ref := range append(img.RepoTags, img.RepoDigests...) {
			present[ref] = true
		}
	}
	return present, nil
}

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

// RuntimeImageID is the ID the runtime lists the image by (and the kubelet asks it by):
// "sha256:<hex>" on containerd, the bare hex on CRI-O.
func (n *Node) RuntimeImageID(ref string) (string, error) {
	svc, err := n.ImageService()
	if err != nil {
		return "", err
	}
	resp, err := svc.ImageStatus(context.Background(), &runtimeapi.ImageSpec{Image: ref}, false)
	if err != nil {
		return "", err
	}
	if resp.GetImage() == nil {
		return "", fmt.Errorf("%s: no such image on the node", ref)
	}
	return resp.GetImage().GetId(), nil
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

// StartKeeper starts image-keeper against the node's runtime.
func (n *Node) StartKeeper(args ...string) error {
	port, err := FreePort()
	if err != nil {
		return err
	}
	n.KeeperAddr = fmt.Sprintf("127.0.0.1:%d", port)
	p, err := Start(n.LogDir, "image-keeper", append([]string{filepath.Join(n.Bin, "image-keeper"),
		"--runtime-endpoint", n.RuntimeEndpoint(),
		"--listen", n.KeeperAddr,
		"-v=2",
	}, args...))
	if err != nil {
		return err
	}
	n.Keeper = p
	return nil
}

// WriteStaticPod writes a static pod running image with hostNetwork.
func (n *Node) WriteStaticPod(name, image, pullPolicy string) error {
	manifest := fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata:
  name: %[1]s
  namespace: default
spec:
  hostNetwork: true
  terminationGracePeriodSeconds: 1
  containers:
    - name: main
      image: %[2]s
      imagePullPolicy: %[3]s
`, name, image, pullPolicy)
	return os.WriteFile(n.path("manifests", name+".yaml"), []byte(manifest), 0o644)
}

// RemoveStaticPod deletes a static pod's manifest.
func (n *Node) RemoveStaticPod(name string) error {
	return os.Remove(n.path("manifests", name+".yaml"))
}

// ContainerRunning reports whether a container of the static pod is running.
func (n *Node) ContainerRunning(podName string) (bool, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	rs, err := n.RuntimeService()
	if err != nil {
		return false, err
	}
	list, err := rs.ListContainers(ctx, &runtimeapi.ContainerFilter{
		State:         &runtimeapi.ContainerStateValue{State: runtimeapi.ContainerState_CONTAINER_RUNNING},
		LabelSelector: map[string]string{"io.kubernetes.pod.name": podName + "-" + NodeName},
	})
	if err != nil {
		return false, err
	}
	return len(list) > 0, nil
}

// RemovePod stops and removes the sandboxes of a static pod whose manifest is gone, so that
// nothing on the node references its image any more.
func (n *Node) RemovePod(podName string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rs, err := n.RuntimeService()
	if err != nil {
		return err
	}
	sandboxes, err := rs.ListPodSandbox(ctx, &runtimeapi.PodSandboxFilter{LabelSelector: map[string]string{"io.kubernetes.pod.name": podName + "-" + NodeName}})
	if err != nil {
		return err
	}
	for _, s := range sandboxes {
		if err := rs.StopPodSandbox(ctx, s.Id); err != nil {
			return err
		}
		if err := rs.RemovePodSandbox(ctx, s.Id); err != nil {
			return err
		}
	}
	return nil
}

// HasBlob reports whether containerd's content store holds a blob (containerd only): after an
// image is removed and nothing references it, containerd's garbage collector deletes its blobs,
// and only then does a pull download them again.
func (n *Node) HasBlob(digest string) bool {
	_, err := os.Stat(n.path("containerd", "root", "io.containerd.content.v1.content", "blobs", "sha256", strings.TrimPrefix(digest, "sha256:")))
	return err == nil
}

// Teardown stops everything the node started, by PID, removes every pod sandbox and container,
// unmounts what is mounted under Root, and removes Root unless keep is set.
func (n *Node) Teardown(keep bool) error {
	n.Keeper.Stop(5 * time.Second)
	if n.Kubelet != nil {
		n.Kubelet.Stop(15 * time.Second)
	}
	if n.RuntimeProcess != nil && !n.RuntimeProcess.Exited() {
		n.removePods()
		n.RuntimeProcess.Stop(n.Runtime.stopGrace())
	}
	if n.Registry != nil {
		n.Registry.Stop(5 * time.Second)
	}
	var errs []error
	if err := n.teardownPodNetwork(); err != nil {
		errs = append(errs, err)
	}
	for _, m := range mountsUnder(n.Root) {
		if err := syscall.Unmount(m, syscall.MNT_DETACH); err != nil {
			errs = append(errs, fmt.Errorf("unmount %s: %w", m, err))
		}
	}
	if !keep {
		if err := os.RemoveAll(n.Root); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// removePods stops and removes every sandbox so that no shim or container outlives the test.
func (n *Node) removePods() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rs, err := n.RuntimeService()
	if err != nil {
		return
	}
	sandboxes, err := rs.ListPodSandbox(ctx, nil)
	if err != nil {
		return
	}
	for _, s := range sandboxes {
		_ = rs.StopPodSandbox(ctx, s.Id)
		_ = rs.RemovePodSandbox(ctx, s.Id)
	}
}

// mountsUnder lists mount points under root, deepest first.
func mountsUnder(root string) []string {
	data, err := os.ReadFile("/proc/self/mounts")
	if err != nil {
		return nil
	}
	var mounts []string
	for _, line := range strings.Split(string(data), "\n") {
		fields := strings.Fields(line)
		if len(fields) > 1 && (fields[1] == root || strings.HasPrefix(fields[1], root+"/")) {
			mounts = append(mounts, fields[1])
		}
	}
	for i, j := 0, len(mounts)-1; i < j; i, j = i+1, j-1 {
		mounts[i], mounts[j] = mounts[j], mounts[i]
	}
	return mounts
}

func tail(s string, lines int) string {
	all := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(all) > lines {
		all = all[len(all)-lines:]
	}
	return strings.Join(all, "\n")
}

// Tail returns the last lines of a component's log.
func Tail(p *Process, lines int) string {
	if p == nil {
		return ""
	}
	return tail(p.LogText(), lines)
}
