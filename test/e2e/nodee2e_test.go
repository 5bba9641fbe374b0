//go:build e2e

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

package e2e

import (
	"context"
	"debug/elf"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kubelet-imagecache/kubelet-imagecache/test/e2e/framework"
)

// The node e2e specs of patch 0004 (test/e2e_node/image_gc_exclusion_test.go) and what each
// must report: all of them must run and pass, so a renamed or skipped spec fails this test.
var upstreamNodeSpecs = []string{
	"should keep the excluded image within imageGCExcludeBudgetPercent and collect the one beyond it",
	"should keep the excluded image and collect the other unused image",
	"should remove the excluded image and evict no pod",
	"should keep the excluded image and evict the pod",
}

// upstreamImageFSBytes is the size of the tmpfs that holds containerd's images in the upstream
// lane: small, so that the budget (a percent of its capacity) and the imagefs eviction thresholds
// act on a filesystem only this test writes to, and not the shared host disk.
const upstreamImageFSBytes = 512 << 20

// TestUpstreamNodeE2E runs the feature's specs of upstream's node e2e suite (patch 0004) in
// upstream's own runner, test/e2e_node/runner/local/run_local.go invoked the way
// hack/make-rules/test-e2e-node.sh does (make test-e2e-node REMOTE=false), against the patched
// kubelet and containerd 2.4. What the framework expects of a node and this machine lacks is
// supplied, and nothing else: systemd-run, systemctl and sudo are test/e2e/nodee2e/fakesystemd
// on PATH, supervising the kubelet by PID; the images come from the loopback registry through
// KUBE_TEST_REPO_LIST (agnhost built from the tree's test/images/agnhost, busybox from Debian's
// static binary, pause the test sleeper); nothing is pulled from the internet (--prepull-images
// false, as the local runner's default). The framework starts its own etcd, API server and
// kubelet (--root-dir /var/lib/kubelet, ports 10248/10250/10255), so one run of this test at a
// time fits on a machine (no t.Parallel); make e2e runs it beside the other scenarios, in a test
// process of its own (hack/e2e.sh). It runs the upstream tier: the tree, kubelet and suite of
// the PR's commits (0001-0004), as docs/upstream-pr.md reports it.
func TestUpstreamNodeE2E(t *testing.T) {
	// The upstream tier (patches 0001-0004, the PR): its tree, kubelet and suite.
	tree := filepath.Join(repoRoot, "_output", "kubernetes-upstream-tier")
	tierBin := filepath.Join(binDir, "upstream-tier")
	for _, bin := range []string{"e2e_node.test", "ginkgo", "agnhost", "run_local", "kubelet"} {
		if _, err := os.Stat(filepath.Join(tierBin, bin)); err != nil {
			t.Fatalf("%s: %v; run `make kubelet-series node-e2e-bins` first", filepath.Join(tierBin, bin), err)
		}
	}
	if deadline, ok := t.Deadline(); ok && time.Until(deadline) < 20*time.Minute {
		t.Fatalf("the suite takes about 12 minutes and go test's -timeout leaves %v: run with -timeout 30m or more", time.Until(deadline).Round(time.Second))
	}
	// The framework's kubelet listens on fixed ports, those of a node's kubelet. (The other
	// scenarios' kubelets listen on ephemeral ports, so this test runs beside them: hack/e2e.sh.)
	for _, port := range []int{10248, 10250, 10255} {
		l, err := net.Listen("tcp", fmt.Sprintf(":%d", port))
		if err != nil {
			t.Fatalf("port %d, which the framework's kubelet listens on, is in use (%v): run this test where no kubelet runs", port, err)
		}
		_ = l.Close()
	}
	// Every kubelet on this machine makes /var/lib/kubelet/device-plugins (a fixed path, whatever
	// its --root-dir), and the other scenarios' kubelets use it while this test runs, so it stays;
	// anything else there means a node's kubelet, whose root this test must not touch. What the
	// framework's kubelet adds is removed afterwards, and only that.
	const kubeletRoot = "/var/lib/kubelet"
	before, err := os.ReadDir(kubeletRoot)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
	existed := []string{"device-plugins"}
	mountedBefore := framework.MountsUnder(kubeletRoot)
	for _, e := range before {
		if e.Name() != "device-plugins" {
			t.Fatalf("%s holds %s: upstream's node e2e framework runs its kubelet with --root-dir %s; run this test on a machine that is not a node (or move %s away)", kubeletRoot, e.Name(), kubeletRoot, kubeletRoot)
		}
	}
	busybox, err := staticBusybox("/bin/busybox")
	if err != nil {
		t.Fatal(err)
	}
	runtime, err := framework.RuntimeNamed(repoRoot, "containerd-2.4")
	if err != nil {
		t.Fatal(err)
	}
	n := newBareNode(t, runtime)
	// The framework waits for the node to be Ready, which needs a pod network (CNI).
	n.PodNetwork = true
	if err := n.LimitImageFS(upstreamImageFSBytes); err != nil {
		t.Fatal(err)
	}
	if err := n.StartRegistry(); err != nil {
		t.Fatal(err)
	}

	// The images under the names upstream's test/utils/image gives them, remapped by the repo list.
	agnhost, err := os.ReadFile(filepath.Join(tierBin, "agnhost"))
	if err != nil {
		t.Fatal(err)
	}
	pause := push(t, n, framework.ImageSpec{Repository: "pause", Tag: "3.10.2"})
	push(t, n, framework.ImageSpec{Repository: "e2e-test-images/agnhost", Tag: "2.66.1",
		Files: map[string][]byte{"agnhost": agnhost}, Entrypoint: []string{"/agnhost"}})
	links := map[string]string{}
	for _, applet := range []string{"sh", "[", "test", "true", "false", "sleep", "dd", "fallocate", "cat", "ls", "rm", "df"} {
		links["bin/"+applet] = "busybox"
	}
	push(t, n, framework.ImageSpec{Repository: "e2e-test-images/busybox", Tag: "1.37.0-2",
		Files: map[string][]byte{"bin/busybox": busybox}, Links: links})
	startRuntime(t, n, pause)

	dir := filepath.Join(n.Root, "upstream")
	reportDir, units, fakeBin := filepath.Join(dir, "report"), filepath.Join(dir, "units"), filepath.Join(dir, "bin")
	for _, d := range []string{reportDir, units, fakeBin} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	repoList := filepath.Join(dir, "repo-list.yaml")
	if err := os.WriteFile(repoList, []byte(fmt.Sprintf("promoterE2eRegistry: %s/e2e-test-images\ngcRegistry: %s\n", n.RegistryAddr, n.RegistryAddr)), 0o644); err != nil {
		t.Fatal(err)
	}
	// Upstream's test/e2e_node/jenkins/default-kubelet-config.yaml, with this node's cgroup root
	// (other kubelets may run on this machine) and memory as the only eviction signal: the host's
	// disk is shared and may sit past the default nodefs threshold; the specs set the imagefs
	// thresholds they test.
	if err := n.EnsureCgroupRoot(); err != nil {
		t.Fatal(err)
	}
	kubeletConfig := filepath.Join(dir, "kubelet-config.yaml")
	if err := os.WriteFile(kubeletConfig, []byte(fmt.Sprintf(`apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
cgroupDriver: cgroupfs
cgroupRoot: %s
failCgroupV1: false
podCIDR: "10.100.0.0/24"
volumeStatsAggPeriod: 10s
fileCheckFrequency: 10s
evictionPressureTransitionPeriod: 30s
evictionHard:
  memory.available: 250Mi
serializeImagePulls: false
`, n.CgroupRoot())), 0o644); err != nil {
		t.Fatal(err)
	}
	build := framework.GoCommand(repoRoot, "build", "-o", filepath.Join(fakeBin, "fakesystemd"), "./test/e2e/nodee2e/fakesystemd")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build fakesystemd: %v: %s", err, out)
	}
	for _, name := range []string{"systemd-run", "systemctl", "sudo"} {
		if err := os.Symlink("fakesystemd", filepath.Join(fakeBin, name)); err != nil {
			t.Fatal(err)
		}
	}
	// Upstream's runner finds ginkgo and e2e_node.test in the tree's _output/local/go/bin, and
	// e2e_node.test the kubelet beside itself.
	outputDir := filepath.Join(tree, "_output", "local", "go", "bin")
	if err := os.MkdirAll(outputDir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, bin := range []string{"e2e_node.test", "ginkgo", "kubelet"} {
		link := filepath.Join(outputDir, bin)
		if info, err := os.Lstat(link); err == nil {
			if info.Mode()&os.ModeSymlink == 0 {
				t.Fatalf("%s is not a link this test made (a build of the tree's own?); move it away", link)
			}
			if err := os.Remove(link); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.Symlink(filepath.Join(tierBin, bin), link); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		// What the framework left running (it stops its kubelet unit itself when it ends
		// normally), then what it left on the host.
		entries, _ := os.ReadDir(units)
		for _, e := range entries {
			stop := exec.Command(filepath.Join(fakeBin, "systemctl"), "stop", e.Name())
			stop.Env = append(os.Environ(), "FAKE_SYSTEMD_STATE="+units)
			if out, err := stop.CombinedOutput(); err != nil {
				t.Errorf("stop unit %s: %v: %s", e.Name(), err, out)
				killKubelet(t, filepath.Join(units, e.Name()), filepath.Join(tierBin, "kubelet"))
			}
		}
		// Only what the framework's kubelet mounted (its pods' volumes) is unmounted, and
		// nothing is removed unless all of that went.
		var unmountErr error
		for _, m := range framework.MountsUnder(kubeletRoot) {
			if !slices.Contains(mountedBefore, m) {
				if err := syscall.Unmount(m, syscall.MNT_DETACH); err != nil {
					unmountErr = err
					t.Errorf("unmount %s: %v", m, err)
				}
			}
		}
		after, _ := os.ReadDir(kubeletRoot)
		for _, e := range after {
			if unmountErr != nil {
				break
			}
			if !slices.Contains(existed, e.Name()) {
				if err := os.RemoveAll(filepath.Join(kubeletRoot, e.Name())); err != nil {
					t.Error(err)
				}
			}
		}
		if t.Failed() {
			dest := filepath.Join(logsDir, t.Name(), "report")
			_ = os.MkdirAll(filepath.Dir(dest), 0o755)
			if out, err := exec.Command("cp", "-a", reportDir, dest).CombinedOutput(); err != nil {
				t.Logf("keep the report dir: %v: %s", err, out)
			} else {
				t.Logf("the node e2e report dir (kubelet.log, the API server's log, junit) is in %s", dest)
			}
		}
	})

	jsonReport := filepath.Join(reportDir, "ginkgo-report.json")
	ginkgoFlags := []string{
		"-timeout=40m",
		"-nodes=1",
		`-focus="ImageGarbageCollectExclusion"`,
		"--json-report=" + jsonReport,
		"--no-color",
	}
	testFlags := []string{
		"--v 4",
		"--report-dir=" + reportDir,
		"--node-name " + framework.NodeName,
		"--container-runtime-endpoint=" + n.RuntimeEndpoint(),
		"--prepull-images=false",
		"--dns-domain=cluster.local",
		`--kubelet-flags="--cluster-domain=cluster.local"`,
	}
	ctx := context.Background()
	if deadline, ok := t.Deadline(); ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, deadline.Add(-2*time.Minute))
		defer cancel()
	}
	// The runner's own command line, as hack/make-rules/test-e2e-node.sh gives it for REMOTE=false,
	// with the dependencies built beforehand (make node-e2e-bins), the runner too: the script's
	// go run would compile in the tree while make test's verify may be regenerating it.
	runner := exec.CommandContext(ctx, filepath.Join(tierBin, "run_local"),
		"--build-dependencies=false",
		"--ginkgo-flags="+strings.Join(ginkgoFlags, " "),
		"--test-flags="+strings.Join(testFlags, " "),
		"--kubelet-config-file="+kubeletConfig,
	)
	// The runner looks for its dependencies in the tree (KUBE_ROOT); ginkgo runs e2e_node.test in
	// its own directory, where the framework writes its kubeconfig.
	runner.Dir = tree
	runner.Env = append(os.Environ(),
		"PATH="+fakeBin+":"+os.Getenv("PATH"),
		"FAKE_SYSTEMD_STATE="+units,
		"KUBE_TEST_REPO_LIST="+repoList,
		"KUBE_ROOT="+tree,
		"GOWORK=off",
		"GOFLAGS=-mod=mod",
	)
	logPath := filepath.Join(reportDir, "runner.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	runner.Stdout, runner.Stderr = logFile, logFile
	runner.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	runner.Cancel = func() error { return syscall.Kill(-runner.Process.Pid, syscall.SIGKILL) }
	start := time.Now()
	runErr := runner.Run()
	elapsed := time.Since(start).Round(time.Second)
	passed, failures := readGinkgoReport(t, jsonReport)
	t.Logf("upstream's node e2e runner: %v in %v; passed: %q", runErr, elapsed, passed)
	for _, f := range failures {
		t.Errorf("node e2e spec failed: %s", f)
	}
	if runErr != nil {
		log, _ := os.ReadFile(logPath)
		t.Fatalf("upstream's node e2e runner failed: %v; the last lines of its output:\n%s", runErr, framework.TailLines(string(log), 60))
	}
	for _, want := range upstreamNodeSpecs {
		if !slices.ContainsFunc(passed, func(got string) bool { return strings.Contains(got, want) }) {
			t.Errorf("spec %q did not run and pass", want)
		}
	}
	if len(passed) != len(upstreamNodeSpecs) {
		t.Errorf("%d specs passed, want exactly %d (%q)", len(passed), len(upstreamNodeSpecs), upstreamNodeSpecs)
	}
}

