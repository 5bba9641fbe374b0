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
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/kubelet-imagecache/kubelet-imagecache/pkg/holder"
	"github.com/kubelet-imagecache/kubelet-imagecache/test/e2e/framework"
)

// holderBench measures holder mode on the stock kubelet (upstream v1.37.2): how long the holder
// static pod takes to run, that is to hold its list, for 1, 10 and 50 images already on the node
// (each a 1 MiB layer); and the start of a pod whose image is on the node and held by the holder
// vs on the node and not held.
func holderBench(repo, bin, out string, runs int) error {
	n, _, teardown, err := newNode(repo, bin, func(n *framework.Node) {
		n.PodNetwork = true // the holder is not on the host network
		n.KubeletBinary = filepath.Join(n.Bin, "stock", "kubelet")
	})
	defer teardown()
	if err != nil {
		return err
	}
	keeperRef, err := n.PushKeeperImage(repo)
	if err != nil {
		return err
	}
	app, err := framework.BuildAndPush(n.RegistryAddr, n.Sleeper, framework.ImageSpec{Repository: "bench/app", Tag: "1", PadBytes: 48 << 20})
	if err != nil {
		return err
	}
	refs := []string{}
	for i := range 50 {
		img, err := framework.BuildAndPush(n.RegistryAddr, n.Sleeper, framework.ImageSpec{Repository: fmt.Sprintf("bench/held-%02d", i), Tag: "1", PadBytes: 1 << 20})
		if err != nil {
			return err
		}
		refs = append(refs, img.Ref)
	}
	for _, ref := range append([]string{keeperRef, app.Ref}, refs...) {
		if err := n.Pull(ref); err != nil {
			return err
		}
	}
	config, err := n.WriteKubeletConfig("kubelet", framework.KubeletConfig{NoPressure: true})
	if err != nil {
		return err
	}
	if err := n.StartKubelet(config); err != nil {
		return err
	}
	opts := holder.Options{Image: keeperRef}

	var samples []sample
	for _, count := range holderCounts {
		s := sample{name: fmt.Sprintf("holder of %d image%s", count, map[bool]string{true: "s"}[count > 1])}
		for i := 0; i < runs; i++ {
			// A namespace per run: a static pod's UID follows its manifest, and a pod that comes
			// back under the UID of one still being torn down waits for it.
			run := opts
			run.Namespace = fmt.Sprintf("bench-%d-%d", count, i)
			name, elapsed, err := startHolder(n, refs[:count], run)
			if err != nil {
				return err
			}
			s.seconds = append(s.seconds, elapsed)
			fmt.Printf("%s run %d: %.2fs\n", s.name, i+1, elapsed)
			if err := stopHolder(n, name); err != nil {
				return err
			}
		}
		samples = append(samples, s)
	}

	var starts []sample
	for _, held := range []bool{false, true} {
		s := sample{name: "pod of an image on the node, not held"}
		if held {
			s.name = "pod of an image on the node, held by the holder"
			if _, _, err := startHolder(n, []string{app.Ref}, opts); err != nil {
				return err
			}
		}
		for i := 0; i < runs; i++ {
			elapsed, err := staticPodStart(n, fmt.Sprintf("app-%t-%d", held, i), app.Ref)
			if err != nil {
				return err
			}
			s.seconds = append(s.seconds, elapsed)
			fmt.Printf("%s run %d: %.2fs\n", s.name, i+1, elapsed)
		}
		starts = append(starts, s)
	}
	return writeHolder(out, samples, starts, runs)
}

// startHolder writes the holder static pod for refs and returns its name and the seconds until
// its container runs.
func startHolder(n *framework.Node, refs []string, opts holder.Options) (string, float64, error) {
	pod, err := holder.StaticPod(refs, opts)
	if err != nil {
		return "", 0, err
	}
	data, err := yaml.Marshal(pod)
	if err != nil {
		return "", 0, err
	}
	written := time.Now()
	if err := os.WriteFile(filepath.Join(n.StaticPodDir(), pod.Name+".yaml"), data, 0o644); err != nil {
		return "", 0, err
	}
	if !framework.Eventually(5*time.Minute, 20*time.Millisecond, func() bool { ok, _ := n.ContainerRunning(pod.Name); return ok }) {
		return "", 0, fmt.Errorf("holder %s did not run; kubelet: %s", pod.Name, framework.Tail(n.Kubelet, 20))
	}
	return pod.Name, time.Since(written).Seconds(), nil
}

// stopHolder removes the holder and waits for its container to stop. Its sandbox is
// left to the kubelet: a second StopPodSandbox while the kubelet's own is cleaning up the image
// volumes fails in containerd 2.4.2 (cleanupImageMounts reads the directory, the other call
// removes an entry, and os.Remove's ENOENT is not an errdefs.NotFound).
func stopHolder(n *framework.Node, name string) error {
	if err := n.RemoveStaticPod(name); err != nil {
		return err
	}
	if !framework.Eventually(2*time.Minute, 100*time.Millisecond, func() bool { ok, _ := n.ContainerRunning(name); return !ok }) {
		return fmt.Errorf("holder %s did not stop", name)
	}
	return nil
}

func writeHolder(out string, holders, starts []sample, runs int) error {
	var b strings.Builder
	fmt.Fprintf(&b, `# Holder mode: what it costs

Reproduce with `+"`make bench-e2e`"+` (root). Generated by test/e2e/bench on %s.

The stock kubelet (upstream v1.37.2, standalone), %s, a pod network; %d runs per case in
sequence. Every image is on the node before the clock starts, as it is when image-keeper has
pulled it.

## The holder's start: time to hold a list

From the holder static pod's manifest written to its container running, that is, until the
kubelet has mounted every image of the list as an image volume (each image a 1 MiB layer):

| list | median | min – max |
| --- | --- | --- |
`, time.Now().UTC().Format("2006-01-02"), runtimeName, runs)
	for _, s := range holders {
		lo, hi := s.minMax()
		fmt.Fprintf(&b, "| %s | %.2f s | %.2f – %.2f s |\n", s.name, s.median(), lo, hi)
	}
	fmt.Fprintf(&b, `
This is the window of a list change in which the new images are not held yet (the old holder
keeps holding the old list until the new one runs), and the time after a reboot until the held
images are protected again (imageMinimumGCAge, 2 minutes by default, covers it).

## Pod start: held vs not held

From a static pod's manifest written to its container running (`+"`hostNetwork: true`"+`), for an image
of 51 MB on the node. A held image is an image on the node: the pod starts alike.

| case | median | min – max |
| --- | --- | --- |
`)
	for _, s := range starts {
		lo, hi := s.minMax()
		fmt.Fprintf(&b, "| %s | %.2f s | %.2f – %.2f s |\n", s.name, s.median(), lo, hi)
	}
	b.WriteString("\nFor a pull instead, see [pod-start.md](pod-start.md).\n\nRaw seconds:\n\n")
	for _, s := range append(holders, starts...) {
		var vs []string
		for _, v := range s.seconds {
			vs = append(vs, strconv.FormatFloat(v, 'f', 3, 64))
		}
		fmt.Fprintf(&b, "- %s: %s\n", s.name, strings.Join(vs, ", "))
	}
	return os.WriteFile(filepath.Join(out, "holder.md"), []byte(b.String()), 0o644)
}

var holderCounts = []int{1, 10, 50}
