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
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// imageStatusMethod is the CRI call whose verbose form the kubelet's selectors read labels from.
const imageStatusMethod = "/runtime.v1.ImageService/ImageStatus"

// CRIProxy sits on a unix socket between a CRI client (the kubelet) and the node's runtime and
// forwards every call unchanged, byte for byte, except verbose ImageStatus calls for the images
// it is told to fail: those get an Unavailable error, as from a runtime that stopped answering
// mid-pass. It lets a test make the kubelet's label look-ups fail on a real runtime.
type CRIProxy struct {
	// Endpoint is the proxy's CRI endpoint, unix://<path>.
	Endpoint string

	server   *grpc.Server
	upstream *grpc.ClientConn
	done     chan struct{}

	// mu guards failing.
	mu      sync.Mutex
	failing map[string]bool
}

// StartCRIProxy starts a proxy on socket in front of the runtime at endpoint.
func StartCRIProxy(socket, endpoint string) (*CRIProxy, error) {
	_ = os.Remove(socket)
	ln, err := net.Listen("unix", socket)
	if err != nil {
		return nil, err
	}
	upstream, err := grpc.NewClient("unix://"+strings.TrimPrefix(endpoint, "unix://"), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		ln.Close()
		return nil, err
	}
	p := &CRIProxy{Endpoint: "unix://" + socket, upstream: upstream, done: make(chan struct{}), failing: map[string]bool{}}
	p.server = grpc.NewServer(grpc.ForceServerCodecV2(rawCodec{}), grpc.UnknownServiceHandler(p.forward))
	go func() {
		defer close(p.done)
		_ = p.server.Serve(ln)
	}()
	return p, nil
}

// FailVerboseImageStatus makes verbose ImageStatus calls for these image IDs (or references, as
// the caller asks) fail; with none, every call goes through again.
func (p *CRIProxy) FailVerboseImageStatus(images ...string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.failing = map[string]bool{}
	for _, img := range images {
		p.failing[img] = true
	}
}

// Stop closes the proxy's listener and connections.
func (p *CRIProxy) Stop() {
	if p == nil {
		return
	}
	p.server.Stop()
	<-p.done
	_ = p.upstream.Close()
}

// forward relays one call of any method as raw frames in both directions (unary and streaming
// alike), after checking an ImageStatus request against the failing images.
func (p *CRIProxy) forward(_ any, in grpc.ServerStream) error {
	method, ok := grpc.MethodFromServerStream(in)
	if !ok {
		return status.Error(codes.Internal, "no method in stream")
	}
	ctx, cancel := context.WithCancel(in.Context())
	defer cancel()
	out, err := p.upstream.NewStream(ctx, &grpc.StreamDesc{ServerStreams: true, ClientStreams: true}, method, grpc.ForceCodecV2(rawCodec{}))
	if err != nil {
		return err
	}
	// refused carries a refusal from the client pump, which then cancels the upstream call.
	refused := make(chan error, 1)
	go func() {
		for {
			var frame []byte
			if err := in.RecvMsg(&frame); err != nil {
				if errors.Is(err, io.EOF) {
					_ = out.CloseSend()
				} else {
					cancel()
				}
				return
			}
			if method == imageStatusMethod {
				if err := p.check(frame); err != nil {
					refused <- err
					cancel()
					return
				}
			}
			if err := out.SendMsg(&frame); err != nil {
				return // the upstream call ended; RecvMsg below reports how
			}
		}
	}()
	if header, err := out.Header(); err == nil {
		_ = in.SendHeader(header)
	}
	for {
		var frame []byte
		if err := out.RecvMsg(&frame); err != nil {
			select {
			case refusal := <-refused:
				return refusal
			default:
			}
			in.SetTrailer(out.Trailer())
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		if err := in.SendMsg(&frame); err != nil {
			return err
		}
	}
}

// check fails a verbose ImageStatus request for a failing image.
func (p *CRIProxy) check(frame []byte) error {
	var req runtimeapi.ImageStatusRequest
	if err := proto.Unmarshal(frame, &req); err != nil || !req.GetVerbose() {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.failing[req.GetImage().GetImage()] {
		return status.Error(codes.Unavailable, fmt.Sprintf("e2e CRI proxy: verbose ImageStatus of %s refused", req.GetImage().GetImage()))
	}
	return nil
}

// rawCodec passes gRPC frames through undecoded. It has no name, so that requests carry the
// content type a CRI client sends, "application/grpc": a codec's name would make it
// "application/grpc+<name>", and CRI-O, which serves gRPC and HTTP on one socket, tells them
// apart by the exact content type (cmux) and resets any other connection.
type rawCodec struct{}

func (rawCodec) Marshal(v any) (mem.BufferSlice, error) {
	frame, ok := v.(*[]byte)
	if !ok {
		return nil, fmt.Errorf("raw codec: cannot marshal %T", v)
	}
	return mem.BufferSlice{mem.SliceBuffer(*frame)}, nil
}

func (rawCodec) Unmarshal(data mem.BufferSlice, v any) error {
	frame, ok := v.(*[]byte)
	if !ok {
		return fmt.Errorf("raw codec: cannot unmarshal into %T", v)
	}
	*frame = data.Materialize()
	return nil
}

func (rawCodec) Name() string { return "" }
