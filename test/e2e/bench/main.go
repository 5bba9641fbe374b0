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

// bench measures, on a throwaway node, what the cache is for:
//
//	pod-start: time from a static pod's manifest written to its container running, with the
//	           image (a) cached, (b) pulled from a loopback registry, (c) pulled through a
//	           proxy shaped like a remote registry;
//	keeper:    image-keeper's idle footprint with 200 wanted images present, and its restore
//	           of 20 missing images against a sequential pull loop, behind 100 ms latency.
//
// Results go to docs/bench as Markdown, with an SVG chart for pod-start. Run with `make bench-e2e`.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/procfs"

	"github.com/kubelet-imagecache/kubelet-imagecache/test/e2e/framework"
)

func main() {
	repo := flag.String("repo", ".", "repository root")
	bin := flag.String("bin", "_output/bin", "directory with kubelet and image-keeper")
	out := flag.String("out", "docs/bench", "where results are written")
	what := flag.String("what", "pod-start,keeper,keeper-scale,warm-node,holder,fleet-api", "benchmarks to run")
	runs := flag.Int("runs", 5, "pod-start runs per case")
	baseline := flag.String("keeper-baseline", "", "keeper-scale: another image-keeper binary (a build of an earlier commit) to measure side by side")
	flag.Parse()
	for _, w := range strings.Split(*what, ",") {
		var err error
		switch w {
		case "pod-start":
			err = podStart(*repo, *bin, *out, *runs)
		case "keeper":
			err = keeperBench(*repo, *bin, *out)
		case "keeper-scale":
			err = keeperScale(*repo, *bin, *out, *baseline)
		case "warm-node":
			err = warmNode(*repo, *bin, *out, *runs)
		case "holder":
			err = holderBench(*repo, *bin, *out, *runs)
		case "fleet-api":
			err = fleetAPI(*repo, *bin, *out, []int{100, 300, 1000})
		default:
			err = fmt.Errorf("unknown benchmark %q", w)
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "bench %s: %v\n", w, err)
			os.Exit(1)
		}
	}
}

// newNode starts a registry and containerd (with a pushed and pulled pause image) on a
// throwaway node; before, if given, sets the node up first. The returned teardown stops
// everything; call it also after an error.
func newNode(repo, bin string, before ...func(*framework.Node)) (n *framework.Node, pause *framework.Image, teardown func(), err error) {
	repo, _ = filepath.Abs(repo)
	bin, _ = filepath.Abs(bin)
	root, err := os.MkdirTemp("", "imagecache-bench-")
	if err != nil {
		return nil, nil, func() {}, err
	}
	runtime, err := framework.RuntimeFromEnv(repo)
	if err != nil {
		return nil, nil, func() {}, err
	}
	runtimeName = runtime.Name()
	if n, err = framework.NewNode(root, bin, repo, runtime); err != nil {
		return nil, nil, func() {}, err
	}
	teardown = func() { _ = n.Teardown(false) }
	for _, f := range before {
		f(n)
	}
	if err := n.StartRegistry(); err != nil {
		return n, nil, teardown, err
	}
	if pause, err = framework.BuildAndPush(n.RegistryAddr, n.Sleeper, framework.ImageSpec{Repository: "bench/pause", Tag: "1"}); err != nil {
		return n, nil, teardown, err
	}
	if err := n.StartRuntime(pause.Ref); err != nil {
		return n, nil, teardown, err
	}
	return n, pause, teardown, n.Pull(pause.Ref)
}

// runtimeName is the containerd the benchmarks ran on, for the generated pages.
var runtimeName string

type sample struct {
	name    string
	seconds []float64
}

