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
	"context"
	"fmt"
	"maps"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubelet-imagecache/kubelet-imagecache/pkg/nodestatus"
	"github.com/kubelet-imagecache/kubelet-imagecache/test/e2e/framework"
)

// A fleet of three nodes on one control plane and one registry, each node's pulls through a
// shaped proxy of its own (4 MiB/s, 20 ms: the registry's request log, per node), set as the
// registry's mirror with docs/image-keeper.md's hosts.toml. image-keeper runs as deploy/'s
// DaemonSet, applied with kubectl apply -k as an overlay, RBAC and admission policies as shipped
// (each pod's token names its node), on the three nodes registered with the startup taint. With
// one pull slot, a list of two 4 MiB images reaches the three nodes and they pull one node at a
// time: no two nodes' pulls overlap in the registry's log. Then the DaemonSet is replaced by one
// with three slots and a new list, and the rollout is followed node by node through the
// wanted-hash annotation and docs/warm-nodes.md's `kubectl get nodes` columns. The timings of
// both are logged (docs/bench/pull-slots.md).
func TestFleetPullSlots(t *testing.T) {
	t.Parallel()
	nodes := newCluster(t, 3)
	ctx := context.Background()
	first := nodes[0]
	pause := push(t, first.Node, framework.ImageSpec{Repository: "e2e/pause", Tag: "1"})
	var refs []string
	for _, name := range []string{"a", "b", "c", "d"} {
		refs = append(refs, push(t, first.Node, framework.ImageSpec{Repository: "e2e/fleet-" + name, Tag: "1", PadBytes: 4 << 20}).Ref)
	}
	list1, list2 := refs[:2], refs[2:]

	keeperRef := pushKeeperImage(t, first.Node)
	// docs/image-keeper.md's mirror hosts.toml, each node's proxy as the mirror.
	mirror, err := framework.DocBlock(filepath.Join(repoRoot, "docs", "image-keeper.md"), "<!-- mirror-hosts -->", "toml")
	if err != nil {
		t.Fatal(err)
	}
	mirror = strings.NewReplacer("https://registry.example.com", "REGISTRY", "http://mirror.example.internal:5000", "MIRROR").Replace(mirror)
	proxies := map[string]*framework.ShapingProxy{}
	kubeletConfigs := map[string]string{}
	for _, n := range nodes {
		startRuntime(t, n.Node, pause)
		proxy, err := n.StartShapingProxy(20*time.Millisecond, 4<<20)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(proxy.Stop)
		if err := n.RouteRegistryThrough(proxy, mirror); err != nil {
			t.Fatal(err)
		}
		proxies[n.Name] = proxy
		n.RegisterWithTaints = []string{nodestatus.StartupTaintKey + "=:NoSchedule"}
		config, err := n.WriteKubeletConfig("kubelet", framework.KubeletConfig{Gate: true, Exclude: []string{n.RegistryAddr + "/e2e/*"}, NoPressure: true})
		if err != nil {
			t.Fatal(err)
		}
		if err := n.StartKubelet(config); err != nil {
			t.Fatal(err)
		}
		kubeletConfigs[n.Name] = config
	}
	waitNodesReady(t, nodes)

	// The DaemonSet's host paths differ per node: each node's are symlinked under
	// links/<node name>/, the temp directory is mounted at its own path, and the args name the
	// node's with $(NODE_NAME), which the kubelet expands from the pod's env.
	links, err := os.MkdirTemp("", "imagecache-fleet-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(links) })
	var socket string
	for _, n := range nodes {
		dir := filepath.Join(links, n.Name)
		endpoint := strings.TrimPrefix(n.RuntimeEndpoint(), "unix://")
		socket = filepath.Base(endpoint)
		if err := os.MkdirAll(filepath.Join(dir, "state"), 0o755); err != nil {
			t.Fatal(err)
		}
		dropIns := filepath.Join(n.Root, "kubelet", "conf.d")
		if err := os.MkdirAll(dropIns, 0o755); err != nil { // what the shipped hostPath's DirectoryOrCreate does
			t.Fatal(err)
		}
		for name, target := range map[string]string{"run": filepath.Dir(endpoint), "kubelet.yaml": kubeletConfigs[n.Name], "conf.d": dropIns} {
			if err := os.Symlink(target, filepath.Join(dir, name)); err != nil {
				t.Fatal(err)
			}
		}
	}
	tmp := os.TempDir()
	host, port, err := net.SplitHostPort(strings.TrimPrefix(first.cp.Server, "https://"))
	if err != nil {
		t.Fatal(err)
	}
	deploy := func(name string, slots int, list []string) {
		t.Helper()
		node := filepath.Join(links, "$(NODE_NAME)")
		o := overlay{
			image: keeperRef,
			list:  list,
			env:   map[string]string{"KUBERNETES_SERVICE_HOST": host, "KUBERNETES_SERVICE_PORT": port},
			ops: []map[string]any{
				{"op": "replace", "path": "/spec/template/spec/containers/0/args", "value": []string{
					"--runtime-endpoint=unix://" + filepath.Join(node, "run", socket),
					"--config=/etc/image-keeper/config.yaml",
					"--kubelet-config=" + filepath.Join(node, "kubelet.yaml"),
					"--kubelet-config-dir=" + filepath.Join(node, "conf.d"),
					"--listen=:10356", "--status-listen=127.0.0.1:10357",
					"--state-dir=" + filepath.Join(node, "state"),
					"--interval=2s", "--node-status-heartbeat=10s",
					"--pull-slots=" + strconv.Itoa(slots), "--pull-slot-lease-duration=10s",
				}},
				{"op": "replace", "path": "/spec/template/spec/volumes", "value": []map[string]any{
					{"name": "config", "configMap": map[string]any{"name": "image-keeper"}},
					{"name": "tmp", "hostPath": map[string]any{"path": tmp, "type": "Directory"}},
				}},
				{"op": "replace", "path": "/spec/template/spec/containers/0/volumeMounts", "value": []map[string]any{
					{"name": "config", "mountPath": "/etc/image-keeper", "readOnly": true},
					{"name": "tmp", "mountPath": tmp},
				}},
			},
		}
		first.kubectl(t, "apply", "--server-side", "-k", o.write(t, filepath.Join(first.Root, name)))
	}
	// rollout waits until every node is warm on the list, and returns when each got there.
	rollout := func(list []string) map[string]time.Duration {
		t.Helper()
		hash := nodestatus.WantedHash(list)
		start := time.Now()
		warm := map[string]time.Duration{}
		if !framework.Eventually(3*time.Minute, 200*time.Millisecond, func() bool {
			for _, n := range nodes {
				if _, ok := warm[n.Name]; ok {
					continue
				}
				node, err := first.client.CoreV1().Nodes().Get(ctx, n.Name, metav1.GetOptions{})
				if err != nil {
					continue
				}
				c := framework.NodeCondition(node, nodestatus.ConditionType)
				if node.Annotations[nodestatus.WantedHashAnnotation] == hash && c != nil && c.Status == corev1.ConditionTrue && !tainted(node) {
					warm[n.Name] = time.Since(start)
				}
			}
			return len(warm) == len(nodes)
		}) {
			for _, n := range nodes {
				// The pods' logs, where this node's kubelet keeps them (kubectl logs would need
				// the node's name to resolve).
				logs, _ := filepath.Glob(filepath.Join(n.Root, "kubelet", "pod-logs", "image-keeper_*", "image-keeper", "*.log"))
				for _, l := range logs {
					data, _ := os.ReadFile(l)
					lines := strings.Split(strings.TrimSpace(string(data)), "\n")
					t.Logf("%s: %s:\n%s", n.Name, l, strings.Join(lines[max(0, len(lines)-20):], "\n"))
				}
			}
			t.Fatalf("not every node warm on list %s: %v", hash, warm)
		}
		return warm
	}

	// image-keeper's own image on every node first: the kubelet pulls it for the pods, not
	// image-keeper, and its pull is not what is measured.
	for _, n := range nodes {
		pull(t, n.Node, keeperRef)
	}

	// One slot.
	start := time.Now()
	deploy("v1", 1, list1)
	warm1 := rollout(list1)
	pulls1 := pullWindows(proxies, list1, start)
	if len(pulls1) != len(nodes) {
		t.Errorf("%d of %d nodes pulled through their mirror (the proxy): %v", len(pulls1), len(nodes), pulls1)
	}
	if most := mostAtOnce(pulls1); most != 1 {
		t.Errorf("with one pull slot, %d nodes pulled from the registry at once; want 1: %v", most, pulls1)
	}
	t.Logf("1 slot: %d nodes warm on 2 x 4 MiB images; per node (registry log): %s; last node warm %v after start", len(nodes), pulls1, slices.Max(slices.Collect(maps.Values(warm1))).Round(10*time.Millisecond))
	checkFleetWatchCommand(t, first, nodes, nodestatus.WantedHash(list1))

	// A new list, three slots: the DaemonSet replaced, its three pods started together.
	first.kubectl(t, "delete", "daemonset", "-n", "image-keeper", "image-keeper", "--wait=true")
	if !framework.Eventually(2*time.Minute, time.Second, func() bool {
		pods, err := first.client.CoreV1().Pods("image-keeper").List(ctx, metav1.ListOptions{})
		return err == nil && len(pods.Items) == 0
	}) {
		t.Fatal("the DaemonSet's pods did not go")
	}
	start = time.Now()
	deploy("v2", 3, list2)
	warm2 := rollout(list2)
	pulls2 := pullWindows(proxies, list2, start)
	if most := mostAtOnce(pulls2); most > 3 {
		t.Errorf("with three pull slots, %d nodes pulled at once", most)
	}
	for _, n := range nodes {
		t.Logf("rollout of list %s: %s warm after %v", nodestatus.WantedHash(list2), n.Name, warm2[n.Name].Round(10*time.Millisecond))
	}
	t.Logf("3 slots: per node (registry log): %s; at most %d nodes at once; last node warm %v after start", pulls2, mostAtOnce(pulls2), slices.Max(slices.Collect(maps.Values(warm2))).Round(10*time.Millisecond))
	checkFleetWatchCommand(t, first, nodes, nodestatus.WantedHash(list2))
}

// window is when a node pulled, from its proxy's log: the first blob request's start to the
// last one's end.
type window struct {
	node       string
	start, end time.Time
}

type windows []window

func (ws windows) String() string {
	var parts []string
	origin := slices.MinFunc(ws, func(a, b window) int { return a.start.Compare(b.start) }).start
	for _, w := range ws {
		parts = append(parts, fmt.Sprintf("%s %.2f-%.2fs", w.node, w.start.Sub(origin).Seconds(), w.end.Sub(origin).Seconds()))
	}
	return strings.Join(parts, ", ")
}

// pullWindows are the nodes' pull windows of the list's blobs since start.
func pullWindows(proxies map[string]*framework.ShapingProxy, list []string, start time.Time) windows {
	var ws windows
	for node, p := range proxies {
		w := window{node: node}
		for _, r := range p.Requests() {
			if r.Start.Before(start) || !strings.Contains(r.Path, "/blobs/") || !slices.ContainsFunc(list, func(ref string) bool {
				return strings.Contains(r.Path, "/"+strings.TrimSuffix(strings.SplitN(ref, "/", 2)[1], ":1")+"/")
			}) {
				continue
			}
			if w.start.IsZero() || r.Start.Before(w.start) {
				w.start = r.Start
			}
			if r.End.After(w.end) {
				w.end = r.End
			}
		}
		if !w.start.IsZero() {
			ws = append(ws, w)
		}
	}
	slices.SortFunc(ws, func(a, b window) int { return a.start.Compare(b.start) })
	return ws
}

// mostAtOnce is the most windows open at one time.
func mostAtOnce(ws windows) int {
	most := 0
	for _, w := range ws {
		open := 0
		for _, o := range ws {
			if !o.start.After(w.start) && o.end.After(w.start) {
				open++
			}
		}
		most = max(most, open)
	}
	return most
}

// checkFleetWatchCommand runs docs/warm-nodes.md's "What to watch" command on the fleet: its
// header is the doc's, and each node's row says it is warm on hash, with no taint left.
func checkFleetWatchCommand(t *testing.T, c *clusterNode, nodes []*clusterNode, hash string) {
	t.Helper()
	block, err := framework.DocBlock(filepath.Join(repoRoot, "docs", "warm-nodes.md"), "<!-- warm-nodes-watch -->", "console")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(block, "\n")
	command, wantHeader := strings.TrimPrefix(lines[0], "$ "), lines[1]
	out := strings.Split(strings.TrimSpace(c.shell(t, command)), "\n")
	if len(out) != len(nodes)+1 || strings.Join(strings.Fields(out[0]), " ") != strings.Join(strings.Fields(wantHeader), " ") {
		t.Fatalf("%s printed:\n%s\nwant the header %q and %d nodes", command, strings.Join(out, "\n"), wantHeader, len(nodes))
	}
	rows := out[1:]
	for _, n := range nodes {
		want := n.Name + " True " + nodestatus.ReasonWarm + " " + hash + " <none>"
		if !slices.ContainsFunc(rows, func(row string) bool { return strings.Join(strings.Fields(row), " ") == want }) {
			t.Errorf("no row %q in:\n%s", want, strings.Join(out, "\n"))
		}
	}
}
