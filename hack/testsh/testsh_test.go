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

// Package testsh tests hack/test.sh, make test's order of stages, with a fake make (MAKE) that
// records the targets it is given and fails or hangs on the ones a test names. The node lane's
// state is the real hack/e2e.sh's, under a temporary OUTPUT_DIR.
package testsh

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// fakeMake is make for hack/test.sh: it appends its target to FAKE_LOG, exits 3 for the targets
// in FAKE_FAIL, and otherwise does what test.sh relies on: make e2e-only reports the node lane
// (as hack/e2e.sh does once it has waited for it), and with FAKE_HANG make test-unit writes its
// PID there and sleeps.
const fakeMake = `#!/usr/bin/env bash
t=${@: -1}
echo "${t}" >>"${FAKE_LOG}"
case " ${FAKE_FAIL:-} " in *" ${t} "*) exit 3 ;; esac
case ${t} in
  e2e-only) touch "${OUTPUT_DIR}/e2e-node.reported"; sleep "${FAKE_E2E_SLEEP:-0}" ;;
  test-unit) if [[ -n ${FAKE_HANG:-} ]]; then echo $$ >"${FAKE_HANG}"; exec sleep 60; fi ;;
esac
`

type run struct {
	dir  string
	cmd  *exec.Cmd
	out  strings.Builder
	done chan error
}

// start runs hack/test.sh with the fake make and env (NAME=value) added.
func start(t *testing.T, env ...string) *run {
	t.Helper()
	dir := t.TempDir()
	makePath := filepath.Join(dir, "make")
	if err := os.WriteFile(makePath, []byte(fakeMake), 0o755); err != nil {
		t.Fatal(err)
	}
	r := &run{dir: dir, done: make(chan error, 1)}
	r.cmd = exec.Command("../test.sh")
	r.cmd.Env = append(os.Environ(), "MAKE="+makePath, "OUTPUT_DIR="+filepath.Join(dir, "out"), "FAKE_LOG="+filepath.Join(dir, "targets"))
	r.cmd.Env = append(r.cmd.Env, env...)
	r.cmd.Stdout, r.cmd.Stderr = &r.out, &r.out
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { r.done <- r.cmd.Wait() }()
	return r
}

// wait returns test.sh's exit status once it has ended.
func (r *run) wait(t *testing.T) int {
	t.Helper()
	select {
	case err := <-r.done:
		var exit *exec.ExitError
		if err != nil && !errors.As(err, &exit) {
			t.Fatal(err)
		}
		return r.cmd.ProcessState.ExitCode()
	case <-time.After(time.Minute):
		_ = r.cmd.Process.Kill()
		t.Fatalf("hack/test.sh did not end within a minute; its output:\n%s", r.out.String())
		return 0
	}
}

// targets are the make targets test.sh ran, in the order they started.
func (r *run) targets(t *testing.T) []string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(r.dir, "targets"))
	if err != nil {
		t.Fatal(err)
	}
	return strings.Fields(string(data))
}

