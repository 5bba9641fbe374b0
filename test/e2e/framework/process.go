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
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
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

// GoCommand is a go command the harness runs in dir (the repository): `go build` or `go run`
// with the settings make builds this repository's binaries with (the Makefile's GO_ENV and
// -trimpath), so that the build cache compiles their dependencies once for all of them.
func GoCommand(dir, subcommand string, args ...string) *exec.Cmd {
	cmd := exec.Command("go", append([]string{subcommand, "-trimpath"}, args...)...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	return cmd
}

// FreePort returns a free TCP port on 127.0.0.1.
func FreePort() (int, error) {
	portsMu.Lock()
	defer portsMu.Unlock()
	// Nodes start side by side, in this process and in another one (ClaimsFile): a port handed
	// to one is never handed to another, even once its listener is closed and before the
	// component has bound it.
	return claimOne("port", func(claimed map[int]bool) (int, error) {
		for {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				return 0, err
			}
			port := ln.Addr().(*net.TCPAddr).Port
			ln.Close()
			if !portsGiven[port] && !claimed[port] {
				portsGiven[port] = true
				return port, nil
			}
		}
	})
}

var (
	portsMu    sync.Mutex
	portsGiven = map[int]bool{}
)

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

// TailLines returns the last lines of s.
func TailLines(s string, lines int) string {
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
	return TailLines(p.LogText(), lines)
}

// HarvestLogs copies the logs of procs (nil entries skipped) into dest and returns, for each, a
// header naming where the full log went followed by its last lines: what a failed test prints.
func HarvestLogs(dest string, lines int, procs ...*Process) (string, error) {
	if err := os.MkdirAll(dest, 0o755); err != nil {
		return "", err
	}
	var b strings.Builder
	var errs []error
	for _, p := range procs {
		if p == nil {
			continue
		}
		data, err := os.ReadFile(p.Log)
		if err == nil {
			err = os.WriteFile(filepath.Join(dest, filepath.Base(p.Log)), data, 0o644)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("keep the log of %s: %w", p.Name, err))
		}
		fmt.Fprintf(&b, "--- tail of %s (full log in %s):\n%s\n", p.Name, dest, TailLines(string(data), lines))
	}
	return b.String(), errors.Join(errs...)
}
