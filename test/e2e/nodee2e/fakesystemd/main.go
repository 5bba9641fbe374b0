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

// Command fakesystemd is a test-only stand-in for the three commands upstream's node e2e
// framework (k8s.io/kubernetes/test/e2e_node) runs the kubelet with, for machines without a
// booted systemd: installed on PATH under the names systemd-run, systemctl and sudo, it behaves
// as the subset the framework uses.
//
//   - systemd-run --version; systemd-run [-p K=V]... --unit=NAME [--slice=S] [--remain-after-exit]
//     CMD ARGS...: starts a supervisor for the transient unit NAME, which runs CMD with its
//     stdout and stderr appended to the file of StandardError=append:PATH (or file:PATH).
//   - systemctl list-units PATTERN [--state=running] | reset-failed NAME | restart NAME |
//     kill NAME | stop NAME: as systemd does for that unit; restart and kill wait until done.
//   - sudo [-n] CMD ARGS...: runs CMD (the caller is already root).
//
// Units live in FAKE_SYSTEMD_STATE (a directory; required), one directory each: the command
// line, the supervisor's and the main process's PIDs and the state. The supervisor is the main
// process's parent and reaps it; it handles SIGHUP (restart), SIGUSR1 (kill: SIGTERM to the main
// process, which may exit; the unit remains) and SIGTERM (stop: the main process goes, then the
// supervisor and the unit). Nothing else is supported: anything else is an error that says so.
package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// unit is what a unit's directory holds in the file "unit.json".
type unit struct {
	Name    string   `json:"name"`
	Command []string `json:"command"`
	// Output is the file the main process's stdout and stderr are appended to.
	Output string `json:"output"`
}

// The files of a unit's directory besides unit.json.
const (
	supervisorPIDFile = "supervisor.pid"
	mainPIDFile       = "main.pid"
	// stateFile holds "running", "exited" or "failed"; startsFile how often the main process was
	// started.
	stateFile  = "state"
	startsFile = "starts"
)

// waitFor bounds how long systemctl waits for a supervisor to act on a signal.
const waitFor = 90 * time.Second

func main() {
	name := filepath.Base(os.Args[0])
	args := os.Args[1:]
	if name == "fakesystemd" && len(args) > 0 {
		name, args = args[0], args[1:]
	}
	var err error
	switch name {
	case "sudo":
		err = sudo(args)
	case "systemd-run":
		err = systemdRun(args)
	case "systemctl":
		err = systemctl(args)
	case "supervise":
		err = supervise(args)
	default:
		err = fmt.Errorf("run as systemd-run, systemctl or sudo (a link of that name), not %q", name)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "fakesystemd %s: %v\n", name, err)
		os.Exit(1)
	}
}

func stateDir() (string, error) {
	dir := os.Getenv("FAKE_SYSTEMD_STATE")
	if dir == "" {
		return "", errors.New("FAKE_SYSTEMD_STATE is not set: set it to the directory that holds the units")
	}
	return dir, nil
}

func sudo(args []string) error {
	for len(args) > 0 && strings.HasPrefix(args[0], "-") {
		switch args[0] {
		case "-n", "--non-interactive", "-E":
			args = args[1:]
		default:
			return fmt.Errorf("option %q is not supported (supported: -n, --non-interactive, -E)", args[0])
		}
	}
	if len(args) == 0 {
		return errors.New("no command given")
	}
	path, err := exec.LookPath(args[0])
	if err != nil {
		return err
	}
	return syscall.Exec(path, args, os.Environ())
}

