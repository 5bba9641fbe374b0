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

// Package configfile reads the small files image-keeper is configured with (its config, the
// kubelet's config and drop-ins, registry credentials, credential provider config): regular
// files only, of bounded size, without waiting on a FIFO or reading a device forever.
package configfile

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// MaxSize is the largest config file read: they are a few KiB; 1 MiB holds ~20,000 images.
const MaxSize = 1 << 20

// Read reads a regular file of at most MaxSize bytes and returns it with its file info.
func Read(path string) ([]byte, os.FileInfo, error) {
	// O_NONBLOCK: opening a FIFO must not wait for a writer; it is refused below.
	fd, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, nil, err
	}
	defer fd.Close()
	info, err := fd.Stat()
	if err != nil {
		return nil, nil, err
	}
	if !info.Mode().IsRegular() {
		return nil, nil, fmt.Errorf("%s: not a regular file (%s)", path, strings.TrimSpace(info.Mode().Type().String()))
	}
	data, err := io.ReadAll(io.LimitReader(fd, MaxSize+1))
	if err != nil {
		return nil, nil, err
	}
	if len(data) > MaxSize {
		return nil, nil, fmt.Errorf("%s: larger than %d bytes", path, MaxSize)
	}
	return data, info, nil
}

// WriteDurable writes data to path, mode 0600, through a hidden temporary file in the same
// directory (the kubelet ignores static pod manifests whose name starts with a dot), synced,
// renamed over path, and the directory synced: after a power loss path holds the old data or the
// new, never a part.
func WriteDurable(path string, data []byte) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // after the rename, a no-op
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
