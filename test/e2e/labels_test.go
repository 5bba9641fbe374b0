//go:build e2e

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

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/kubelet-imagecache/kubelet-imagecache/pkg/kubelet/images/allowlist"
	"github.com/kubelet-imagecache/kubelet-imagecache/test/e2e/framework"
)

// The labels the kubelet's selectors read come from the runtime's verbose ImageStatus; the
// label reader is checked against each real runtime here. With
// E2E_RECORD_IMAGESTATUS=<dir> the info is also written to <dir>/<runtime>.json, which is
// how pkg/kubelet/images/allowlist/testdata/imagestatus was recorded.
func TestVerboseImageStatusLabels(t *testing.T) {
	t.Parallel()
	want := map[string]string{"cache.example.com/keep": "true", "tier": "edge", "org.opencontainers.image.title": "keep-label"}
	legs(t, nil, func(t *testing.T, runtime framework.Runtime) {
		n := newNodeOn(t, runtime)
		labelled := push(t, n, framework.ImageSpec{Repository: "e2e/labelled", Tag: "1", Labels: want})
		startRuntimeWithPause(t, n)
		pull(t, n, labelled.Ref)
		svc, err := n.ImageService()
		if err != nil {
			t.Fatal(err)
		}
		// The kubelet asks by the image ID the runtime listed: CRI-O lists the config digest's
		// hex without "sha256:" and does not resolve "sha256:<hex>" in ImageStatus (it takes
		// it for a short name); containerd lists and resolves "sha256:<hex>".
		id := runtimeImageID(t, n, labelled.Ref)
		if wantID := runtime.ImageID(labelled.ID); id != wantID {
			t.Errorf("%s reports the image ID %q; want %q", runtime.Name(), id, wantID)
		}
		byPrefixedID, err := svc.ImageStatus(context.Background(), &runtimeapi.ImageSpec{Image: labelled.ID}, false)
		if !runtime.ResolvesImageIDs() {
			if err == nil || !strings.Contains(err.Error(), "short-name") {
				t.Errorf("CRI-O's ImageStatus of %s: %v, %v; want the short-name refusal docs/allowlist.md shows", labelled.ID, byPrefixedID, err)
			}
		} else if err != nil || byPrefixedID.GetImage().GetId() != labelled.ID {
			t.Errorf("%s's ImageStatus of %s: %v, %v; want the image", runtime.Name(), labelled.ID, byPrefixedID, err)
		}
		resp, err := svc.ImageStatus(context.Background(), &runtimeapi.ImageSpec{Image: id}, true)
		if err != nil {
			t.Fatal(err)
		}
		got, err := allowlist.LabelsFromVerboseInfo(resp.GetInfo())
		if err != nil {
			t.Fatalf("verbose ImageStatus of %s on %s: %v; info: %v", labelled.Ref, runtime.Name(), err, resp.GetInfo())
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("labels on %s = %v; want %v", runtime.Name(), got, want)
		}
		if dir := os.Getenv("E2E_RECORD_IMAGESTATUS"); dir != "" {
			var pretty bytes.Buffer
			if err := json.Compact(&pretty, []byte(resp.GetInfo()["info"])); err != nil {
				t.Fatal(err)
			}
			pretty.WriteByte('\n')
			if err := os.WriteFile(filepath.Join(dir, runtime.Name()+".json"), pretty.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	})
}

// Label look-up failures on a real runtime: a CRI proxy between the kubelet and the runtime
// refuses the verbose ImageStatus of two unused images, one whose labels match a selector and
// one whose labels do not. While the look-ups fail both are kept (a failure keeps the image for
// the pass) and reported as labels_unknown, not as kept by the allowlist; an unlabelled image
// next to them is collected. Once the look-ups succeed, the image the selector does not match
// is collected and the other stays, kept by the selector. On every runtime: each lists image
// IDs in its own form, which is what the kubelet asks by.
func TestLabelLookupFailures(t *testing.T) {
	t.Parallel()
	legs(t, nil, func(t *testing.T, runtime framework.Runtime) {
		n := newNodeOn(t, runtime)
		const label = "e2e.kubelet-imagecache.io/keep"
		match := push(t, n, framework.ImageSpec{Repository: "e2e/lookup-match", Tag: "1", Labels: map[string]string{label: "true"}})
		miss := push(t, n, framework.ImageSpec{Repository: "e2e/lookup-miss", Tag: "1", Labels: map[string]string{label: "false"}})
		junk := push(t, n, framework.ImageSpec{Repository: "e2e/junk", Tag: "1"})
		pause := startRuntimeWithPause(t, n)
		pull(t, n, pause.Ref, match.Ref, miss.Ref, junk.Ref)
		proxy, err := framework.StartCRIProxy(filepath.Join(n.Root, "cri-proxy.sock"), n.RuntimeEndpoint())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(proxy.Stop)
		matchID, missID := runtimeImageID(t, n, match.Ref), runtimeImageID(t, n, miss.Ref)
		proxy.FailVerboseImageStatus(matchID, missID)
		config, err := n.WriteKubeletConfig("kubelet", framework.KubeletConfig{
			Gate:            true,
			Exclude:         []string{pause.Ref},
			Selectors:       []string{label + "=true"},
			RuntimeEndpoint: proxy.Endpoint,
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := n.StartKubelet(config); err != nil {
			t.Fatal(err)
		}
		if !waitDeleted(t, n, map[string]string{"junk": junk.Ref}) {
			t.Fatalf("the unlabelled image was not collected; present: %v", keys(present(t, n)))
		}
		waitGCPasses(t, n, 2)
		p := present(t, n)
		for _, img := range []*framework.Image{match, miss} {
			if !p[img.Ref] {
				t.Fatalf("%s was collected although its labels could not be read", img.Ref)
			}
		}
		for _, id := range []string{matchID, missID} {
			if n.Kubelet.CountInLog(`"Keeping image: its labels could not be read for imageGCExcludeSelectors; will retry on later passes" imageID="`+id+`"`) == 0 {
				t.Errorf("the kubelet did not log the failed look-up of %s", id)
			}
		}
		metrics, err := n.KubeletMetrics()
		if err != nil {
			t.Fatal(err)
		}
		// Kept by the allowlist: the pause image's own entry, unless the runtime pins it (then
		// the kubelet never considers it).
		kept := 1
		if runtime.PinsSandboxImage() {
			kept = 0
		}
		for _, want := range []string{
			`kubelet_image_garbage_collection_excluded_images{state="labels_unknown"} 2`,
			fmt.Sprintf(`kubelet_image_garbage_collection_excluded_images{state="kept"} %d`, kept),
		} {
			if !strings.Contains(metrics, want) {
				t.Errorf("the kubelet's metrics lack %s:\n%s", want, grepLines(metrics, "kubelet_image_garbage_collection_excluded"))
			}
		}

		// The runtime answers again: labels decide.
		proxy.FailVerboseImageStatus()
		if !waitDeleted(t, n, map[string]string{"miss": miss.Ref}) {
			t.Fatalf("%s, whose labels the selector does not match, was not collected once they could be read", miss.Ref)
		}
		waitGCPasses(t, n, 2)
		if !present(t, n)[match.Ref] {
			t.Errorf("%s, kept by the selector, was collected", match.Ref)
		}
	})
}