func (s sample) median() float64 {
	v := append([]float64(nil), s.seconds...)
	sort.Float64s(v)
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

func (s sample) minMax() (float64, float64) {
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, v := range s.seconds {
		lo, hi = math.Min(lo, v), math.Max(hi, v)
	}
	return lo, hi
}

func podStart(repo, bin, out string, runs int) error {
	n, pause, teardown, err := newNode(repo, bin)
	defer teardown()
	if err != nil {
		return err
	}
	big, err := framework.BuildAndPush(n.RegistryAddr, n.Sleeper, framework.ImageSpec{Repository: "bench/app", Tag: "1", PadBytes: 48 << 20})
	if err != nil {
		return err
	}
	const latency, bandwidth = 50 * time.Millisecond, 20 << 20
	proxy, err := n.StartShapingProxy(latency, bandwidth)
	if err != nil {
		return err
	}
	defer proxy.Stop()
	viaProxy := strings.Replace(big.Ref, n.RegistryAddr, proxy.Addr, 1)
	config, err := n.WriteKubeletConfig("kubelet", framework.KubeletConfig{Gate: true, Exclude: []string{pause.Ref}, NoPressure: true})
	if err != nil {
		return err
	}
	if err := n.StartKubelet(config); err != nil {
		return err
	}

	cases := []struct {
		name, ref string
		cached    bool
	}{
		{"(a) cached on the node", big.Ref, true},
		{"(b) loopback registry", big.Ref, false},
		{fmt.Sprintf("(c) remote-like registry (%v/request, %d MB/s)", latency, bandwidth>>20), viaProxy, false},
	}
	var samples []sample
	for ci, c := range cases {
		s := sample{name: c.name}
		for i := 0; i < runs; i++ {
			// Every run starts from the same state: the image present (a), or absent with its
			// layers gone from containerd's content store (b, c), so that the pull downloads them.
			_ = n.RemoveImage(big.Ref)
			_ = n.RemoveImage(viaProxy)
			if !framework.Eventually(30*time.Second, 100*time.Millisecond, func() bool { return !n.HasBlob(big.Layers[1]) }) {
				return fmt.Errorf("%s: containerd kept the image's layer after the image was removed", c.name)
			}
			if c.cached {
				if err := n.Pull(c.ref); err != nil {
					return err
				}
			}
			elapsed, err := staticPodStart(n, fmt.Sprintf("podstart-%d-%d", ci, i), c.ref)
			if err != nil {
				return fmt.Errorf("%s: %w", c.name, err)
			}
			s.seconds = append(s.seconds, elapsed)
			fmt.Printf("%s run %d: %.2fs\n", c.name, i+1, elapsed)
		}
		samples = append(samples, s)
	}
	return writePodStart(out, samples, big.Size, runs)
}

// staticPodStart writes a static pod (hostNetwork) running ref and returns the seconds until
// its container runs; then it removes the pod, waits for it to stop and removes its sandbox, so
// that the next run starts from the same state.
func staticPodStart(n *framework.Node, pod, ref string) (float64, error) {
	written := time.Now()
	if err := n.WriteStaticPod(pod, ref, "IfNotPresent"); err != nil {
		return 0, err
	}
	if !framework.Eventually(5*time.Minute, 20*time.Millisecond, func() bool { ok, _ := n.ContainerRunning(pod); return ok }) {
		return 0, fmt.Errorf("pod %s did not start", pod)
	}
	elapsed := time.Since(written).Seconds()
	if err := n.RemoveStaticPod(pod); err != nil {
		return 0, err
	}
	if !framework.Eventually(2*time.Minute, 100*time.Millisecond, func() bool { ok, _ := n.ContainerRunning(pod); return !ok }) {
		return 0, fmt.Errorf("pod %s did not stop", pod)
	}
	if err := n.RemovePod(pod); err != nil {
		return 0, fmt.Errorf("remove pod %s: %w", pod, err)
	}
	return elapsed, nil
}

func writePodStart(out string, samples []sample, size int64, runs int) error {
	var b strings.Builder
	fmt.Fprintf(&b, `# Pod start: cached vs pulled

Reproduce with `+"`make bench-e2e`"+` (root; about 3 minutes). Generated by test/e2e/bench on %s.

Time from a static pod's manifest written to its container running (the patched kubelet in
standalone mode, `+runtimeName+`, `+"`hostNetwork: true`, `imagePullPolicy: IfNotPresent`"+`),
for one image of %.1f MB (a static binary and 48 MiB of incompressible data), %d runs per case
in sequence; each run starts from the same state: image present for (a); for (b) and (c) the
image removed, the previous pod's sandbox removed, and the layer blob gone from containerd's
content store (checked), so the pull downloads it. The kubelet picks up a new manifest through
inotify, in every case alike.

| case | median | min – max | vs cached |
| --- | --- | --- | --- |
`, time.Now().UTC().Format("2006-01-02"), float64(size)/1e6, runs)
	base := samples[0].median()
	for _, s := range samples {
		lo, hi := s.minMax()
		fmt.Fprintf(&b, "| %s | %.2f s | %.2f – %.2f s | %.1f× |\n", s.name, s.median(), lo, hi, s.median()/base)
	}
	fmt.Fprintf(&b, "\n![pod start medians, min–max whiskers](pod-start.svg)\n\nRaw seconds:\n\n")
	for _, s := range samples {
		var vs []string
		for _, v := range s.seconds {
			vs = append(vs, strconv.FormatFloat(v, 'f', 3, 64))
		}
		fmt.Fprintf(&b, "- %s: %s\n", s.name, strings.Join(vs, ", "))
	}
	b.WriteString(`
(b) is the "registry mirror inside the cluster" that is the usual answer to slow pulls: it
removes the WAN, not the pull. (c) shapes every request to the loopback registry with a fixed
latency and caps the body rate, as a remote registry over a modest link would; real links
vary more.
`)
	if err := os.WriteFile(filepath.Join(out, "pod-start.md"), []byte(b.String()), 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(out, "pod-start.svg"), []byte(barChart("Pod start time", samples)), 0o644)
}

// barChart draws medians as bars with min–max whiskers, on a linear seconds axis.
func barChart(title string, samples []sample) string {
	const w, h, left, bottom, top = 780, 360, 70, 90, 30
	maxV := 0.0
	for _, s := range samples {
		_, hi := s.minMax()
		maxV = math.Max(maxV, hi)
	}
	maxV = math.Ceil(maxV*1.1*2) / 2
	y := func(v float64) float64 { return top + (h-top-bottom)*(1-v/maxV) }
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="12">`+"\n", w, h)
	fmt.Fprintf(&b, `<text x="%d" y="18" font-size="14">%s (median, min–max), seconds</text>`+"\n", left, title)
	for i := 0; i <= 5; i++ {
		v := maxV * float64(i) / 5
		fmt.Fprintf(&b, `<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#ddd"/><text x="%d" y="%.1f" text-anchor="end">%.1f</text>`+"\n", left, w-20, y(v), y(v), left-6, y(v)+4, v)
	}
	slot := float64(w-left-20) / float64(len(samples))
	colors := []string{"#2a9d8f", "#e9c46a", "#e76f51"}
	for i, s := range samples {
		x := float64(left) + slot*float64(i) + slot*0.2
		bw := slot * 0.6
		m := s.median()
		lo, hi := s.minMax()
		fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"/>`+"\n", x, y(m), bw, y(0)-y(m), colors[i%len(colors)])
		cx := x + bw/2
		fmt.Fprintf(&b, `<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" stroke="#333"/><line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" stroke="#333"/><line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" stroke="#333"/>`+"\n",
			cx, cx, y(lo), y(hi), cx-8, cx+8, y(lo), y(lo), cx-8, cx+8, y(hi), y(hi))
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle">%.2f s</text>`+"\n", cx, y(hi)-6, m)
		words := strings.SplitN(s.name, " ", 2)
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle">%s</text><text x="%.1f" y="%d" text-anchor="middle" font-size="10">%s</text>`+"\n", cx, h-bottom+18, words[0], cx, h-bottom+34, words[1])
	}
	b.WriteString("</svg>\n")
	return b.String()
}