func TestStages(t *testing.T) {
	for _, tc := range []struct {
		name, fail string
		wantExit   int
		// ran are the targets that must have run, notRun those that must not; before holds pairs
		// that must have started in that order.
		ran, notRun []string
		before      [][2]string
		// summary are lines the summary at the end must hold.
		summary []string
	}{{
		name: "all pass",
		ran:  []string{"e2e-node-start", "e2e-deps", "test-unit", "verify", "test-upstream", "e2e-only"},
		before: [][2]string{{"e2e-node-start", "e2e-deps"}, {"e2e-deps", "test-unit"}, {"e2e-deps", "e2e-only"},
			{"test-unit", "verify"}, {"verify", "test-upstream"}},
		summary: []string{">>> make test: passed", "  e2e: passed", "  test-upstream: passed"},
	}, {
		name: "a check fails", fail: "verify", wantExit: 3,
		ran: []string{"test-unit", "verify", "e2e-only"}, notRun: []string{"test-upstream"},
		summary: []string{">>> make test: FAILED", "  verify: FAILED (exit 3)", "  e2e: passed"},
	}, {
		name: "the end-to-end tests fail", fail: "e2e-only", wantExit: 3,
		ran:     []string{"test-unit", "verify", "test-upstream", "e2e-only"},
		summary: []string{">>> make test: FAILED", "  e2e: FAILED (exit 3)", "  test-upstream: passed"},
	}, {
		// The lane was started, never waited for by e2e-only: test.sh waits for it itself (here
		// there is none, so that fails too).
		name: "e2e-deps fails", fail: "e2e-deps", wantExit: 1,
		ran: []string{"test-unit", "verify", "test-upstream"}, notRun: []string{"e2e-only"},
		summary: []string{">>> make test: FAILED", "  e2e-deps: FAILED (exit 3)", "  e2e-node-finish: FAILED", "  test-upstream: passed"},
	}, {
		// Without a lane, e2e-only starts it, after the checks rather than beside them.
		name: "the lane cannot be started", fail: "e2e-node-start", wantExit: 3,
		ran:     []string{"e2e-deps", "test-unit", "verify", "test-upstream", "e2e-only"},
		before:  [][2]string{{"test-upstream", "e2e-only"}},
		summary: []string{">>> make test: FAILED", "  e2e-node-start: FAILED (exit 3)", "  e2e: passed"},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			r := start(t, "FAKE_FAIL="+tc.fail)
			if got := r.wait(t); got != tc.wantExit {
				t.Errorf("exit status %d, want %d", got, tc.wantExit)
			}
			targets := r.targets(t)
			for _, want := range tc.ran {
				if !slices.Contains(targets, want) {
					t.Errorf("make %s did not run; ran: %q", want, targets)
				}
			}
			for _, not := range tc.notRun {
				if slices.Contains(targets, not) {
					t.Errorf("make %s ran; want it skipped", not)
				}
			}
			for _, pair := range tc.before {
				if i, j := slices.Index(targets, pair[0]), slices.Index(targets, pair[1]); i < 0 || j < 0 || i > j {
					t.Errorf("make %s started after make %s; ran: %q", pair[0], pair[1], targets)
				}
			}
			summary := r.out.String()[strings.LastIndex(r.out.String(), ">>> make test:"):]
			for _, want := range tc.summary {
				if !slices.ContainsFunc(strings.Split(summary, "\n"), func(line string) bool { return strings.HasPrefix(line, want) }) {
					t.Errorf("the summary has no line starting %q:\n%s", want, summary)
				}
			}
			if t.Failed() {
				t.Logf("hack/test.sh's output:\n%s", r.out.String())
			}
		})
	}
}

// An interrupted make test stops the checks running in the background, not only the
// end-to-end tests in the foreground.
func TestInterruptStopsTheChecks(t *testing.T) {
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "test-unit.pid")
	r := start(t, "FAKE_HANG="+pidFile, "FAKE_E2E_SLEEP=1")
	var pid int
	for deadline := time.Now().Add(30 * time.Second); pid == 0; time.Sleep(10 * time.Millisecond) {
		if data, err := os.ReadFile(pidFile); err == nil && strings.HasSuffix(string(data), "\n") {
			pid, _ = strconv.Atoi(strings.TrimSpace(string(data)))
		}
		if time.Now().After(deadline) {
			t.Fatalf("make test-unit did not start; output:\n%s", r.out.String())
		}
	}
	if err := r.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if got := r.wait(t); got != 130 {
		t.Errorf("exit status %d after SIGTERM, want 130", got)
	}
	// The hung check is killed asynchronously; it is gone (or a zombie of test.sh's, reaped with
	// it) soon after.
	for deadline := time.Now().Add(10 * time.Second); syscall.Kill(pid, 0) == nil; time.Sleep(10 * time.Millisecond) {
		if stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat"); err == nil && strings.Contains(string(stat), ") Z ") {
			break
		}
		if time.Now().After(deadline) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
			t.Fatalf("make test-unit (PID %d) still runs 10 s after make test was interrupted", pid)
		}
	}
}
