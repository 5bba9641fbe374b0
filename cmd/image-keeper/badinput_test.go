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
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestMain runs the test binary as image-keeper when asked to (badInput starts it so), so that
// the bad-input table runs the real main, exit status and all, in a process of its own whose
// memory can be measured.
func TestMain(m *testing.M) {
	if os.Getenv("IMAGE_KEEPER_TEST_MAIN") == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// repeat is an endless stream of line, made as it is read: the test process stays small, so
// that the child's peak RSS (which counts the parent's pages until exec) measures the child.
type repeat struct {
	line string
	off  int
}

func (r *repeat) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		c := copy(p[n:], r.line[r.off:])
		n += c
		r.off = (r.off + c) % len(r.line)
	}
	return n, nil
}

// lines is n bytes of invalid references, one per line.
func lines(n int64) io.Reader { return io.LimitReader(&repeat{line: "Not A Reference!\n"}, n) }

// Bad input, one row per class (flags, image lists, kubelet configs and drop-ins, stdin, registry
// credentials, credential plugins, the holder's list): image-keeper refuses each with an error
// that names the input and the value, exits non-zero (2: a flag, or a file a flag names that is
// read while the flags are checked; 1: the configuration, read when image-keeper starts; explain
// and holder-manifest as documented), and stays within 32 MiB more than a process that reads nothing
// and 16 KiB of output, whatever the input's size (100 MB of stdin, a 50 MB line, /dev/zero, a FIFO with no writer).
func TestBadInput(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		t.Helper()
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	head := "apiVersion: imagekeeper.kubelet-imagecache.io/v1alpha1\nkind: ImageKeeperConfiguration\n"
	kubelet := "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n"
	big := write("big.yaml", head+"images:\n"+strings.Repeat("  - example.com/app:1 # padding padding padding\n", 30000))
	noRuntime := "unix://" + filepath.Join(dir, "no-runtime.sock")
	// The size of a process that reads nothing (a flag refused at once; larger under -race):
	// no input may add more than 32 MiB to it.
	var base int64
	{
		cmd := exec.Command(os.Args[0], "--no-such-flag")
		cmd.Env = append(os.Environ(), "IMAGE_KEEPER_TEST_MAIN=1")
		_ = cmd.Run()
		base = cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss << 10
	}

	for _, tc := range []struct {
		name  string
		args  []string
		stdin io.Reader
		code  int
		want  string
	}{
		{"unknown flag", []string{"--imgae", "nginx:1"}, nil, 2, "unknown flag: --imgae"},
		{"pull concurrency", []string{"--image", "nginx:1", "--pull-concurrency", "1000000"}, nil, 2, "--pull-concurrency 1000000: must be between 1 and 32"},
		{"interval", []string{"--image", "nginx:1", "--interval", "1ms"}, nil, 2, "--interval 1ms: must be at least 1s"},
		{"status on the network", []string{"--image", "nginx:1", "--status-listen", "0.0.0.0:10357"}, nil, 2, `--status-listen "0.0.0.0:10357": not a loopback address`},
		{"holder namespace", []string{"--image", "nginx:1", "--holder-daemonset-namespace", "Kube_System"}, nil, 2, `--holder-daemonset-namespace "Kube_System": not a namespace name`},
		{"pull slots", []string{"--image", "nginx:1", "--pull-slots", "-1"}, nil, 2, "--pull-slots -1: must be between 0 (no slots) and 1000"},
		{"pull slot namespace", []string{"--image", "nginx:1", "--pull-slot-namespace", "Image_Keeper"}, nil, 2, `--pull-slot-namespace "Image_Keeper": not a namespace name`},
		{"pull slot lease", []string{"--image", "nginx:1", "--pull-slot-lease-duration", "1s"}, nil, 2, "--pull-slot-lease-duration 1s: must be between 5s and 10m0s"},
		{"condition type, the kubelet's", []string{"--image", "nginx:1", "--node-condition-type", "Ready"}, nil, 2, `--node-condition-type "Ready": the kubelet owns that condition`},
		{"condition type, not a name", []string{"--image", "nginx:1", "--node-condition-type", "image cache"}, nil, 2, `--node-condition-type "image cache": not a condition type`},
		{"taint key", []string{"--image", "nginx:1", "--startup-taint-key", "readiness.k8s.io/"}, nil, 2, `--startup-taint-key "readiness.k8s.io/": not a taint key`},
		{"taint mode", []string{"--image", "nginx:1", "--startup-taint-mode", "rearms"}, nil, 2, `--startup-taint-mode "rearms": want one of [remove-once none rearm]`},
		{"image, not pullable", []string{"--image", "nginx", "--runtime-endpoint", noRuntime}, nil, 1, `--image[0] "nginx"`},
		{"image, uppercase", []string{"--image", "Example.com/App:1", "--runtime-endpoint", noRuntime}, nil, 1, `"Example.com/App:1"`},
		{"config, a device", []string{"--config", "/dev/zero", "--runtime-endpoint", noRuntime}, nil, 1, "/dev/zero: not a regular file"},
		{"config, a FIFO", []string{"--config", fifo, "--runtime-endpoint", noRuntime}, nil, 1, fifo + ": not a regular file"},
		{"config, too large", []string{"--config", big, "--runtime-endpoint", noRuntime}, nil, 1, big + ": larger than 1048576 bytes"},
		{"config, missing", []string{"--config", filepath.Join(dir, "nope.yaml"), "--runtime-endpoint", noRuntime}, nil, 1, "nope.yaml: no such file or directory"},
		{"config, second document", []string{"--config", write("two.yaml", head+"images: [example.com/a:1]\n--- # x\nimages: [example.com/b:1]\n"), "--runtime-endpoint", noRuntime}, nil, 1, "2 YAML documents; want one"},
		{"config, unknown field", []string{"--config", write("field.yaml", head+"image: [example.com/a:1]\n"), "--runtime-endpoint", noRuntime}, nil, 1, `unknown field "image"`},
		{"config, wrong kind", []string{"--config", write("kind.yaml", "apiVersion: v1\nkind: ConfigMap\n"), "--runtime-endpoint", noRuntime}, nil, 1, `kind "ConfigMap"`},
		{"config, duplicate", []string{"--config", write("dup.yaml", head+"images: [example.com/a:1, example.com/a:1]\n"), "--runtime-endpoint", noRuntime}, nil, 1, "duplicate of"},
		{"kubelet config, catch-all", []string{"--image", "nginx:1", "--kubelet-config", write("kubelet.yaml", kubelet+"imageGCExclude: [\"*\"]\n"), "--runtime-endpoint", noRuntime}, nil, 1, `"*"`},
		{"kubelet config, a device", []string{"--image", "nginx:1", "--kubelet-config", "/dev/zero", "--runtime-endpoint", noRuntime}, nil, 1, "/dev/zero: not a regular file"},
		{"drop-ins without the config", []string{"--image", "nginx:1", "--kubelet-config-dir", dir, "--runtime-endpoint", noRuntime}, nil, 1, "needs --kubelet-config"},
		{"drop-in, bad budget", []string{"--image", "nginx:1", "--kubelet-config", write("k2.yaml", kubelet), "--kubelet-config-dir", filepath.Dir(write("d/10-budget.conf", kubelet+"imageGCExcludeBudgetPercent: 1000\n")), "--runtime-endpoint", noRuntime}, nil, 1, "imageGCExcludeBudgetPercent"},
		{"docker config, a device", []string{"--image", "nginx:1", "--docker-config", "/dev/zero", "--runtime-endpoint", noRuntime}, nil, 2, "/dev/zero: not a regular file"},
		{"docker config, not JSON", []string{"--image", "nginx:1", "--docker-config", write("docker.json", "{auths"), "--runtime-endpoint", noRuntime}, nil, 2, "docker.json"},
		{"credential plugins, half", []string{"--image", "nginx:1", "--image-credential-provider-config", write("providers.yaml", "x"), "--runtime-endpoint", noRuntime}, nil, 2, "go together"},
		{"credential plugins, bad config", []string{"--image", "nginx:1", "--image-credential-provider-config", write("providers2.yaml", "apiVersion: kubelet.config.k8s.io/v1\nkind: CredentialProviderConfig\nproviders: [{name: ../x}]\n"), "--image-credential-provider-bin-dir", dir, "--runtime-endpoint", noRuntime}, nil, 2, "../x"},
		{"explain, 100 MB of bad stdin", []string{"explain", "--config", write("allow.yaml", kubelet+"imageGCExclude: [example.com/a:1]\n")}, lines(100 << 20), 2, "more"},
		{"explain, one endless line", []string{"explain", "--config", filepath.Join(dir, "allow.yaml")}, io.LimitReader(&repeat{line: "a"}, 50<<20), 2, "longer than"},
		{"explain, budget the kubelet refuses", []string{"explain", "--config", write("budget.yaml", kubelet+"imageGCExclude: [example.com/a:1]\nimageGCExcludeBudgetPercent: 1000\n")}, strings.NewReader("example.com/a:1\n"), 2, "imageGCExcludeBudgetPercent"},
		{"holder list, a pattern", []string{"holder-manifest", "--holder-image", "h:1", "--image", "example.com/*"}, nil, 1, `"example.com/*"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], tc.args...)
			cmd.Env = append(os.Environ(), "IMAGE_KEEPER_TEST_MAIN=1")
			cmd.Stdin = tc.stdin
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			start := time.Now()
			err := cmd.Run()
			code := 0
			if exitErr, ok := err.(*exec.ExitError); ok {
				code = exitErr.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			rss := cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss << 10
			out := stderr.String() + stdout.String()
			if code != tc.code || !strings.Contains(out, tc.want) {
				t.Errorf("exit %d; want %d and %q in:\n%s", code, tc.code, tc.want, bounded(out))
			}
			if len(out) > 16<<10 {
				t.Errorf("%d bytes of output; want at most 16 KiB", len(out))
			}
			if rss > base+32<<20 {
				t.Errorf("peak RSS %d MiB; want at most %d MiB, the size of a process that reads nothing plus 32 MiB", rss>>20, (base+32<<20)>>20)
			}
			t.Logf("exit %d in %v, peak RSS %.1f MiB, %d bytes of output", code, time.Since(start).Round(time.Millisecond), float64(rss)/(1<<20), len(out))
		})
	}
}

func bounded(s string) string {
	if len(s) > 2000 {
		return s[:2000] + fmt.Sprintf("... (%d bytes)", len(s))
	}
	return s
}
