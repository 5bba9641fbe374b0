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

// demo starts a throwaway node (loopback registry, containerd, the patched kubelet, image-keeper)
// and shows, with narration: image GC removing unprotected images while allowlisted ones stay,
// image-keeper restoring a deleted image, and a cached pod starting with the registry down.
// With --cluster (`make demo-cluster`) it shows the warm-node gate on a throwaway cluster
// instead (cluster.go). It stops everything it started and removes its directories. Run it with
// `make demo`.
package main

import (
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/kubelet-imagecache/kubelet-imagecache/test/e2e/framework"
)

func main() {
	repo := flag.String("repo", ".", "repository root")
	bin := flag.String("bin", "_output/bin", "directory with kubelet and image-keeper (and, for --cluster, the control plane)")
	cluster := flag.Bool("cluster", false, "show the warm-node gate on a throwaway cluster instead (make demo-cluster)")
	flag.Parse()
	story, name := run, "demo"
	if *cluster {
		story, name = runCluster, "demo-cluster"
	}
	d, err := newDemo(*repo, *bin, name)
	if err == nil {
		err = story(d)
		err = d.finish(err)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "\n%s failed: %v\n", name, err)
		os.Exit(1)
	}
}

var start = time.Now()

func say(format string, args ...any) {
	fmt.Printf("[%5.1fs] %s\n", time.Since(start).Seconds(), fmt.Sprintf(format, args...))
}

// demo is a throwaway node (and, in the cluster story, its control plane) under root.
type demo struct {
	name, repo, bin, root string
	n                     *framework.Node
	cp                    *framework.ControlPlane
}

// newDemo prepares the node. Whatever happens next, finish or an interrupt stops every process
// by PID and removes the node's directories.
func newDemo(repo, bin, name string) (*demo, error) {
	d := &demo{name: name}
	d.repo, _ = filepath.Abs(repo)
	d.bin, _ = filepath.Abs(bin)
	var err error
	if d.root, err = os.MkdirTemp("", "imagecache-"+name+"-"); err != nil {
		return nil, err
	}
	runtime, err := framework.RuntimeFromEnv(d.repo)
	if err != nil {
		return nil, err
	}
	if d.n, err = framework.NewNode(d.root, d.bin, d.repo, runtime); err != nil {
		return nil, err
	}
	interrupted := make(chan os.Signal, 1)
	signal.Notify(interrupted, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-interrupted
		if err := d.stop(); err != nil {
			fmt.Fprintln(os.Stderr, "demo: stopping the node:", err)
		}
		os.Exit(130)
	}()
	return d, nil
}

func (d *demo) stop() error {
	err := d.n.Teardown(false)
	if d.cp != nil {
		_ = d.cp.Stop()
	}
	return err
}

// finish keeps every component's log in _output/<name>-logs when the story failed, then stops
// everything.
func (d *demo) finish(err error) error {
	if err != nil {
		logs := filepath.Join(d.repo, "_output", d.name+"-logs")
		_ = os.RemoveAll(logs)
		procs := []*framework.Process{d.n.Registry, d.n.RuntimeProcess, d.n.Kubelet, d.n.Keeper}
		if d.cp != nil {
			procs = append(procs, d.cp.Etcd, d.cp.APIServer, d.cp.ControllerManager, d.cp.Scheduler)
		}
		if _, herr := framework.HarvestLogs(logs, 0, procs...); herr != nil {
			fmt.Fprintln(os.Stderr, "demo:", herr)
		}
		fmt.Printf("component logs kept in %s\n", logs)
	}
	if terr := d.stop(); terr != nil && err == nil {
		err = terr
	}
	say("stopped everything it started; removed %s", d.root)
	return err
}

