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

package keeper

import (
	"context"
	"fmt"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials/insecure"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// maxCRIMessageSize is the kubelet's limit on CRI messages: a ListImages of thousands of images
// is larger than gRPC's default 4 MiB.
const maxCRIMessageSize = 16 << 20

// RuntimeImageService is the runtime's CRI image service over one gRPC connection, made once
// for the life of the process. gRPC connects lazily and reconnects by itself (within 3 s) when
// the runtime restarts or its socket is recreated, so a runtime that is down costs a failed
// call, not a connection. (k8s.io/cri-client's builder leaves its connection open when the
// runtime does not answer at start, and a retry loop leaks one per attempt.)
type RuntimeImageService struct {
	conn    *grpc.ClientConn
	client  runtimeapi.ImageServiceClient
	runtime runtimeapi.RuntimeServiceClient
}

// NewRuntimeImageService returns a client of the CRI image service at endpoint
// ("unix:///run/containerd/containerd.sock"). It does not connect: the first call does.
func NewRuntimeImageService(endpoint string) (*RuntimeImageService, error) {
	if !strings.HasPrefix(endpoint, "unix://") {
		return nil, fmt.Errorf("--runtime-endpoint %q: want unix:///path/to/socket", endpoint)
	}
	conn, err := grpc.NewClient(endpoint,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithAuthority("localhost"),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(maxCRIMessageSize)),
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: time.Second, Multiplier: 1.6, Jitter: 0.2, MaxDelay: 3 * time.Second},
			MinConnectTimeout: 5 * time.Second,
		}))
	if err != nil {
		return nil, fmt.Errorf("--runtime-endpoint %q: %w", endpoint, err)
	}
	return &RuntimeImageService{conn: conn, client: runtimeapi.NewImageServiceClient(conn), runtime: runtimeapi.NewRuntimeServiceClient(conn)}, nil
}

// ListImages lists the runtime's images.
func (s *RuntimeImageService) ListImages(ctx context.Context, filter *runtimeapi.ImageFilter) ([]*runtimeapi.Image, error) {
	resp, err := s.client.ListImages(ctx, &runtimeapi.ListImagesRequest{Filter: filter})
	if err != nil {
		return nil, err
	}
	return resp.GetImages(), nil
}

// ImageStatus returns an image's status, with the runtime's verbose info when asked.
func (s *RuntimeImageService) ImageStatus(ctx context.Context, image *runtimeapi.ImageSpec, verbose bool) (*runtimeapi.ImageStatusResponse, error) {
	return s.client.ImageStatus(ctx, &runtimeapi.ImageStatusRequest{Image: image, Verbose: verbose})
}

// PullImage pulls an image and returns its image reference (the image ID on containerd).
func (s *RuntimeImageService) PullImage(ctx context.Context, image *runtimeapi.ImageSpec, auth *runtimeapi.AuthConfig, podSandboxConfig *runtimeapi.PodSandboxConfig) (string, error) {
	resp, err := s.client.PullImage(ctx, &runtimeapi.PullImageRequest{Image: image, Auth: auth, SandboxConfig: podSandboxConfig})
	if err != nil {
		return "", err
	}
	return resp.GetImageRef(), nil
}

// ListContainers lists every container, running or exited: the kubelet counts the images of
// all of them as in use.
func (s *RuntimeImageService) ListContainers(ctx context.Context) ([]*runtimeapi.Container, error) {
	resp, err := s.runtime.ListContainers(ctx, &runtimeapi.ListContainersRequest{})
	if err != nil {
		return nil, err
	}
	return resp.GetContainers(), nil
}

// ListPodSandbox lists every pod sandbox, ready or not.
func (s *RuntimeImageService) ListPodSandbox(ctx context.Context) ([]*runtimeapi.PodSandbox, error) {
	resp, err := s.runtime.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{})
	if err != nil {
		return nil, err
	}
	return resp.GetItems(), nil
}

// ContainerStatus returns a container's status, whose mounts name the images it mounts as image
// volumes.
func (s *RuntimeImageService) ContainerStatus(ctx context.Context, id string) (*runtimeapi.ContainerStatus, error) {
	resp, err := s.runtime.ContainerStatus(ctx, &runtimeapi.ContainerStatusRequest{ContainerId: id})
	if err != nil {
		return nil, err
	}
	return resp.GetStatus(), nil
}

// ImageFsInfo returns the runtime's image filesystems (their mount points and usage).
func (s *RuntimeImageService) ImageFsInfo(ctx context.Context) ([]*runtimeapi.FilesystemUsage, error) {
	resp, err := s.client.ImageFsInfo(ctx, &runtimeapi.ImageFsInfoRequest{})
	if err != nil {
		return nil, err
	}
	return resp.GetImageFilesystems(), nil
}

// Close closes the connection.
func (s *RuntimeImageService) Close() error { return s.conn.Close() }
