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
	"hash/fnv"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"
)

// Several nodes run on one machine at once (the e2e runs a scenario's runtime legs side by side;
// a cluster has several nodes). Each kubelet then needs a cgroup root of its own: with the
// default "/", every kubelet manages /kubepods, and a kubelet removes the pod cgroups of pods it
// does not know, killing their processes, which would be the other nodes' pods.

// CgroupRoot is the node's kubelet cgroupRoot: "/imagecache-<Root's base name>-<hash of Root>",
// unique to the node's directory and named for it.
func (n *Node) CgroupRoot() string {
	h := fnv.New32a()
	h.Write([]byte(n.Root))
	return fmt.Sprintf("/imagecache-%s-%08x", filepath.Base(n.Root), h.Sum32())
}

// EnsureCgroupRoot creates the node's cgroup root in every cgroup hierarchy, as the kubelet
// requires it to exist in each of them; on cgroup v1 a new cpuset is empty until its cpus and
// mems are copied from its parent.
func (n *Node) EnsureCgroupRoot() error {
	mounts, err := cgroupMounts()
	if err != nil {
		return err
	}
	for _, m := range mounts {
		dir := filepath.Join(m, n.CgroupRoot())
		if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("create the node's cgroup root: %w", err)
		}
		if filepath.Base(m) != "cpuset" {
			continue
		}
		for _, file := range []string{"cpuset.cpus", "cpuset.mems"} {
			value, err := os.ReadFile(filepath.Join(m, file))
			if err != nil {
				return err
			}
			if err := os.WriteFile(filepath.Join(dir, file), value, 0o644); err != nil {
				return fmt.Errorf("initialize %s: %w", filepath.Join(dir, file), err)
			}
		}
	}
	return nil
}

// removeCgroupRoot removes the node's cgroup root and everything the kubelet and the runtime
// created under it, deepest first, once their processes are gone (a pod's processes may take a
// moment to exit after its sandbox was removed). A cgroup that still holds a process after 15 s
// is an error: something the node started outlived it.
func (n *Node) removeCgroupRoot() error {
	mounts, err := cgroupMounts()
	if err != nil {
		return err
	}
	var dirs []string
	for _, m := range mounts {
		root := filepath.Join(m, n.CgroupRoot())
		_ = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, path)
			}
			return nil
		})
	}
	sort.Slice(dirs, func(i, j int) bool { return strings.Count(dirs[i], "/") > strings.Count(dirs[j], "/") })
	var last error
	Eventually(15*time.Second, 250*time.Millisecond, func() bool {
		last = nil
		for _, d := range dirs {
			if err := syscall.Rmdir(d); err != nil && !errors.Is(err, fs.ErrNotExist) {
				last = fmt.Errorf("remove cgroup %s: %w", d, err)
			}
		}
		return last == nil
	})
	return last
}

// cgroupMounts lists the mount points of the machine's cgroup hierarchies (v1 and v2).
func cgroupMounts() ([]string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []string
	s := bufio.NewScanner(f)
	for s.Scan() {
		// "36 25 0:31 / /sys/fs/cgroup/cpu rw,... shared:1 - cgroup cgroup rw,cpu"
		fields := strings.Fields(s.Text())
		for i, field := range fields {
			if field == "-" && i+1 < len(fields) && (fields[i+1] == "cgroup" || fields[i+1] == "cgroup2") {
				out = append(out, fields[4])
				break
			}
		}
	}
	return out, s.Err()
}
