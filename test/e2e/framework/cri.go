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
	"context"
	"fmt"
	"strings"
	"time"

	criapi "k8s.io/cri-api/pkg/apis"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	remote "k8s.io/cri-client/pkg"
)

func (n *Node) resetClients() {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.images, n.runtime = nil, nil
}

// RuntimeService is a CRI client of the runtime's runtime service, shared by every poll.
func (n *Node) RuntimeService() (criapi.RuntimeService, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.runtime != nil {
		return n.runtime, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	rs, err := remote.NewRemoteRuntimeServiceBuilder().WithEndpoint(n.RuntimeEndpoint()).WithConnectionTimeout(30 * time.Second).Build(ctx)
	if err != nil {
		return nil, err
	}
	n.runtime = rs
	return rs, nil
}

// ImageService is a CRI client of the runtime's image service.
func (n *Node) ImageService() (criapi.ImageManagerService, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.images != nil {
		return n.images, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	svc, err := remote.NewRemoteImageServiceBuilder().WithEndpoint(n.RuntimeEndpoint()).WithConnectionTimeout(2 * time.Minute).Build(ctx)
	if err != nil {
		return nil, err
	}
	n.images = svc
	return svc, nil
}

// Pull pulls an image through CRI, as the kubelet would.
func (n *Node) Pull(ref string) error {
	svc, err := n.ImageService()
	if err != nil {
		return err
	}
	// A test registry started with a login gets it, as its pushes do.
	var auth *runtimeapi.AuthConfig
	if host, _, ok := strings.Cut(ref, "/"); ok {
		if login, ok := registryLogins.Load(host); ok {
			user := login.([2]string)
			auth = &runtimeapi.AuthConfig{Username: user[0], Password: user[1]}
		}
	}
	_, err = svc.PullImage(context.Background(), &runtimeapi.ImageSpec{Image: ref}, auth, nil)
	return err
}

// RemoveImage is `crictl rmi`.
func (n *Node) RemoveImage(ref string) error {
	svc, err := n.ImageService()
	if err != nil {
		return err
	}
	return svc.RemoveImage(context.Background(), &runtimeapi.ImageSpec{Image: ref})
}

// Present lists the node's images by every repo tag, repo digest and ID.
func (n *Node) Present() (map[string]bool, error) {
	svc, err := n.ImageService()
	if err != nil {
		return nil, err
	}
	list, err := svc.ListImages(context.Background(), nil)
	if err != nil {
		return nil, err
	}
	present := map[string]bool{}
	for _, img := range list {
		present[img.Id] = true
		for _, ref := range append(img.RepoTags, img.RepoDigests...) {
			present[ref] = true
		}
	}
	return present, nil
}

// RuntimeImageID is the ID the runtime lists the image by (and the kubelet asks it by):
// "sha256:<hex>" on containerd, the bare hex on CRI-O.
func (n *Node) RuntimeImageID(ref string) (string, error) {
	svc, err := n.ImageService()
	if err != nil {
		return "", err
	}
	resp, err := svc.ImageStatus(context.Background(), &runtimeapi.ImageSpec{Image: ref}, false)
	if err != nil {
		return "", err
	}
	if resp.GetImage() == nil {
		return "", fmt.Errorf("%s: no such image on the node", ref)
	}
	return resp.GetImage().GetId(), nil
}
