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
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/procfs"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/kubelet-imagecache/kubelet-imagecache/pkg/nodestatus"
	"github.com/kubelet-imagecache/kubelet-imagecache/pkg/pullslots"
	"github.com/kubelet-imagecache/kubelet-imagecache/test/e2e/framework"
)

// Simulated fleet: what image-keeper asks of the API server on many nodes.
const (
	fleetSlots    = 10                     // --pull-slots' default
	fleetPull     = 500 * time.Millisecond // one node's pulls, while it holds its slot
	fleetSteady   = 2 * time.Minute        // the steady-state window after the rollout
	fleetInterval = 2 * time.Second        // how often each node looks at its state (publishNodeStatus' tick)
	fleetBaseline = time.Minute            // the API server's CPU with the Nodes and no image-keeper
)

// countingTransport counts the requests that pass, by verb and resource.
type countingTransport struct {
	next   http.RoundTripper
	mu     sync.Mutex
	counts map[string]int
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	// /api/v1/nodes/NAME[/status], /apis/coordination.k8s.io/v1/namespaces/NS/leases[/NAME]
	verb, resource := r.Method, "other"
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	for i, p := range parts {
		if p != "nodes" && p != "leases" {
			continue
		}
		resource = p
		if i+2 < len(parts) {
			resource += "/" + parts[i+2]
		}
		if r.Method == http.MethodGet && i == len(parts)-1 {
			verb = "LIST"
		}
		break
	}
	c.mu.Lock()
	c.counts[verb+" "+resource]++
	c.mu.Unlock()
	return c.next.RoundTrip(r)
}

func (c *countingTransport) take() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := c.counts
	c.counts = map[string]int{}
	return out
}

type fleetResult struct {
	nodes                       int
	rollout                     time.Duration
	rolloutRequests             map[string]int
	rolloutCPU                  float64
	steadyRequests              map[string]int
	steadyCPU                   float64
	mostHolders                 int
	waitingLooksPerNodePerMin   float64
	steadyRequestsPerNodePerMin float64
	idleCPUPerSecond            float64
}

// fleetAPI measures, on a throwaway control plane, the API requests of image-keeper's node
// status and pull slots for fleets of each size: that many Nodes, each with image-keeper's own
// Publisher and Slots (real code, all in this process, one rate-limited client per node as on
// real nodes), through the rollout of a new list (every node at once: publish the images
// missing, take a slot, pull for fleetPull, give it back, publish warm, remove the startup taint)
// and then fleetSteady of heartbeats. It counts the requests by verb and resource, and the API
// server's CPU time.
func fleetAPI(repo, bin, out string, sizes []int) error {
	repo, _ = filepath.Abs(repo)
	bin, _ = filepath.Abs(bin)
	root, err := os.MkdirTemp("", "imagecache-bench-")
	if err != nil {
		return err
	}
	runtime, err := framework.RuntimeFromEnv(repo)
	if err != nil {
		return err
	}
	n, err := framework.NewNode(root, bin, repo, runtime)
	if err != nil {
		return err
	}
	defer func() { _ = n.Teardown(false) }()
	cp, admin, err := n.JoinControlPlane()
	if cp != nil {
		defer func() { _ = cp.Stop() }()
	}
	if err != nil {
		return err
	}
	restConfig, err := clientcmd.BuildConfigFromFlags("", cp.AdminKubeconfig)
	if err != nil {
		return err
	}
	counter := &countingTransport{counts: map[string]int{}}
	restConfig.Wrap(func(rt http.RoundTripper) http.RoundTripper { counter.next = rt; return counter })
	httpClient, err := rest.HTTPClientFor(restConfig)
	if err != nil {
		return err
	}
	proc, err := procfs.NewProc(cp.APIServer.PID())
	if err != nil {
		return err
	}
	apiCPU := func() float64 {
		st, err := proc.Stat()
		if err != nil {
			return 0
		}
		return st.CPUTime()
	}
	ctx := context.Background()
	if _, err := admin.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "image-keeper"}}, metav1.CreateOptions{}); err != nil {
		return err
	}

	var results []fleetResult
	for run, size := range sizes {
		r, err := fleetRun(ctx, admin, restConfig, httpClient, counter, apiCPU, fmt.Sprintf("sim%d", run), size)
		if err != nil {
			return err
		}
		fmt.Printf("fleet-api: %d nodes: rollout %v, %v; steady %v\n", size, r.rollout.Round(time.Second), r.rolloutRequests, r.steadyRequests)
		results = append(results, r)
	}
	return writeFleetAPI(out, results)
}

