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
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"
	"time"
)

// Teardown stops everything the node started, by PID, removes every pod sandbox and container,
// removes its cgroup root, unmounts what is mounted under Root, and removes Root unless keep is set.
func (n *Node) Teardown(keep bool) error {
	n.Keeper.Stop(5 * time.Second)
	if n.Kubelet != nil {
		n.Kubelet.Stop(15 * time.Second)
	}
	if n.RuntimeProcess != nil && !n.RuntimeProcess.Exited() {
		n.removePods()
		n.RuntimeProcess.Stop(n.Runtime.stopGrace())
	}
	if n.Registry != nil {
		n.Registry.Stop(5 * time.Second)
	}
	var errs []error
	if err := n.teardownPodNetwork(); err != nil {
		errs = append(errs, err)
	}
	if err := n.removeCgroupRoot(); err != nil {
		errs = append(errs, err)
	}
	if err := UnmountUnder(n.Root); err != nil {
		errs = append(errs, err)
	}
	if !keep {
		if err := os.RemoveAll(n.Root); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// UnmountUnder unmounts, lazily, everything mounted under dir (dir too), deepest first.
func UnmountUnder(dir string) error {
	var errs []error
	for _, m := range MountsUnder(dir) {
		if err := syscall.Unmount(m, syscall.MNT_DETACH); err != nil {
			errs = append(errs, fmt.Errorf("unmount %s: %w", m, err))
		}
	}
	return errors.Join(errs...)
}

// MountsUnder lists mount points under root (root too), deepest first.
func MountsUnder(root string) []string {
	data, err := os.ReadFile("/proc/self/mounts")
	if err != nil {
		return nil
	}
	var mounts []string
	for _, line := range strings.Split(string(data), "\n") {
		fields := strings.Fields(line)
		if len(fields) > 1 && (fields[1] == root || strings.HasPrefix(fields[1], root+"/")) {
			mounts = append(mounts, fields[1])
		}
	}
	for i, j := 0, len(mounts)-1; i < j; i, j = i+1, j-1 {
		mounts[i], mounts[j] = mounts[j], mounts[i]
	}
	return mounts
}