// readGinkgoReport returns the full texts of the specs that passed, and a line for each that
// failed, from a ginkgo --json-report.
func readGinkgoReport(t *testing.T, path string) (passed, failures []string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Errorf("ginkgo report: %v", err)
		return nil, nil
	}
	var reports []struct {
		SpecReports []struct {
			ContainerHierarchyTexts []string
			LeafNodeText            string
			LeafNodeType            string
			State                   string
			RunTime                 time.Duration
			Failure                 *struct {
				Message  string
				Location struct {
					FileName   string
					LineNumber int
				}
			}
		}
	}
	if err := json.Unmarshal(data, &reports); err != nil {
		t.Errorf("ginkgo report %s: %v", path, err)
		return nil, nil
	}
	for _, r := range reports {
		for _, s := range r.SpecReports {
			if s.LeafNodeType != "It" {
				continue
			}
			name := strings.Join(append(slices.Clone(s.ContainerHierarchyTexts), s.LeafNodeText), " ")
			switch s.State {
			case "passed":
				passed = append(passed, name)
				t.Logf("passed in %v: %s", s.RunTime.Round(time.Second), name)
			case "skipped", "pending":
			default:
				line := fmt.Sprintf("%s: %s", name, s.State)
				if s.Failure != nil {
					line += fmt.Sprintf(" at %s:%d: %s", filepath.Base(s.Failure.Location.FileName), s.Failure.Location.LineNumber, s.Failure.Message)
				}
				failures = append(failures, line)
			}
		}
	}
	return passed, failures
}

// staticBusybox reads a statically linked busybox binary (Debian's busybox-static; the
// dynamically linked one of the busybox package would not run in an image without a libc).
func staticBusybox(path string) ([]byte, error) {
	f, err := elf.Open(path)
	if err != nil {
		return nil, fmt.Errorf("busybox for the node e2e lane's busybox image: %w; install Debian's busybox-static (hack/install-e2e-deps.sh does)", err)
	}
	dynamic := slices.ContainsFunc(f.Progs, func(p *elf.Prog) bool { return p.Type == elf.PT_INTERP })
	if err := f.Close(); err != nil {
		return nil, err
	}
	if dynamic {
		return nil, fmt.Errorf("%s is dynamically linked; the busybox image needs Debian's busybox-static (apt-get install busybox-static)", path)
	}
	return os.ReadFile(path)
}

// killKubelet kills the main process of a unit whose supervisor could not stop it, once
// /proc says that PID runs the kubelet binary.
func killKubelet(t *testing.T, unitDir, kubelet string) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(unitDir, "main.pid"))
	if err != nil {
		return
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil {
		return
	}
	if exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid)); err != nil || exe != kubelet {
		return
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Errorf("kill the kubelet (PID %d) of %s: %v", pid, unitDir, err)
	}
}
