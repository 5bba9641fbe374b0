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

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"os/signal"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/pflag"
	"k8s.io/klog/v2"
	"sigs.k8s.io/yaml"

	"github.com/kubelet-imagecache/kubelet-imagecache/pkg/holder"
	"github.com/kubelet-imagecache/kubelet-imagecache/pkg/keeper"
)

// holdMain is `image-keeper hold`, the holder container's process (package holder): the image
// volumes mounted into its container keep the images; it only waits for SIGTERM, as PID 1.
func holdMain(args []string, stderr io.Writer) int {
	if len(args) > 0 {
		fmt.Fprintf(stderr, "image-keeper hold: unexpected arguments %q; it takes none\n", args)
		return 2
	}
	entries, err := os.ReadDir(holder.MountRoot)
	if err != nil {
		fmt.Fprintf(stderr, "image-keeper hold: %v; run it as the holder pod's container (image-keeper holder-manifest)\n", err)
		return 1
	}
	fmt.Fprintf(stderr, "image-keeper hold: holding %d image volumes under %s until SIGTERM\n", len(entries), holder.MountRoot)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	<-ctx.Done()
	return 0
}

// holderManifestMain is `image-keeper holder-manifest`: the holder as a DaemonSet or a static
// pod, rendered from the image list image-keeper reads.
func holderManifestMain(args []string, stdout, stderr io.Writer) int {
	var sources keeper.Sources
	var opts holder.Options
	var kind string
	fs := pflag.NewFlagSet("image-keeper holder-manifest", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&kind, "kind", "DaemonSet", "DaemonSet (a cluster) or Pod (a static pod for the kubelet's staticPodPath).")
	fs.StringVar(&sources.ConfigFile, "config", "", "image-keeper's config file (kind: ImageKeeperConfiguration): its images are held.")
	fs.StringArrayVar(&sources.Images, "image", nil, "An image to hold, with a tag or a digest. Repeatable.")
	fs.StringVar(&opts.Image, "holder-image", "", "The holder container's image: image-keeper's own (make image), which runs `image-keeper hold`.")
	fs.StringVar(&opts.Namespace, "namespace", "kube-system", "The holder's namespace.")
	fs.StringVar(&opts.PriorityClassName, "priority-class-name", "", "The holder's priority class: who wins when the node runs out of disk (docs/image-keeper.md).")
	fs.StringArrayVar(&opts.ImagePullSecrets, "image-pull-secret", nil, "A secret the kubelet pulls the held images with (DaemonSet only). Repeatable.")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	out, err := holderManifest(sources, opts, kind)
	if err != nil {
		fmt.Fprintf(stderr, "image-keeper holder-manifest: %v\n", err)
		return 1
	}
	_, _ = stdout.Write(out)
	return 0
}

func holderManifest(sources keeper.Sources, opts holder.Options, kind string) ([]byte, error) {
	if opts.Image == "" {
		return nil, errors.New("--holder-image: required; image-keeper's image (make image) runs the holder")
	}
	wanted, err := keeper.Load(sources)
	if err != nil {
		return nil, err
	}
	refs := references(wanted.Images)
	var obj any
	switch kind {
	case "DaemonSet":
		obj, err = holder.DaemonSet(refs, opts)
	case "Pod":
		obj, err = holder.StaticPod(refs, opts)
	default:
		return nil, fmt.Errorf("--kind %q: want DaemonSet or Pod", kind)
	}
	if err != nil {
		return nil, err
	}
	return yaml.Marshal(obj)
}

func references(images []keeper.WantedImage) []string {
	refs := make([]string, 0, len(images))
	for _, img := range images {
		refs = append(refs, img.Reference)
	}
	return refs
}

// staticHolder runs a holder.StaticPodSyncer beside the keeper (--holder-static-pod-dir): every
// interval it moves the kubelet's static pods towards holding the wanted list. It is the keeper's
// Holder: what the running holders mount, and what the syncer waits for.
type staticHolder struct {
	syncer *holder.StaticPodSyncer
	mu     sync.Mutex
	state  holder.State
}

func newStaticHolder(cfg *config, svc *keeper.RuntimeImageService) *staticHolder {
	return &staticHolder{syncer: &holder.StaticPodSyncer{Dir: cfg.holderDir, Options: holder.Options{Image: cfg.holderImage}, Runtime: svc}}
}

func (h *staticHolder) Mode() string { return "static pod in " + h.syncer.Dir }

func (h *staticHolder) HeldBy(reference, _ string) string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.state.Held[reference]
}

func (h *staticHolder) Pending() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.state.Message
}

func (h *staticHolder) run(ctx context.Context, k *keeper.Keeper, interval time.Duration) {
	logger := klog.FromContext(ctx)
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	var last string
	for {
		var refs []string
		for _, img := range k.Status().Images {
			refs = append(refs, img.Reference)
		}
		st := h.syncer.Sync(ctx, refs)
		h.mu.Lock()
		changed := !maps.Equal(st.Held, h.state.Held) || st.Message != h.state.Message
		h.state = st
		h.mu.Unlock()
		if changed {
			_ = k.Observe(ctx) // what protects each image, and the gate, now; not at the next pass
		}
		if st.Message != last {
			if st.Message == "" {
				logger.Info("The holder static pod holds every wanted image", "pod", st.Wanted, "images", len(refs))
			} else {
				logger.Info("Holder static pod not current", "reason", st.Message, "holding", st.Holding, "wanted", st.Wanted)
			}
			last = st.Message
		}
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
	}
}

// daemonSetHolder watches the holder DaemonSet's pods on this node (--holder-daemonset-namespace):
// image-keeper does not write the DaemonSet (holder-manifest renders it), it reads from the runtime
// which images the running holder pods mount, so that its status names them and its node is warm
// only once they are held.
type daemonSetHolder struct {
	runtime   holder.MountRuntime
	namespace string
	mu        sync.Mutex
	held      holder.Held
	pending   string
}

func (h *daemonSetHolder) Mode() string { return "DaemonSet pods in namespace " + h.namespace }

func (h *daemonSetHolder) HeldBy(_, imageID string) string {
	if imageID == "" {
		return ""
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.held.ByImageID[imageID]
}

func (h *daemonSetHolder) Pending() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.pending
}

func (h *daemonSetHolder) run(ctx context.Context, k *keeper.Keeper, interval time.Duration) {
	logger := klog.FromContext(ctx)
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	var last []string
	for {
		held, err := holder.DaemonSetHeld(ctx, h.runtime, h.namespace)
		pending := ""
		switch {
		case err != nil:
			pending = err.Error()
		case len(held.Pods) == 0:
			pending = "no pod of the holder DaemonSet (" + holder.NamePrefix + ") runs on this node in namespace " + h.namespace + " yet"
		}
		h.mu.Lock()
		changed := pending != h.pending || (err == nil && !maps.Equal(held.ByImageID, h.held.ByImageID))
		if err == nil {
			h.held = held
		}
		h.pending = pending
		h.mu.Unlock()
		if changed {
			_ = k.Observe(ctx) // what protects each image, and the gate, now; not at the next pass
		}
		if err == nil && !slices.Equal(held.Pods, last) {
			logger.Info("Holder pods on this node", "namespace", h.namespace, "pods", held.Pods, "images", len(held.ByImageID))
			last = held.Pods
		}
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
	}
}