func fleetRun(ctx context.Context, admin kubernetes.Interface, restConfig *rest.Config, httpClient *http.Client, counter *countingTransport, apiCPU func() float64, prefix string, size int) (fleetResult, error) {
	r := fleetResult{nodes: size}
	names := make([]string, size)
	for i := range size {
		names[i] = fmt.Sprintf("%s-node-%04d", prefix, i)
		node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: names[i]},
			Spec: corev1.NodeSpec{Taints: []corev1.Taint{{Key: nodestatus.StartupTaintKey, Effect: corev1.TaintEffectNoSchedule}}}}
		if _, err := admin.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{}); err != nil {
			return r, err
		}
	}
	defer func() {
		for _, name := range names {
			_ = admin.CoreV1().Nodes().Delete(ctx, name, metav1.DeleteOptions{})
		}
	}()
	// The API server's CPU with the N Nodes and no image-keeper: the controllers' own work on
	// them, which the phases below include and the table subtracts.
	time.Sleep(fleetBaseline / 4) // the controllers' first look at the new Nodes
	cpuIdle := apiCPU()
	time.Sleep(fleetBaseline)
	r.idleCPUPerSecond = (apiCPU() - cpuIdle) / fleetBaseline.Seconds()

	list := []string{"registry.example.com/app:1", "registry.example.com/app:2"}
	missing := nodestatus.State{Wanted: list, Missing: list, Reconciled: true}
	warm := nodestatus.State{Wanted: list, Reconciled: true}

	var holding, most atomic.Int32
	counter.take()
	cpu0 := apiCPU()
	start := time.Now()
	steadyCtx, stopSteady := context.WithCancel(ctx)
	defer stopSteady()
	var rolloutDone, steadyDone sync.WaitGroup
	var firstErr atomic.Value
	steadyStart := make(chan struct{})
	for _, name := range names {
		rolloutDone.Add(1)
		steadyDone.Add(1)
		go func() {
			defer steadyDone.Done()
			// One client per node, as on real nodes (its own rate limiter), over one connection.
			client, err := kubernetes.NewForConfigAndClient(restConfig, httpClient)
			if err != nil {
				firstErr.CompareAndSwap(nil, err)
				rolloutDone.Done()
				return
			}
			p := nodestatus.NewPublisher(client, name)
			slots, err := pullslots.New(client, "image-keeper", name, fleetSlots)
			if err != nil {
				firstErr.CompareAndSwap(nil, err)
				rolloutDone.Done()
				return
			}
			err = p.Publish(ctx, missing)
			if err == nil {
				var release func()
				if release, _, err = slots.Acquire(ctx); err == nil {
					h := holding.Add(1)
					for m := most.Load(); h > m; m = most.Load() {
						if most.CompareAndSwap(m, h) {
							break
						}
					}
					time.Sleep(fleetPull)
					holding.Add(-1)
					release()
					err = p.Publish(ctx, warm)
				}
			}
			if err != nil {
				firstErr.CompareAndSwap(nil, err)
			}
			rolloutDone.Done()
			// Steady state: publishNodeStatus' loop, which calls the API server only for a
			// heartbeat (every minute) when nothing changes.
			<-steadyStart
			ticker := time.NewTicker(fleetInterval)
			defer ticker.Stop()
			for {
				select {
				case <-steadyCtx.Done():
					return
				case <-ticker.C:
					_ = p.Publish(steadyCtx, warm)
				}
			}
		}()
	}
	rolloutDone.Wait()
	r.rollout = time.Since(start)
	r.rolloutCPU = apiCPU() - cpu0
	r.rolloutRequests = counter.take()
	r.mostHolders = int(most.Load())
	if err, _ := firstErr.Load().(error); err != nil {
		stopSteady()
		close(steadyStart)
		steadyDone.Wait()
		return r, err
	}
	// Looks at the slots by waiting nodes: every List of Leases but each node's first.
	r.waitingLooksPerNodePerMin = float64(r.rolloutRequests["LIST leases"]-size) / float64(size) / r.rollout.Minutes()

	cpu1 := apiCPU()
	close(steadyStart)
	time.Sleep(fleetSteady)
	stopSteady()
	steadyDone.Wait()
	r.steadyCPU = apiCPU() - cpu1
	r.steadyRequests = counter.take()
	total := 0
	for _, n := range r.steadyRequests {
		total += n
	}
	r.steadyRequestsPerNodePerMin = float64(total) / float64(size) / fleetSteady.Minutes()
	return r, nil
}

