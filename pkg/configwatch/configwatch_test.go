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
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/fsnotify/fsnotify"
)

func write(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

// start runs a Watcher on real inotify until the test ends.
func start(t *testing.T, paths Paths) chan struct{} {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	reload := make(chan struct{}, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		New(paths).Run(ctx, nil, reload)
	}()
	t.Cleanup(func() { cancel(); <-done })
	return reload
}

// expectReload repeats change until a reload comes (the first change may come before Run has
// added its watches), for up to 10 s; then drains what the repeats left.
func expectReload(t *testing.T, reload chan struct{}, what string, change func()) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		change()
		select {
		case <-reload:
			time.Sleep(50 * time.Millisecond)
			select {
			case <-reload:
			default:
			}
			return
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("no reload after %s", what)
		}
	}
}

func TestReloadOnChange(t *testing.T) {
	dir := t.TempDir()
	config := filepath.Join(dir, "config.yaml")
	write(t, config, "a")
	reload := start(t, Paths{Files: []string{config}})

	expectReload(t, reload, "a write in place", func() { write(t, config, "b") })
	expectReload(t, reload, "an editor's rename into place", func() {
		tmp := filepath.Join(dir, ".config.yaml.swp")
		write(t, tmp, "c")
		if err := os.Rename(tmp, config); err != nil {
			t.Fatal(err)
		}
	})
}

// A config file that is a symlink: edits of its target (in another directory) are seen, and so
// are edits of a new target after the link is pointed elsewhere.
func TestReloadFollowsSymlinks(t *testing.T) {
	linkDir, v1Dir, v2Dir := t.TempDir(), t.TempDir(), t.TempDir()
	v1, v2 := filepath.Join(v1Dir, "config.yaml"), filepath.Join(v2Dir, "config.yaml")
	write(t, v1, "v1")
	write(t, v2, "v2")
	link := filepath.Join(linkDir, "config.yaml")
	if err := os.Symlink(v1, link); err != nil {
		t.Fatal(err)
	}
	reload := start(t, Paths{Files: []string{link}})

	expectReload(t, reload, "an edit of the symlink's target", func() { write(t, v1, "v1 edited") })
	// ln -sfn: a new link renamed over the old one.
	tmp := filepath.Join(linkDir, ".config.yaml.tmp")
	if err := os.Symlink(v2, tmp); err != nil {
		t.Fatal(err)
	}
	expectReload(t, reload, "the symlink pointed at another file", func() {
		if err := os.Rename(tmp, link); err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Fatal(err)
		}
	})
	expectReload(t, reload, "an edit of the new target, in a directory not watched at start", func() { write(t, v2, "v2 edited") })
}

// A ConfigMap volume publishes new contents by swapping its "..data" symlink.
func TestReloadOnConfigMapSwap(t *testing.T) {
	dir := t.TempDir()
	for _, d := range []string{"..2026_01", "..2026_02"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
		write(t, filepath.Join(dir, d, "config.yaml"), d)
	}
	if err := os.Symlink("..2026_01", filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("..data/config.yaml", filepath.Join(dir, "config.yaml")); err != nil {
		t.Fatal(err)
	}
	reload := start(t, Paths{Files: []string{filepath.Join(dir, "config.yaml")}})
	next := "..2026_02"
	expectReload(t, reload, "the ..data swap", func() {
		tmp := filepath.Join(dir, "..data_tmp")
		_ = os.Remove(tmp)
		if err := os.Symlink(next, tmp); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(dir, "..data")); err != nil {
			t.Fatal(err)
		}
	})
}

func TestReloadOnDropIn(t *testing.T) {
	dir := t.TempDir()
	reload := start(t, Paths{DropInDir: dir})
	expectReload(t, reload, "a new drop-in", func() { write(t, filepath.Join(dir, "50-imagecache.conf"), "x") })
	expectReload(t, reload, "a removed drop-in", func() {
		_ = os.Remove(filepath.Join(dir, "50-imagecache.conf"))
		write(t, filepath.Join(dir, "50-imagecache.conf"), "y")
	})
}

func TestRelevant(t *testing.T) {
	dir := t.TempDir()
	config := filepath.Join(dir, "etc", "config.yaml")
	w := New(Paths{Files: []string{config}, DropInDir: filepath.Join(dir, "conf.d")})
	for _, tc := range []struct {
		path string
		want bool
	}{
		{config, true},
		{filepath.Join(dir, "etc", "..data"), true},
		{filepath.Join(dir, "conf.d", "50-imagecache.conf"), true},
		{filepath.Join(dir, "etc", "other.yaml"), false},
		{filepath.Join(dir, "etc", ".config.yaml.swp"), false},
		{filepath.Join(dir, "conf.d", "50-imagecache.conf.bak"), false},
		{filepath.Join(dir, "conf.d", "sub", "x.conf"), false},
	} {
		t.Run(filepath.Base(tc.path), func(t *testing.T) {
			if got := w.Relevant(tc.path); got != tc.want {
				t.Errorf("Relevant(%s) = %v; want %v", tc.path, got, tc.want)
			}
		})
	}
}

// SIGHUP and a failed watch (an inotify queue overflow loses events) each ask for a reload; one
// pending reload stands for many, and the loop never blocks on it.
func TestReloadOnSignalAndWatchError(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := New(Paths{})
		ctx, cancel := context.WithCancel(context.Background())
		hup := make(chan os.Signal)
		events := make(chan fsnotify.Event)
		errs := make(chan error)
		reload := make(chan struct{}, 1)
		done := make(chan struct{})
		go func() {
			defer close(done)
			w.loop(ctx, hup, events, errs, func(string) {}, reload)
		}()
		expect := func(what string, want bool) {
			t.Helper()
			synctest.Wait()
			select {
			case <-reload:
				if !want {
					t.Errorf("%s: a reload", what)
				}
			default:
				if want {
					t.Errorf("%s: no reload", what)
				}
			}
		}
		hup <- syscall.SIGHUP
		expect("SIGHUP", true)
		errs <- fsnotify.ErrEventOverflow
		expect("an inotify overflow", true)
		events <- fsnotify.Event{Name: "/elsewhere/unrelated.yaml", Op: fsnotify.Write}
		expect("an unrelated file", false)
		for i := 0; i < 3; i++ {
			hup <- syscall.SIGHUP // not blocked by the pending reload
		}
		expect("three SIGHUPs", true)
		expect("nothing more", false)
		cancel()
		<-done
	})
}
