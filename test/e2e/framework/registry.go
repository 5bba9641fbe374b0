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
	"net"
	"os"
	"strings"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// StartRegistry starts Debian's docker-registry on a loopback port (the same port again after
// StopRegistry, so that references stay valid).
func (n *Node) StartRegistry() error {
	if n.RegistryAddr == "" {
		port, err := FreePort()
		if err != nil {
			return err
		}
		n.RegistryAddr = fmt.Sprintf("127.0.0.1:%d", port)
	}
	config := fmt.Sprintf(`version: 0.1
log:
  level: info
  accesslog:
    disabled: false
storage:
  filesystem:
    rootdirectory: %s
  delete:
    enabled: true
http:
  addr: %s
`, n.path("registry", "data"), n.RegistryAddr)
	if n.RegistryUser != "" {
		hash, err := bcrypt.GenerateFromPassword([]byte(n.RegistryPassword), bcrypt.MinCost)
		if err != nil {
			return err
		}
		if err := os.WriteFile(n.path("registry", "htpasswd"), []byte(n.RegistryUser+":"+string(hash)+"\n"), 0o600); err != nil {
			return err
		}
		config += fmt.Sprintf("auth:\n  htpasswd:\n    realm: e2e\n    path: %s\n", n.path("registry", "htpasswd"))
		registryLogins.Store(n.RegistryAddr, [2]string{n.RegistryUser, n.RegistryPassword})
	}
	if err := os.WriteFile(n.path("registry", "config.yml"), []byte(config), 0o644); err != nil {
		return err
	}
	p, err := Start(n.LogDir, "registry", []string{"docker-registry", "serve", n.path("registry", "config.yml")})
	if err != nil {
		return err
	}
	n.Registry = p
	if !Eventually(15*time.Second, 100*time.Millisecond, func() bool {
		c, err := net.Dial("tcp", n.RegistryAddr)
		if err == nil {
			c.Close()
		}
		return err == nil
	}) {
		return fmt.Errorf("registry did not listen on %s; log: %s", n.RegistryAddr, TailLines(p.LogText(), 20))
	}
	return nil
}

// StopRegistry stops the registry: the node is offline.
func (n *Node) StopRegistry() {
	n.Registry.Stop(5 * time.Second)
}

// HasBlob reports whether containerd's content store holds a blob (containerd only): after an
// image is removed and nothing references it, containerd's garbage collector deletes its blobs,
// and only then does a pull download them again.
func (n *Node) HasBlob(digest string) bool {
	_, err := os.Stat(n.path("containerd", "root", "io.containerd.content.v1.content", "blobs", "sha256", strings.TrimPrefix(digest, "sha256:")))
	return err == nil
}
