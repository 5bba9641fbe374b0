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

package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// The unit's life as upstream's node e2e framework drives it (test/e2e_node/services/kubelet.go
// and util.go): start, find, restart, kill, restart, stop; each step checked against the
// processes themselves.
func TestUnitLifecycle(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "bin")
	if err := os.Mkdir(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	build := exec.Command("go", "build", "-o", filepath.Join(bin, "fakesystemd"), ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build: %v: %s", err, out)
	}
	for _, name := range []string{"systemd-run", "systemctl", "sudo"} {
		if err := os.Symlink("fakesystemd", filepath.Join(bin, name)); err != nil {
			t.Fatal(err)
		}
	}
	state := filepath.Join(dir, "units")
	if err := os.Mkdir(state, 0o755); err != nil {
		t.Fatal(err)
	}
	run := func(name string, args ...string) (string, error) {
		cmd := exec.Command(filepath.Join(bin, name), args...)
		cmd.Env = append(os.Environ(), "FAKE_SYSTEMD_STATE="+state, "PATH="+bin+":"+os.Getenv("PATH"))
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	must := func(name string, args ...string) string {
		t.Helper()
		out, err := run(name, args...)
		if err != nil {
			t.Fatalf("%s %q: %v: %s", name, args, err, out)
		}
		return out
	}
	const unit = "kubelet-20261203T072504.service"
	mainPID := func() int {
		t.Helper()
		data, err := os.ReadFile(filepath.Join(state, unit, mainPIDFile))
		if err != nil {
			t.Fatal(err)
		}
		pid, err := strconv.Atoi(string(data))
		if err != nil {
			t.Fatal(err)
		}
		return pid
	}
	alive := func(pid int) bool {
		// A zombie (exited, not yet reaped by whoever adopted it) counts as gone.
		stat, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
		if err != nil {
			return false
		}
		fields := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
		return len(fields) > 0 && fields[0] != "Z"
	}

	if out := must("systemd-run", "--version"); !strings.HasPrefix(out, "systemd 252 ") {
		t.Errorf("systemd-run --version: %q, want the framework's 'systemd NNN' form", out)
	}
	logFile := filepath.Join(dir, "kubelet.log")
	must("systemd-run", "-p", "Delegate=true", "-p", "StandardError=append:"+logFile, "--unit="+unit, "--slice=runtime.slice", "--remain-after-exit",
		"/bin/sh", "-c", "echo started; exec sleep 300")
	first := mainPID()
	if !alive(first) {
		t.Fatalf("main process %d is not running after systemd-run", first)
	}
	t.Cleanup(func() { _, _ = run("systemctl", "stop", unit) })
	if out := must("sudo", "systemctl", "list-units", "*kubelet*", "--state=running"); !strings.HasPrefix(out, unit+" loaded active running") {
		t.Errorf("list-units --state=running: %q", out)
	}
	if out, err := run("systemd-run", "--unit="+unit, "/bin/true"); err == nil || !strings.Contains(out, "already exists") {
		t.Errorf("a second systemd-run of %s: %v %q, want it refused", unit, err, out)
	}

	// The framework finds the unit by a regular expression that drops ".service".
	must("systemctl", "reset-failed", strings.TrimSuffix(unit, ".service"))
	must("systemctl", "restart", strings.TrimSuffix(unit, ".service"))
	second := mainPID()
	if second == first || alive(first) || !alive(second) {
		t.Errorf("restart: main PID %d -> %d; the first alive %v, the second alive %v", first, second, alive(first), alive(second))
	}

	must("systemctl", "kill", unit)
	if alive(second) {
		t.Errorf("kill: main process %d still runs", second)
	}
	if out := must("systemctl", "list-units", "*kubelet*", "--state=running"); out != "" {
		t.Errorf("list-units --state=running after kill: %q, want none", out)
	}
	if out := must("systemctl", "list-units", "*kubelet*"); !strings.HasPrefix(out, unit+" loaded") {
		t.Errorf("list-units after kill: %q, want the unit listed (it remains after exit)", out)
	}
	must("systemctl", "restart", unit)
	third := mainPID()
	if !alive(third) {
		t.Errorf("restart after kill: main process %d is not running", third)
	}

	must("systemctl", "stop", unit)
	if alive(third) {
		t.Errorf("stop: main process %d still runs", third)
	}
	if _, err := os.Stat(filepath.Join(state, unit)); !os.IsNotExist(err) {
		t.Errorf("stop: the unit's directory is still there (%v)", err)
	}
	log, err := os.ReadFile(logFile)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Count(string(log), "started\n"); got != 3 {
		t.Errorf("StandardError=append: the log holds %d starts, want 3 (appended, not truncated): %q", got, log)
	}

	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"systemctl", []string{"daemon-reload"}, `command "daemon-reload" is not supported`},
		{"systemctl", []string{"restart", "containerd.service"}, "unit containerd.service not loaded"},
		{"systemd-run", []string{"--scope", "/bin/true"}, `option "--scope" is not supported`},
		{"systemd-run", []string{"--unit=missing.service", "/nonexistent/kubelet"}, "/nonexistent/kubelet did not start"},
		{"systemd-run", []string{"--unit=../escape.service", "/bin/true"}, `unit name "../escape.service" is not valid`},
		{"sudo", []string{"-u", "nobody", "true"}, `option "-u" is not supported`},
	} {
		out, err := run(tc.name, tc.args...)
		if err == nil || !strings.Contains(out, tc.want) {
			t.Errorf("%s %q: %v %q, want an error containing %q", tc.name, tc.args, err, out, tc.want)
		}
	}
	// A unit whose main process could not start stays, failed, until it is stopped.
	if out := must("systemctl", "list-units", "missing*"); !strings.HasPrefix(out, "missing.service loaded failed failed") {
		t.Errorf("list-units after a failed start: %q", out)
	}
	must("systemctl", "stop", "missing.service")

	// A PID file that names another process (here this test's: a SIGHUP would end it) is refused.
	stale := filepath.Join(state, "stale.service")
	if err := os.Mkdir(stale, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(stale, supervisorPIDFile), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := run("systemctl", "restart", "stale.service"); err == nil || !strings.Contains(out, "is not its supervisor any more") {
		t.Errorf("restart with a stale PID file: %v %q, want it refused", err, out)
	}

	cmd := exec.Command(filepath.Join(bin, "systemctl"), "list-units")
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "FAKE_SYSTEMD_STATE is not set") {
		t.Errorf("without FAKE_SYSTEMD_STATE: %v %q, want it named", err, out)
	}
}