func systemdRun(args []string) error {
	if len(args) == 1 && args[0] == "--version" {
		// The framework appends to the log file from systemd 240 on (StandardError=append:).
		fmt.Println("systemd 252 (252-fakesystemd: the test supervisor of kubelet-imagecache's node e2e lane)")
		return nil
	}
	u := unit{}
	for len(args) > 0 && strings.HasPrefix(args[0], "-") {
		arg := args[0]
		args = args[1:]
		switch {
		case arg == "-p" && len(args) > 0:
			prop := args[0]
			args = args[1:]
			for _, prefix := range []string{"StandardError=append:", "StandardError=file:"} {
				if strings.HasPrefix(prop, prefix) {
					u.Output = strings.TrimPrefix(prop, prefix)
				}
			}
			// Delegate=true and the rest change nothing here: the kubelet manages its own cgroups.
		case strings.HasPrefix(arg, "--unit="):
			u.Name = strings.TrimPrefix(arg, "--unit=")
		case strings.HasPrefix(arg, "--slice="), arg == "--remain-after-exit":
			// The unit always remains after its main process exits, as with --remain-after-exit.
		default:
			return fmt.Errorf("option %q is not supported (supported: -p PROPERTY, --unit=NAME, --slice=SLICE, --remain-after-exit)", arg)
		}
	}
	if err := validUnitName(u.Name); u.Name != "" && err != nil {
		return err
	}
	if u.Name == "" || len(args) == 0 {
		return errors.New("usage: systemd-run [-p K=V]... --unit=NAME [--slice=S] [--remain-after-exit] CMD [ARGS]")
	}
	u.Command = args
	root, err := stateDir()
	if err != nil {
		return err
	}
	dir := filepath.Join(root, u.Name)
	if err := os.Mkdir(dir, 0o755); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("unit %s already exists (in %s): stop it first", u.Name, dir)
		}
		return err
	}
	if u.Output == "" {
		u.Output = filepath.Join(dir, "output.log")
	}
	data, err := json.Marshal(u)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "unit.json"), data, 0o644); err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	sup := exec.Command(self, "supervise", dir)
	sup.Args[0] = "fakesystemd"
	supLog, err := os.Create(filepath.Join(dir, "supervisor.log"))
	if err != nil {
		return err
	}
	defer supLog.Close()
	sup.Stdout, sup.Stderr = supLog, supLog
	// Its own session: the supervisor outlives systemd-run and the caller's process group.
	sup.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := sup.Start(); err != nil {
		return err
	}
	// The supervisor is not this process's child for long; it is reaped by whoever adopts it.
	if err := sup.Process.Release(); err != nil {
		return err
	}
	if err := waitUntil(dir, func() bool {
		return readString(dir, startsFile) == "1" || readString(dir, stateFile) == "failed"
	}); err != nil {
		return err
	}
	if readString(dir, stateFile) == "failed" {
		log, _ := os.ReadFile(filepath.Join(dir, "supervisor.log"))
		return fmt.Errorf("unit %s: %s did not start: %s", u.Name, u.Command[0], strings.TrimSpace(string(log)))
	}
	return nil
}

// supervise runs a unit's main process until SIGTERM (stop).
func supervise(args []string) error {
	if len(args) != 1 {
		return errors.New("usage: supervise UNIT_DIR")
	}
	dir := args[0]
	root, err := stateDir()
	if err != nil {
		return err
	}
	if filepath.Dir(filepath.Clean(dir)) != filepath.Clean(root) {
		return fmt.Errorf("unit directory %s is not directly under FAKE_SYSTEMD_STATE (%s)", dir, root)
	}
	var u unit
	data, err := os.ReadFile(filepath.Join(dir, "unit.json"))
	if err != nil {
		return err
	}
	if err := json.Unmarshal(data, &u); err != nil {
		return err
	}
	signals := make(chan os.Signal, 4)
	signal.Notify(signals, syscall.SIGHUP, syscall.SIGUSR1, syscall.SIGTERM)
	if err := os.WriteFile(filepath.Join(dir, supervisorPIDFile), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		return err
	}
	starts := 0
	var main *exec.Cmd
	exited := make(chan error, 1)
	start := func() error {
		out, err := os.OpenFile(u.Output, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return err
		}
		defer out.Close()
		cmd := exec.Command(u.Command[0], u.Command[1:]...)
		cmd.Stdout, cmd.Stderr = out, out
		if err := cmd.Start(); err != nil {
			writeString(dir, stateFile, "failed")
			return err
		}
		main = cmd
		starts++
		writeString(dir, mainPIDFile, strconv.Itoa(main.Process.Pid))
		writeString(dir, stateFile, "running")
		writeString(dir, startsFile, strconv.Itoa(starts))
		go func() { exited <- cmd.Wait() }()
		return nil
	}
	// A main process that cannot start leaves the unit failed, and the supervisor waiting for a
	// restart or a stop, as systemd keeps a failed unit.
	startOrFail := func() {
		if err := start(); err != nil {
			fmt.Fprintf(os.Stderr, "fakesystemd supervise: %v\n", err)
		}
	}
	// stopMain ends the main process, if it runs: SIGTERM, then SIGKILL after 10 s, as systemd's
	// default TimeoutStopSec would (90 s) but shorter for a test.
	stopMain := func() {
		if readString(dir, stateFile) != "running" {
			return
		}
		_ = main.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-exited:
			recordExit(dir, err)
		case <-time.After(10 * time.Second):
			_ = main.Process.Kill()
			recordExit(dir, <-exited)
		}
	}
	startOrFail()
	for {
		select {
		case err := <-exited:
			recordExit(dir, err)
		case sig := <-signals:
			switch sig {
			case syscall.SIGHUP:
				stopMain()
				startOrFail()
			case syscall.SIGUSR1:
				if readString(dir, stateFile) == "running" {
					_ = main.Process.Signal(syscall.SIGTERM)
				}
			case syscall.SIGTERM:
				stopMain()
				return os.RemoveAll(dir)
			}
		}
	}
}

