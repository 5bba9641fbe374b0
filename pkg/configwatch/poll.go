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
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"syscall"
	"time"

	"github.com/kubelet-imagecache/kubelet-imagecache/pkg/configfile"
)

// Poll reads the watched files (and the drop-ins) every interval and asks for a reload when
// their contents changed since its last look. It sees what inotify cannot: a file bind-mounted
// into a container (a hostPath volume of type File) and written in place on the host sends no
// event to the container's directory watch. It returns an error when a watched file is such a
// mount of a file that was replaced on the host (renamed over, or deleted): the mount keeps the
// old file, whose link count is 0, and never shows the new one; only a new mount, a restarted
// container, does. Two looks in a row must see it, so that a rename racing a look is not
// mistaken for one. It runs until ctx is done.
func (w *Watcher) Poll(ctx context.Context, interval time.Duration, reload chan<- struct{}) error {
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	last := w.fingerprint()
	unlinked := map[string]bool{}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-ticker.C:
		}
		for _, path := range w.given {
			if !linkedNowhere(path) {
				delete(unlinked, path)
				continue
			}
			if unlinked[path] {
				return fmt.Errorf("%s: the file was replaced or removed where it came from (a host file mounted into this container and renamed over on the host); this mount keeps showing the old file, so image-keeper stops for its container to be restarted with the new one", path)
			}
			unlinked[path] = true
		}
		if now := w.fingerprint(); now != last {
			last = now
			select {
			case reload <- struct{}{}:
			default:
			}
		}
	}
}

// linkedNowhere reports whether path names a file no directory links any more: only a mount of
// a file that was deleted or renamed over where it came from does.
func linkedNowhere(path string) bool {
	info, err := os.Stat(path)
	if err != nil {
		return false
	}
	st, ok := info.Sys().(*syscall.Stat_t)
	return ok && info.Mode().IsRegular() && st.Nlink == 0
}

// fingerprint hashes what the watched files and drop-ins hold now; a file that cannot be read
// counts as its error.
func (w *Watcher) fingerprint() [sha256.Size]byte {
	h := sha256.New()
	add := func(path string) {
		data, _, err := configfile.Read(path)
		if err != nil {
			data = []byte("error: " + err.Error())
		}
		fmt.Fprintf(h, "%s\x00%d\x00", path, len(data))
		h.Write(data)
	}
	for _, path := range w.given {
		add(path)
	}
	if w.dropInDir != "" {
		names, _ := filepath.Glob(filepath.Join(w.dropInDir, "*.conf"))
		sort.Strings(names)
		for _, path := range names {
			add(path)
		}
	}
	var sum [sha256.Size]byte
	copy(sum[:], h.Sum(nil))
	return sum
}
