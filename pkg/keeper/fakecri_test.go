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
	"crypto/sha256"
	"fmt"
	"net"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/kubelet-imagecache/kubelet-imagecache/pkg/kubelet/images/allowlist"
)

// imageServer is a CRI ImageService served over gRPC on a unix socket, as a runtime would, with
// failures and latency that tests inject. Pulled images are added by their normalized name.
type imageServer struct {
	runtimeapi.UnimplementedImageServiceServer

	socket string
	grpc   *grpc.Server
	// client is the production client, one per server as one per image-keeper process.
	client *RuntimeImageService

	mu sync.Mutex
	// images by ID.
	images map[string]*runtimeapi.Image
	// pullErr, when set, fails pulls of the references it names (true = all), with the error of a
	// registry that cannot be reached, or with pullErrFormat (a %q for the reference) when set.
	pullErr       map[string]bool
	pullErrFormat string
	// pullDelay delays every pull.
	pullDelay time.Duration
	// inFlight and maxInFlight count concurrent pulls.
	inFlight, maxInFlight int
	pulls                 map[string]int
	// authByImage is the login sent with the last pull of each reference.
	authByImage map[string]*runtimeapi.AuthConfig
}

func newImageServer(t *testing.T) *imageServer {
	t.Helper()
	s := &imageServer{
		socket: filepath.Join(t.TempDir(), "cri.sock"),
		images: map[string]*runtimeapi.Image{},
		pulls:  map[string]int{},
	}
	s.start(t)
	t.Cleanup(s.stop)
	client, err := NewRuntimeImageService(s.endpoint())
	if err != nil {
		t.Fatal(err)
	}
	s.client = client
	t.Cleanup(func() { _ = client.Close() })
	return s
}

func (s *imageServer) start(t *testing.T) {
	t.Helper()
	ln, err := net.Listen("unix", s.socket)
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	runtimeapi.RegisterImageServiceServer(srv, s)
	s.grpc = srv
	go func() { _ = srv.Serve(ln) }()
}

// stop is the runtime going away (a restart, a crash); start brings it back on the same socket.
func (s *imageServer) stop() {
	if s.grpc != nil {
		s.grpc.Stop()
		s.grpc = nil
	}
}

func (s *imageServer) endpoint() string { return "unix://" + s.socket }

func (s *imageServer) connect(context.Context) (ImageService, error) {
	return s.client, nil
}

func imageID(ref string) string { return fmt.Sprintf("sha256:%x", sha256.Sum256([]byte(ref))) }

// add puts an image on the "node".
func (s *imageServer) add(ref string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	normalized, _ := allowlist.NormalizeReference(ref)
	img := &runtimeapi.Image{Id: imageID(normalized), Size: 1 << 20}
	if i := len(normalized) - len("@sha256:") - 64; i > 0 && normalized[i] == '@' {
		img.RepoDigests = []string{normalized}
	} else {
		img.RepoTags = []string{normalized}
	}
	s.images[img.Id] = img
}

// remove is `crictl rmi`.
func (s *imageServer) remove(ref string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	normalized, _ := allowlist.NormalizeReference(ref)
	delete(s.images, imageID(normalized))
}

func (s *imageServer) pullCount(ref string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pulls[ref]
}

func (s *imageServer) ListImages(context.Context, *runtimeapi.ListImagesRequest) (*runtimeapi.ListImagesResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	resp := &runtimeapi.ListImagesResponse{}
	for _, img := range s.images {
		resp.Images = append(resp.Images, img)
	}
	return resp, nil
}

func (s *imageServer) ImageStatus(_ context.Context, req *runtimeapi.ImageStatusRequest) (*runtimeapi.ImageStatusResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	img := s.images[req.GetImage().GetImage()]
	resp := &runtimeapi.ImageStatusResponse{Image: img}
	if img != nil && req.Verbose {
		resp.Info = map[string]string{"info": `{"imageSpec":{"config":{"Labels":{"cache.example.com/keep":"true"}}}}`}
	}
	return resp, nil
}

func (s *imageServer) PullImage(ctx context.Context, req *runtimeapi.PullImageRequest) (*runtimeapi.PullImageResponse, error) {
	ref := req.GetImage().GetImage()
	s.mu.Lock()
	s.pulls[ref]++
	if s.authByImage == nil {
		s.authByImage = map[string]*runtimeapi.AuthConfig{}
	}
	s.authByImage[ref] = req.GetAuth()
	s.inFlight++
	s.maxInFlight = max(s.maxInFlight, s.inFlight)
	delay, fail := s.pullDelay, s.pullErr[ref] || s.pullErr["*"]
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.inFlight--
		s.mu.Unlock()
	}()
	select {
	case <-time.After(delay):
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if fail {
		format := "failed to pull and unpack image %q: dial tcp 127.0.0.1:5000: connect: connection refused"
		if s.pullErrFormat != "" {
			format = s.pullErrFormat
		}
		return nil, status.Errorf(codes.Unknown, format, ref)
	}
	s.add(ref)
	return &runtimeapi.PullImageResponse{ImageRef: imageID(ref)}, nil
}

// ImageFsInfo is what cri-client calls to validate the connection.
func (s *imageServer) ImageFsInfo(context.Context, *runtimeapi.ImageFsInfoRequest) (*runtimeapi.ImageFsInfoResponse, error) {
	return &runtimeapi.ImageFsInfoResponse{}, nil
}
