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
	"fmt"
	"path/filepath"
)

// StartKeeper starts image-keeper against the node's runtime.
func (n *Node) StartKeeper(args ...string) error {
	port, err := FreePort()
	if err != nil {
		return err
	}
	n.KeeperAddr = fmt.Sprintf("127.0.0.1:%d", port)
	p, err := Start(n.LogDir, "image-keeper", append([]string{filepath.Join(n.Bin, "image-keeper"),
		"--runtime-endpoint", n.RuntimeEndpoint(),
		"--listen", n.KeeperAddr,
		"-v=2",
	}, args...))
	if err != nil {
		return err
	}
	n.Keeper = p
	return nil
}