// keeperBench measures image-keeper's idle footprint and its restore against a sequential loop.
func keeperBench(repo, bin, out string) error {
	n, _, teardown, err := newNode(repo, bin)
	defer teardown()
	if err != nil {
		return err
	}

	// Idle: 200 wanted images, all present, 10 s interval, measured over a fixed window.
	const idleImages, window = 200, 120 * time.Second
	var args []string
	for i := 0; i < idleImages; i++ {
		img, err := framework.BuildAndPush(n.RegistryAddr, n.Sleeper, framework.ImageSpec{Repository: "bench/idle", Tag: strconv.Itoa(i)})
		if err != nil {
			return err
		}
		if err := n.Pull(img.Ref); err != nil {
			return err
		}
		args = append(args, "--image", img.Ref)
	}
	if err := n.StartKeeper(append(args, "--interval", "10s")...); err != nil {
		return err
	}
	time.Sleep(5 * time.Second) // start-up and first pass are not "idle"
	cpu0, _ := procCPU(n.Keeper.PID())
	var peakRSS int64
	deadline := time.Now().Add(window)
	for time.Now().Before(deadline) {
		if rss, err := procRSS(n.Keeper.PID()); err == nil && rss > peakRSS {
			peakRSS = rss
		}
		time.Sleep(time.Second)
	}
	cpu1, _ := procCPU(n.Keeper.PID())
	n.Keeper.Stop(5 * time.Second)
	cpuPerMinute := (cpu1 - cpu0) / window.Minutes()
	fmt.Printf("idle: %d images, peak RSS %.1f MiB, %.3f CPU-s per minute\n", idleImages, float64(peakRSS)/(1<<20), cpuPerMinute)

	// Restore: 20 missing images (each with its own 2 MiB layer) behind 100 ms per request.
	const restoreImages = 20
	proxy, err := n.StartShapingProxy(100*time.Millisecond, 0)
	if err != nil {
		return err
	}
	defer proxy.Stop()
	var refs, layers []string
	for i := 0; i < restoreImages; i++ {
		img, err := framework.BuildAndPush(n.RegistryAddr, n.Sleeper, framework.ImageSpec{Repository: "bench/restore", Tag: strconv.Itoa(i), PadBytes: 2 << 20})
		if err != nil {
			return err
		}
		refs = append(refs, strings.Replace(img.Ref, n.RegistryAddr, proxy.Addr, 1))
		layers = append(layers, img.Layers[1])
	}
	// Remove every image and wait until containerd's garbage collector has dropped their
	// layers, so that every pull downloads its layer.
	removeAll := func() error {
		for _, r := range refs {
			_ = n.RemoveImage(r)
		}
		if !framework.Eventually(30*time.Second, 100*time.Millisecond, func() bool {
			for _, l := range layers {
				if n.HasBlob(l) {
					return false
				}
			}
			return true
		}) {
			return fmt.Errorf("containerd kept layers of removed images")
		}
		return nil
	}
	var sequential, keeper []float64
	for run := 0; run < 3; run++ {
		if err := removeAll(); err != nil {
			return err
		}
		start := time.Now()
		for _, r := range refs {
			if err := n.Pull(r); err != nil {
				return err
			}
		}
		sequential = append(sequential, time.Since(start).Seconds())

		if err := removeAll(); err != nil {
			return err
		}
		var keeperArgs []string
		for _, r := range refs {
			keeperArgs = append(keeperArgs, "--image", r)
		}
		cmd := exec.CommandContext(context.Background(), filepath.Join(n.Bin, "image-keeper"), append(keeperArgs, "--once", "--pull-concurrency", "4", "--runtime-endpoint", n.RuntimeEndpoint())...)
		start = time.Now()
		if msg, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("image-keeper --once: %v\n%s", err, msg)
		}
		keeper = append(keeper, time.Since(start).Seconds())
		fmt.Printf("restore run %d: sequential %.2fs, image-keeper (4) %.2fs\n", run+1, sequential[run], keeper[run])
	}
	seq, kp := sample{"sequential", sequential}, sample{"keeper", keeper}
	return writeKeeper(out, idleImages, window, peakRSS, cpuPerMinute, restoreImages, seq, kp)
}

