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
	"cmp"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"sigs.k8s.io/yaml"

	"github.com/kubelet-imagecache/kubelet-imagecache/pkg/keeper"
)

// KeeperConfig is image-keeper's config file (keeper.File) listing images.
func KeeperConfig(images ...string) []byte {
	data, err := yaml.Marshal(keeper.File{APIVersion: keeper.APIVersion, Kind: keeper.Kind, Images: images})
	if err != nil {
		panic(err) // a struct of strings always marshals
	}
	return data
}

// WriteKeeperConfig writes image-keeper's config file listing images at path.
func WriteKeeperConfig(path string, images ...string) error {
	return os.WriteFile(path, KeeperConfig(images...), 0o644)
}

// StartKeeper starts image-keeper against the node's runtime.
func (n *Node) StartKeeper(args ...string) error {
	port, err := FreePort()
	if err != nil {
		return err
	}
	n.KeeperAddr = fmt.Sprintf("127.0.0.1:%d", port)
	p, err := Start(n.LogDir, "image-keeper", append([]string{cmp.Or(n.KeeperBinary, filepath.Join(n.Bin, "image-keeper")),
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

// PushKeeperImage builds image-keeper's OCI image from bin/image-keeper as `make image` does
// (hack/image) and pushes it to the node's registry as e2e/image-keeper:e2e; it returns the
// reference.
func (n *Node) PushKeeperImage(repoRoot string) (string, error) {
	layout := n.path("image-keeper.oci")
	ref := n.RegistryAddr + "/e2e/image-keeper:e2e"
	cmd := GoCommand(repoRoot, "run", "./hack/image", "build", "--binary", filepath.Join(n.Bin, "image-keeper"), "--version", "e2e", "--out", layout)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("%s: %v\n%s", strings.Join(cmd.Args, " "), err, out)
	}
	if err := PushLayout(n.RegistryAddr, layout, "e2e/image-keeper", "e2e"); err != nil {
		return "", err
	}
	return ref, nil
}
