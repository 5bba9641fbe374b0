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

package configwatch

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"testing/synctest"
	"time"
)

// A file written in place, and a drop-in that appears, ask for a reload at the next look; no
// change, no reload.
func TestPollSeesChanges(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir := t.TempDir()
		file, dropIns := filepath.Join(dir, "config.yaml"), filepath.Join(dir, "conf.d")
		if err := os.WriteFile(file, []byte("a: 1\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Mkdir(dropIns, 0o755); err != nil {
			t.Fatal(err)
		}
		w := New(Paths{Files: []string{file}, DropInDir: dropIns})
		reload := make(chan struct{}, 1)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error)
		go func() { done <- w.Poll(ctx, time.Second, reload) }()
		look := func() bool {
			time.Sleep(time.Second)
			synctest.Wait()
			select {
			case <-reload:
				return true
			default:
				return false
			}
		}
		if look() {
			t.Error("a reload with nothing changed")
		}
		f, err := os.OpenFile(file, os.O_WRONLY|os.O_TRUNC, 0) // in place: the same inode
		if err != nil {
			t.Fatal(err)
		}
		_, _ = f.WriteString("a: 2\n")
		f.Close()
		if !look() {
			t.Error("a file written in place was not seen")
		}
		if err := os.WriteFile(filepath.Join(dropIns, "10-x.conf"), []byte("b: 1\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		if !look() {
			t.Error("a new drop-in was not seen")
		}
		if err := os.WriteFile(filepath.Join(dropIns, "notes.txt"), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
		if look() {
			t.Error("a file that is not a *.conf drop-in asked for a reload")
		}
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
}

// A file bind-mounted from another (as a hostPath volume of type File is into a container) and
// then replaced at its source by a rename: the mount keeps the old, unlinked file, so Poll stops
// with an error naming the path, for the container to be restarted with a new mount. Needs root
// (a bind mount), as the tests here run.
func TestPollStopsOnAReplacedMount(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for a bind mount")
	}
	dir := t.TempDir()
	host, mounted := filepath.Join(dir, "host.yaml"), filepath.Join(dir, "mounted.yaml")
	for _, p := range []string{host, mounted} {
		if err := os.WriteFile(p, []byte("a: 1\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := syscall.Mount(host, mounted, "", syscall.MS_BIND, ""); err != nil {
		t.Fatalf("bind mount: %v", err)
	}
	t.Cleanup(func() { _ = syscall.Unmount(mounted, 0) })
	synctest.Test(t, func(t *testing.T) {
		w := New(Paths{Files: []string{mounted}})
		reload := make(chan struct{}, 1)
		done := make(chan error, 1)
		go func() { done <- w.Poll(context.Background(), time.Second, reload) }()
		time.Sleep(2 * time.Second)
		synctest.Wait()
		select {
		case err := <-done:
			t.Fatalf("stopped while the mount was current: %v", err)
		default:
		}
		next := filepath.Join(dir, ".host.yaml.new")
		if err := os.WriteFile(next, []byte("a: 2\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(next, host); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * time.Second)
		synctest.Wait()
		select {
		case err := <-done:
			if err == nil || !strings.Contains(err.Error(), mounted) || !strings.Contains(err.Error(), "restarted with the new one") {
				t.Errorf("Poll stopped with %v; want the path and what to do", err)
			}
		default:
			t.Fatal("Poll did not stop on a mount of a replaced file")
		}
	})
}