func writeKeeper(out string, idleImages int, window time.Duration, peakRSS int64, cpuPerMinute float64, restoreImages int, seq, kp sample) error {
	slo, shi := seq.minMax()
	klo, khi := kp.minMax()
	text := fmt.Sprintf(`# image-keeper

Reproduce with `+"`make bench-e2e`"+` (root). Generated by test/e2e/bench on %s, on a throwaway
node (`+runtimeName+`, Debian's docker-registry on loopback).

## Idle footprint

%d wanted images, all present, `+"`--interval 10s`"+`, measured over %v after the first pass:
peak RSS from /proc/<pid>/status (VmRSS, sampled every second), CPU from /proc/<pid>/stat
(utime + stime).

| | measured | goal |
| --- | --- | --- |
| peak RSS | %.1f MiB | < 30 MiB |
| CPU | %.3f CPU-seconds per minute (%.1f per hour) | < 1 CPU-second per minute |

## Restore of %d missing images behind 100 ms per request

Each image has its own 2 MiB layer; a proxy on loopback adds 100 ms to every registry request.
Before each run all images are removed and the test waits until containerd's garbage collector
has deleted their layer blobs, so every pull downloads its layer.
Sequential = one CRI PullImage after the other, as a `+"`crictl pull`"+` loop does;
image-keeper = `+"`image-keeper --once --pull-concurrency 4`"+` (process start included).
3 runs each, alternating.

| | median | min – max |
| --- | --- | --- |
| sequential pull loop | %.2f s | %.2f – %.2f s |
| image-keeper, concurrency 4 | %.2f s | %.2f – %.2f s |
| ratio | **%.2f×** (goal ≤ 0.4×) | |
`, time.Now().UTC().Format("2006-01-02"), idleImages, window, float64(peakRSS)/(1<<20), cpuPerMinute, cpuPerMinute*60,
		restoreImages, seq.median(), slo, shi, kp.median(), klo, khi, kp.median()/seq.median())
	return os.WriteFile(filepath.Join(out, "image-keeper.md"), []byte(text), 0o644)
}

// procCPU is the process's user + system CPU time in seconds.
func procCPU(pid int) (float64, error) {
	p, err := procfs.NewProc(pid)
	if err != nil {
		return 0, err
	}
	stat, err := p.Stat()
	if err != nil {
		return 0, err
	}
	return stat.CPUTime(), nil
}

// procRSS is the process's resident set size in bytes (VmRSS).
func procRSS(pid int) (int64, error) {
	p, err := procfs.NewProc(pid)
	if err != nil {
		return 0, err
	}
	status, err := p.NewStatus()
	if err != nil {
		return 0, err
	}
	return int64(status.VmRSS), nil
}

// metricsText fetches image-keeper's /metrics.
func metricsText(addr string) string {
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return string(data)
}

// metricValue adds up the samples of a metric family (labels as name, value pairs), 0 if absent
// or if the text does not parse.
func metricValue(text, name string, labels ...string) float64 {
	v, _ := framework.MetricSum(text, name, labels...)
	return v
}
