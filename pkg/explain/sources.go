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

package explain

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"golang.org/x/sys/unix"
	"google.golang.org/grpc/codes"
	grpcstatus "google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/kubelet-imagecache/kubelet-imagecache/pkg/kubelet/images/allowlist"
)

// Runtime is the part of CRI that Node asks.
type Runtime interface {
	allowlist.ImageStatusProvider
	ListImages(ctx context.Context, filter *runtimeapi.ImageFilter) ([]*runtimeapi.Image, error)
	ListContainers(ctx context.Context) ([]*runtimeapi.Container, error)
	ContainerStatus(ctx context.Context, id string) (*runtimeapi.ContainerStatus, error)
	ImageFsInfo(ctx context.Context) ([]*runtimeapi.FilesystemUsage, error)
}

// Node lists the runtime's images, marks those a container (running or exited) uses and those a
// container mounts as an image volume (by image ID, as the kubelet's handleImageVolumes compares
// them), reads labels when readLabels is set (the allowlist has selectors) with the kubelet's
// label reader, and returns the image filesystem's capacity (0, with the reason, when it cannot be read: in a
// pod, the runtime's directories are usually not mounted).
func Node(ctx context.Context, rt Runtime, readLabels bool) (images []Image, capacity int64, capacityErr error, err error) {
	list, err := rt.ListImages(ctx, nil)
	if err != nil {
		return nil, 0, nil, fmt.Errorf("list images: %w", err)
	}
	containers, err := rt.ListContainers(ctx)
	if err != nil {
		return nil, 0, nil, fmt.Errorf("list containers: %w", err)
	}
	// A container names its image by ID (ImageRef) and by what the pod spec said (Image).
	used, mounted := map[string]bool{}, map[string]bool{}
	for _, c := range containers {
		used[c.GetImageRef()] = true
		used[c.GetImage().GetImage()] = true
		status, err := rt.ContainerStatus(ctx, c.GetId())
		if grpcstatus.Code(err) == codes.NotFound {
			continue // removed since it was listed: it mounts nothing any more
		}
		if err != nil {
			return nil, 0, nil, fmt.Errorf("status of container %s: %w", c.GetId(), err)
		}
		for _, m := range status.GetMounts() {
			if m.GetImage() != nil {
				mounted[m.GetImage().GetImage()] = true
			}
		}
	}
	var labels *allowlist.LabelReader
	if readLabels {
		labels = allowlist.NewLabelReader(rt)
	}
	for _, img := range list {
		x := Image{ID: img.GetId(), RepoTags: img.GetRepoTags(), RepoDigests: img.GetRepoDigests(), Size: int64(img.GetSize()), Pinned: img.GetPinned(), ImageVolume: mounted[img.GetId()]}
		for _, name := range append(append([]string{x.ID}, x.RepoTags...), x.RepoDigests...) {
			x.InUse = x.InUse || used[name]
		}
		if labels != nil {
			l, err := labels.Read(ctx, x.ID, "")
			if err != nil {
				x.LabelsError = err.Error()
			} else {
				x.Labels = l
				if x.Labels == nil {
					x.Labels = map[string]string{}
				}
			}
		}
		images = append(images, x)
	}
	capacity, capacityErr = imageFsCapacity(ctx, rt)
	return images, capacity, capacityErr, nil
}

// imageFsCapacity is the size of the filesystem under the runtime's first image filesystem, as
// the kubelet's cadvisor reads it (statfs).
func imageFsCapacity(ctx context.Context, rt Runtime) (int64, error) {
	fss, err := rt.ImageFsInfo(ctx)
	if err != nil {
		return 0, fmt.Errorf("image filesystem info: %w", err)
	}
	if len(fss) == 0 || fss[0].GetFsId().GetMountpoint() == "" {
		return 0, errors.New("the runtime reports no image filesystem")
	}
	mountpoint := fss[0].GetFsId().GetMountpoint()
	var st unix.Statfs_t
	if err := unix.Statfs(mountpoint, &st); err != nil {
		return 0, fmt.Errorf("image filesystem %s: %w (mount it, or run explain on the node)", mountpoint, err)
	}
	return int64(st.Blocks) * st.Bsize, nil
}

// Bounds of what ParseReferences reads: lines of every kind (blank, comment and bad ones
// included), the length of one line, and the bad lines reported one by one.
const (
	MaxLines      = 100000
	MaxLineLength = 4096
	maxLineErrors = 20
)

// ParseReferences reads images from r, one per line: a reference (a tag or a digest; short
// forms are normalized as the runtime would) or an image ID (sha256:<64 hex>), optionally
// followed by whitespace and the image's labels as key=value pairs separated by commas. Blank
// lines and lines starting with '#' are skipped. Bad lines are reported by number, the first
// maxLineErrors of them one by one; more than MaxLines lines, or a line longer than
// MaxLineLength, end the reading with an error.
func ParseReferences(r io.Reader) ([]Image, error) {
	var images []Image
	var errs []error
	bad := 0
	scanner := bufio.NewScanner(r)
	scanner.Buffer(make([]byte, MaxLineLength+1), MaxLineLength+1)
	line := 0
	for scanner.Scan() {
		line++
		if line > MaxLines {
			return nil, fmt.Errorf("more than %d lines; review the allowlist against fewer references at a time", MaxLines)
		}
		text := strings.TrimSpace(scanner.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		ref, labelText, _ := strings.Cut(text, " ")
		img, err := parseImage(ref, strings.TrimSpace(labelText))
		if err != nil {
			if bad++; bad <= maxLineErrors {
				errs = append(errs, fmt.Errorf("line %d: %w", line, err))
			}
			continue
		}
		images = append(images, img)
	}
	if err := scanner.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			err = fmt.Errorf("longer than %d bytes; one reference and its labels per line", MaxLineLength)
		}
		return nil, fmt.Errorf("line %d: %w", line+1, err)
	}
	if bad > maxLineErrors {
		errs = append(errs, fmt.Errorf("and %d more bad lines", bad-maxLineErrors))
	}
	return images, errors.Join(errs...)
}

func parseImage(ref, labelText string) (Image, error) {
	var img Image
	switch {
	case strings.HasPrefix(ref, "sha256:"):
		if !isHex64(ref[len("sha256:"):]) {
			return img, fmt.Errorf("%q: an image ID is sha256: and 64 lowercase hex digits", ref)
		}
		img.ID = ref
	case isHex64(ref):
		// An image ID as CRI-O lists it (crictl images -q there), without "sha256:".
		img.ID = ref
	default:
		p, err := allowlist.ParseExtendedPattern(ref)
		if err != nil || !p.Pullable() {
			return img, fmt.Errorf("%q is not an image reference with a tag or a digest; write one per line, e.g. registry.example.com/team/app:1.2", ref)
		}
		if p.Kind == allowlist.PatternDigest {
			img.RepoDigests = []string{p.String()}
		} else {
			img.RepoTags = []string{p.String()}
		}
	}
	if labelText != "" {
		img.Labels = map[string]string{}
		for _, pair := range strings.Split(labelText, ",") {
			k, v, ok := strings.Cut(strings.TrimSpace(pair), "=")
			if !ok || k == "" {
				return img, fmt.Errorf("%q: labels are key=value pairs separated by commas, e.g. tier=edge,team=a", labelText)
			}
			img.Labels[k] = v
		}
	}
	return img, nil
}

func isHex64(s string) bool {
	return len(s) == 64 && strings.Trim(s, "0123456789abcdef") == ""
}
