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

// Package configwatch tells a daemon when to read its configuration again: when a config file
// changes (written in place, renamed into place by an editor, or swapped behind a symlink as a
// ConfigMap volume does), when a *.conf drop-in appears, changes or goes, and on SIGHUP. When
// the watch itself fails (an inotify queue overflow loses events), it asks for a reload rather
// than miss a change.
package configwatch

import (
	"context"
	"os"
	"path/filepath"

	"github.com/fsnotify/fsnotify"
	"k8s.io/klog/v2"
)

// Paths are what to watch. Empty fields are not watched.
type Paths struct {
	// Files are config files.
	Files []string
	// DropInDir holds *.conf drop-ins (the kubelet's --config-dir).
	DropInDir string
}

// Watcher watches Paths.
type Watcher struct {
	given     []string        // the config files, absolute
	files     map[string]bool // given, and the targets of symlinks among them
	dirs      map[string]bool // what the fsnotify watcher watches
	dropInDir string
}

// New resolves paths (relative to the working directory, symlinks to their targets). Nothing is
// watched until Run.
func New(paths Paths) *Watcher {
	w := &Watcher{files: map[string]bool{}, dirs: map[string]bool{}}
	for _, f := range paths.Files {
		if f == "" {
			continue
		}
		abs, _ := filepath.Abs(f)
		w.given = append(w.given, abs)
		w.files[abs] = true
		w.dirs[filepath.Dir(abs)] = true
	}
	w.followSymlinks()
	if paths.DropInDir != "" {
		w.dropInDir, _ = filepath.Abs(paths.DropInDir)
		w.dirs[w.dropInDir] = true
	}
	return w
}

// followSymlinks adds the current target of each symlinked config file, and its directory, and
// returns the directories that are new. A symlinked config changes where the link points to,
// and may be pointed somewhere else later: it is followed again after every change.
func (w *Watcher) followSymlinks() (newDirs []string) {
	for _, abs := range w.given {
		target, err := filepath.EvalSymlinks(abs)
		if err != nil || target == abs {
			continue
		}
		w.files[target] = true
		if dir := filepath.Dir(target); !w.dirs[dir] {
			w.dirs[dir] = true
			newDirs = append(newDirs, dir)
		}
	}
	return newDirs
}

// Run sends on reload (without blocking: one pending reload stands for any number) for every
// change and every receive on hup, until ctx is done. Directories are watched, not files, so
// that rename-into-place is seen. If inotify cannot be used, only hup works; that is logged.
func (w *Watcher) Run(ctx context.Context, hup <-chan os.Signal, reload chan<- struct{}) {
	logger := klog.FromContext(ctx)
	var events <-chan fsnotify.Event
	var errs <-chan error
	add := func(string) {}
	watcher, err := fsnotify.NewWatcher()
	if err != nil {
		logger.Error(err, "Cannot watch config files; reload with SIGHUP")
	} else {
		defer func() { _ = watcher.Close() }()
		add = func(dir string) {
			if err := watcher.Add(dir); err != nil {
				logger.Error(err, "Cannot watch a config directory; reload with SIGHUP", "dir", dir)
			}
		}
		for dir := range w.dirs {
			add(dir)
		}
		events, errs = watcher.Events, watcher.Errors
	}
	w.loop(ctx, hup, events, errs, add, reload)
}

// loop is Run's select, on channels a test can feed; add watches one more directory.
func (w *Watcher) loop(ctx context.Context, hup <-chan os.Signal, events <-chan fsnotify.Event, errs <-chan error, add func(dir string), reload chan<- struct{}) {
	logger := klog.FromContext(ctx)
	notify := func() {
		select {
		case reload <- struct{}{}:
		default:
		}
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			logger.Info("SIGHUP: reloading configuration")
			notify()
		case ev, ok := <-events:
			if !ok {
				events = nil
				continue
			}
			if w.Relevant(ev.Name) {
				for _, dir := range w.followSymlinks() {
					add(dir)
				}
				notify()
			}
		case err, ok := <-errs:
			if !ok {
				errs = nil
				continue
			}
			// An overflow loses events: reload everything rather than miss a change.
			logger.Error(err, "Watching config files failed; reloading everything")
			notify()
		}
	}
}

// Relevant reports whether a change to path can change the configuration: a watched file or a
// symlink's target, a *.conf in the drop-in directory, or Kubernetes' "..data" symlink, which a
// ConfigMap or Secret volume swaps to publish new contents.
func (w *Watcher) Relevant(path string) bool {
	abs, _ := filepath.Abs(path)
	if w.files[abs] || filepath.Base(abs) == "..data" {
		return true
	}
	return w.dropInDir != "" && filepath.Dir(abs) == w.dropInDir && filepath.Ext(abs) == ".conf"
}