func recordExit(dir string, err error) {
	state := "exited"
	if err != nil {
		state = "failed"
	}
	writeString(dir, stateFile, state)
}

func systemctl(args []string) error {
	if len(args) == 0 {
		return errors.New("no command given")
	}
	root, err := stateDir()
	if err != nil {
		return err
	}
	cmd, args := args[0], args[1:]
	if cmd == "list-units" {
		return listUnits(root, args)
	}
	switch cmd {
	case "reset-failed", "restart", "kill", "stop":
	default:
		return fmt.Errorf("command %q is not supported (supported: list-units, reset-failed, restart, kill, stop)", cmd)
	}
	if len(args) != 1 {
		return fmt.Errorf("%s takes one unit name, got %q", cmd, args)
	}
	// As systemctl does, a name without a unit type suffix means a service.
	name := args[0]
	if !strings.Contains(name, ".") {
		name += ".service"
	}
	if err := validUnitName(name); err != nil {
		return err
	}
	dir := filepath.Join(root, name)
	pid, err := supervisorOf(dir)
	if err != nil {
		return fmt.Errorf("unit %s not loaded: %w", args[0], err)
	}
	switch cmd {
	case "reset-failed":
		return nil
	case "restart":
		before := readString(dir, startsFile)
		if err := syscall.Kill(pid, syscall.SIGHUP); err != nil {
			return fmt.Errorf("signal the supervisor of %s (PID %d): %w", args[0], pid, err)
		}
		return waitUntil(dir, func() bool {
			return readString(dir, startsFile) != before && readString(dir, stateFile) == "running"
		})
	case "kill":
		if err := syscall.Kill(pid, syscall.SIGUSR1); err != nil {
			return fmt.Errorf("signal the supervisor of %s (PID %d): %w", args[0], pid, err)
		}
		return waitUntil(dir, func() bool { return readString(dir, stateFile) != "running" })
	case "stop":
		if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
			return fmt.Errorf("signal the supervisor of %s (PID %d): %w", args[0], pid, err)
		}
		return waitUntil(dir, func() bool {
			_, err := os.Stat(dir)
			return errors.Is(err, fs.ErrNotExist)
		})
	}
	return nil
}

// listUnits prints the units whose names match the pattern, as "NAME loaded active|failed STATE".
func listUnits(root string, args []string) error {
	pattern, running := "*", false
	for _, arg := range args {
		switch {
		case arg == "--state=running":
			running = true
		case strings.HasPrefix(arg, "-"):
			return fmt.Errorf("list-units option %q is not supported (supported: --state=running)", arg)
		default:
			pattern = arg
		}
	}
	entries, err := os.ReadDir(root)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if ok, err := filepath.Match(pattern, e.Name()); err != nil || !ok {
			if err != nil {
				return fmt.Errorf("pattern %q: %w", pattern, err)
			}
			continue
		}
		state := readString(filepath.Join(root, e.Name()), stateFile)
		if running && state != "running" {
			continue
		}
		active := "active"
		if state == "failed" {
			active = "failed"
		}
		fmt.Printf("%s loaded %s %s fakesystemd unit\n", e.Name(), active, state)
	}
	return nil
}

// validUnitName refuses a unit name that is not one path element.
func validUnitName(name string) error {
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, "/\x00") {
		return fmt.Errorf("unit name %q is not valid: want a name such as kubelet-1.service", name)
	}
	return nil
}

// supervisorOf returns the PID of the unit's supervisor, once it has checked that this PID is
// still that supervisor (a PID file can outlive its process, and the PID be reused).
func supervisorOf(dir string) (int, error) {
	pid, err := strconv.Atoi(readString(dir, supervisorPIDFile))
	if err != nil {
		return 0, fmt.Errorf("no supervisor PID in %s", dir)
	}
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil || string(cmdline) != "fakesystemd\x00supervise\x00"+dir+"\x00" {
		return 0, fmt.Errorf("PID %d in %s is not its supervisor any more", pid, filepath.Join(dir, supervisorPIDFile))
	}
	return pid, nil
}

func waitUntil(dir string, done func() bool) error {
	deadline := time.Now().Add(waitFor)
	for !done() {
		if time.Now().After(deadline) {
			return fmt.Errorf("unit in %s: not done after %s (state %q)", dir, waitFor, readString(dir, stateFile))
		}
		time.Sleep(50 * time.Millisecond)
	}
	return nil
}

func readString(dir, name string) string {
	data, _ := os.ReadFile(filepath.Join(dir, name))
	return strings.TrimSpace(string(data))
}

// writeString replaces the file atomically, so that systemctl never reads half of it.
func writeString(dir, name, value string) {
	tmp := filepath.Join(dir, "."+name)
	if err := os.WriteFile(tmp, []byte(value), 0o644); err == nil {
		_ = os.Rename(tmp, filepath.Join(dir, name))
	}
}