func run(d *demo) error {
	n, root := d.n, d.root
	say("starting a throwaway node under %s", root)
	if err := n.StartRegistry(); err != nil {
		return err
	}
	say("registry on %s (Debian's docker-registry)", n.RegistryAddr)
	type row struct {
		name, ref, protection string
		img                   *framework.Image
	}
	specs := []struct {
		spec       framework.ImageSpec
		protection string
	}{
		{framework.ImageSpec{Repository: "demo/pause", Tag: "3.10"}, "imageGCExclude: exact tag"},
		{framework.ImageSpec{Repository: "edge/app", Tag: "v1", PadBytes: 8 << 20}, "imageGCExclude: edge/*"},
		{framework.ImageSpec{Repository: "edge/agent", Tag: "v2"}, "imageGCExclude: edge/*"},
		{framework.ImageSpec{Repository: "tools/debug", Tag: "1", Labels: map[string]string{"cache.example.com/keep": "true"}}, "selector cache.example.com/keep=true"},
		{framework.ImageSpec{Repository: "batch/report", Tag: "2026-11"}, "-"},
		{framework.ImageSpec{Repository: "batch/report", Tag: "2026-10"}, "-"},
		{framework.ImageSpec{Repository: "edgecase/app", Tag: "v1"}, "- (shares a prefix with edge/)"},
	}
	var rows []row
	for _, s := range specs {
		img, err := framework.BuildAndPush(n.RegistryAddr, n.Sleeper, s.spec)
		if err != nil {
			return err
		}
		rows = append(rows, row{s.spec.Repository + ":" + s.spec.Tag, img.Ref, s.protection, img})
	}
	say("built and pushed %d images (a static binary in a layer, with labels)", len(rows))
	if err := n.StartRuntime(rows[0].ref); err != nil {
		return err
	}
	say("%s running on %s", n.Runtime.Name(), n.RuntimeEndpoint())
	for _, r := range rows {
		if err := n.Pull(r.ref); err != nil {
			return err
		}
	}
	before, err := n.Present()
	if err != nil {
		return err
	}
	say("pulled every image onto the node")

	config, err := n.WriteKubeletConfig("kubelet", framework.KubeletConfig{
		Gate:      true,
		Exclude:   []string{rows[0].ref, n.RegistryAddr + "/edge/*"},
		Selectors: []string{"cache.example.com/keep=true"},
	})
	if err != nil {
		return err
	}
	if err := n.StartKubelet(config); err != nil {
		return err
	}
	say("patched kubelet started: ImageGCExclusion on, imagefs eviction threshold always crossed")
	say("  so the eviction manager asks image GC to delete every unused image every ~10s")
	if !framework.Eventually(90*time.Second, time.Second, func() bool { return n.GCPasses() >= 3 }) {
		return fmt.Errorf("the kubelet ran only %d image GC passes in 90s", n.GCPasses())
	}
	after, err := n.Present()
	if err != nil {
		return err
	}
	say("after %d image GC passes:", n.GCPasses())
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "\n  IMAGE\tPROTECTED BY\tBEFORE\tAFTER GC")
	for _, r := range rows {
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", r.name, r.protection, yesNo(before[r.ref]), yesNo(after[r.ref]))
	}
	_ = tw.Flush()
	fmt.Println()
	for _, r := range rows {
		if (r.protection == "-" || strings.HasPrefix(r.protection, "- ")) == after[r.ref] {
			return fmt.Errorf("%s: protection %q but present=%v after GC", r.name, r.protection, after[r.ref])
		}
	}

	app := rows[1]
	if err := n.StartKeeper("--kubelet-config", config, "--image", app.ref, "--image", rows[2].ref, "--interval", "5s"); err != nil {
		return err
	}
	if !framework.Eventually(30*time.Second, 200*time.Millisecond, func() bool {
		resp, err := http.Get("http://" + n.KeeperAddr + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}) {
		return fmt.Errorf("image-keeper did not become ready")
	}
	say("image-keeper running, keeping %s and %s: /readyz says all present", rows[1].name, rows[2].name)
	if err := n.RemoveImage(app.ref); err != nil {
		return err
	}
	removed := time.Now()
	say("crictl rmi %s (someone cleans up by hand)", app.name)
	if !framework.Eventually(30*time.Second, 200*time.Millisecond, func() bool { p, _ := n.Present(); return p[app.ref] }) {
		return fmt.Errorf("image-keeper did not restore %s", app.name)
	}
	say("image-keeper pulled %s back %.1fs later", app.name, time.Since(removed).Seconds())

	n.StopRegistry()
	say("registry stopped: the node is offline")
	if err := n.WriteStaticPod("edge-app", app.ref, "IfNotPresent"); err != nil {
		return err
	}
	written := time.Now()
	if !framework.Eventually(90*time.Second, 200*time.Millisecond, func() bool { ok, _ := n.ContainerRunning("edge-app"); return ok }) {
		return fmt.Errorf("static pod with the cached image did not start offline")
	}
	say("static pod edge-app (%s, imagePullPolicy: IfNotPresent) running %.1fs after its manifest was written, registry down", app.name, time.Since(written).Seconds())
	return nil
}

func yesNo(b bool) string {
	if b {
		return "present"
	}
	return "deleted"
}