func writeFleetAPI(out string, results []fleetResult) error {
	var b strings.Builder
	fmt.Fprintf(&b, "# image-keeper's API load on a fleet, simulated\n\n")
	fmt.Fprintf(&b, "Generated by `make bench-e2e` (`go run ./test/e2e/bench --what fleet-api`) on %s. Do not edit.\n\n", time.Now().UTC().Format("2006-01-02"))
	fmt.Fprintf(&b, "A throwaway control plane (etcd, kube-apiserver, controller-manager, scheduler of the release) on this 2-core machine; N Nodes created, each\n")
	fmt.Fprintf(&b, "with image-keeper's own `nodestatus.Publisher` and `pullslots.Slots` (real code, all in one process, one rate-limited client per\n")
	fmt.Fprintf(&b, "node over one connection). **Rollout**: every node at once publishes 2 images missing, takes one of %d pull slots, pulls for\n", fleetSlots)
	fmt.Fprintf(&b, "%v, gives the slot back, publishes warm and removes its startup taint. **Steady**: %v of publishNodeStatus' loop (a look\n", fleetPull, fleetSteady)
	fmt.Fprintf(&b, "every %v, a heartbeat patch every minute). Requests are counted at the clients, by verb and resource; API server CPU is\n", fleetInterval)
	fmt.Fprintf(&b, "its process's CPU time over the phase, less what it spent in the same time with the N Nodes and no image-keeper\n")
	fmt.Fprintf(&b, "(measured for %v before the rollout: the controllers' own work on the Nodes; given in brackets).\n\n", fleetBaseline)
	fmt.Fprintf(&b, "| nodes | rollout | most nodes holding a slot | rollout requests | per node | looks at the slots per waiting node per minute | API server CPU, rollout | steady requests per node per minute | API server CPU, steady |\n")
	fmt.Fprintf(&b, "|---|---|---|---|---|---|---|---|---|\n")
	for _, r := range results {
		total := 0
		var kinds []string
		for k, n := range r.rolloutRequests {
			total += n
			kinds = append(kinds, fmt.Sprintf("%s %d", k, n))
		}
		slices.Sort(kinds)
		idleRollout, idleSteady := r.idleCPUPerSecond*r.rollout.Seconds(), r.idleCPUPerSecond*fleetSteady.Seconds()
		steady := max(0, r.steadyCPU-idleSteady)
		fmt.Fprintf(&b, "| %d | %.1f s | %d | %d (%s) | %.1f | %.2f | %.1f s (%.1f s idle) | %.2f | %.1f s, %.1f %% of a core (%.1f s idle) |\n",
			r.nodes, r.rollout.Seconds(), r.mostHolders, total, strings.Join(kinds, ", "), float64(total)/float64(r.nodes),
			r.waitingLooksPerNodePerMin, max(0, r.rolloutCPU-idleRollout), idleRollout, r.steadyRequestsPerNodePerMin, steady, 100*steady/fleetSteady.Seconds(), idleSteady)
	}
	last := results[len(results)-1]
	perNodeRollout := 0.0
	for _, n := range last.rolloutRequests {
		perNodeRollout += float64(n)
	}
	perNodeRollout /= float64(last.nodes)
	fmt.Fprintf(&b, "\n## Extrapolated (from the %d-node run, linear per node)\n\n", last.nodes)
	fmt.Fprintf(&b, "| nodes | steady: requests/s (heartbeats) | a list rollout: requests per node | a list rollout with %d slots: time (%v pulls) | the kubelets' own Node Lease renewals, for scale |\n|---|---|---|---|---|\n", fleetSlots, fleetPull)
	for _, nodes := range []int{1000, 5000} {
		perRound := last.rollout.Seconds() / (float64(last.nodes) / fleetSlots)
		fmt.Fprintf(&b, "| %d | %.1f | %.1f | %.0f s | %.0f/s (one per node per 10 s) |\n",
			nodes, last.steadyRequestsPerNodePerMin*float64(nodes)/60, perNodeRollout, perRound*float64(nodes)/fleetSlots, float64(nodes)/10)
	}
	fmt.Fprintf(&b, "\nA waiting node looks at the slots (one List of at most %d Leases, from the API server's watch cache) after a delay that\n", fleetSlots)
	fmt.Fprintf(&b, "starts at 1 s and doubles to 30 s, so the looks of a long rollout approach 2 per waiting node per minute whatever the fleet's\n")
	fmt.Fprintf(&b, "size; the rollout's time is (nodes / slots) x (one node's pulls + the hand-over), the hand-over shrinking as more nodes wait.\n")
	fmt.Fprintf(&b, "The steady phase's CPU is within the noise of the controllers' own work on the Nodes (0.0 where the idle minute cost more).\n")
	return os.WriteFile(filepath.Join(out, "fleet-api.md"), []byte(b.String()), 0o644)
}
