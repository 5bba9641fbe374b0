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
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kubeletv1beta1 "k8s.io/kubelet/config/v1beta1"

	"github.com/kubelet-imagecache/kubelet-imagecache/pkg/explain"
	"github.com/kubelet-imagecache/kubelet-imagecache/pkg/holder"
	"github.com/kubelet-imagecache/kubelet-imagecache/pkg/keeper"
	"github.com/kubelet-imagecache/kubelet-imagecache/pkg/nodestatus"
	"github.com/kubelet-imagecache/kubelet-imagecache/test/e2e/framework"
)

// Holder mode on the stock kubelet (upstream v1.37.2 as released, no imageGCExclude) on
// containerd 2.4: image-keeper keeps a static pod that mounts the wanted images as image volumes,
// and the kubelet's GC, under an always-crossed imagefs threshold, deletes every other image but
// never a held one. A list change under that pressure loses nothing: the new holder runs before
// the old manifest goes, checked twice a second through the switch; the image dropped from the
// list is then collected like any other (a cache, not a pin). A held image removed by hand is
// pulled back. After an offline reboot the held images are still there, and stay. image-keeper's
// status and explain say what protects each image.
func TestHolderStockKubelet(t *testing.T) {
	t.Parallel()
	n := newNodeOn(t, runtimes(t, "containerd-2.4")[0])
	n.KubeletBinary = filepath.Join(binDir, "stock", "kubelet")
	n.PodNetwork = true // the holder pod is not on the host network
	a := push(t, n, framework.ImageSpec{Repository: "e2e/held-a", Tag: "1"})
	b := push(t, n, framework.ImageSpec{Repository: "e2e/held-b", Tag: "1"})
	c := push(t, n, framework.ImageSpec{Repository: "e2e/held-c", Tag: "1"})
	junk := push(t, n, framework.ImageSpec{Repository: "e2e/junk", Tag: "1"})
	junk2 := push(t, n, framework.ImageSpec{Repository: "e2e/junk", Tag: "2"})
	keeperRef := pushKeeperImage(t, n)
	pause := startRuntimeWithPause(t, n)
	pull(t, n, junk.Ref)

	keeperConfig := filepath.Join(n.Root, "keeper.yaml")
	if err := framework.WriteKeeperConfig(keeperConfig, a.Ref, b.Ref); err != nil {
		t.Fatal(err)
	}
	config, err := n.WriteKubeletConfig("kubelet", framework.KubeletConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if err := n.StartKubelet(config); err != nil {
		t.Fatal(err)
	}
	startStaticHolderKeeper(t, n, keeperConfig, keeperRef)
	first := staticHolderName(t, keeperRef, a.Ref, b.Ref)
	waitHolderRunning(t, n, first)
	if !waitDeleted(t, n, map[string]string{"junk": junk.Ref}) {
		t.Fatalf("the stock kubelet did not collect the unheld image; present: %v", keys(present(t, n)))
	}
	waitGCPasses(t, n, 3)
	assertPresent(t, n, a, b)
	for _, img := range []*framework.Image{a, b} {
		if got, want := keeperProtection(t, n, img.Ref), keeper.HeldByImageVolume+first; got != want {
			t.Errorf("image-keeper says %s is protected by %q; want %q", img.Ref, got, want)
		}
	}
	// explain reads the mounts as the kubelet does: the held images are held, not collectable.
	out, stderr, code := runExplain(t, n, "", "--kubelet-config", config, "-o", "json")
	if code != 0 {
		t.Fatalf("explain exited %d: %s\n%s", code, stderr, out)
	}
	var report explain.Report
	if err := json.Unmarshal([]byte(out), &report); err != nil {
		t.Fatalf("explain -o json: %v\n%s", err, out)
	}
	decisions := map[string]explain.Decision{}
	for _, x := range report.Images {
		for _, tag := range x.RepoTags {
			decisions[tag] = x.Decision
		}
	}
	for _, img := range []*framework.Image{a, b} {
		if decisions[img.Ref] != explain.HeldByImageVolume {
			t.Errorf("explain says %s is %q; want %q", img.Ref, decisions[img.Ref], explain.HeldByImageVolume)
		}
	}

	// The list changes under pressure: a stays wanted, b goes, c comes.
	if err := framework.WriteKeeperConfig(keeperConfig, a.Ref, c.Ref); err != nil {
		t.Fatal(err)
	}
	second := staticHolderName(t, keeperRef, a.Ref, c.Ref)
	passes := n.GCPasses()
	deadline := time.Now().Add(2 * time.Minute)
	cSeen := false
	for {
		p := present(t, n)
		if !p[a.Ref] {
			t.Fatalf("%s, wanted before and after the change, went during the switch of holders (GC pass %d)", a.Ref, n.GCPasses())
		}
		if cSeen && !p[c.Ref] {
			t.Fatalf("%s went after it was pulled for the new holder (GC pass %d)", c.Ref, n.GCPasses())
		}
		cSeen = cSeen || p[c.Ref]
		running, _ := n.ContainerRunning(second)
		if running && !manifestExists(n, first) && n.GCPasses() >= passes+3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the new holder %s did not replace %s within 2 minutes; running %v, manifests %v; image-keeper: %s", second, first, running, manifestExists(n, first), framework.Tail(n.Keeper, 10))
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Logf("holder switched over %d GC passes; %s present throughout", n.GCPasses()-passes, a.Ref)
	if !waitDeleted(t, n, map[string]string{"b": b.Ref}) {
		t.Errorf("%s, dropped from the list, was not collected: a holder is not a pin on what nobody wants", b.Ref)
	}

	// Held, not restored: the kubelet never chose a held image to delete (image-keeper would
	// pull one back, which the presence checks above could miss between two looks).
	if removed := removalsOf(n, junk.ID); removed == 0 {
		t.Errorf("the kubelet's log has no removal of %s (%s): the check below would prove nothing", junk.Ref, junk.ID)
	}
	for _, img := range []*framework.Image{a, c} {
		if removed := removalsOf(n, runtimeImageID(t, n, img.Ref)); removed != 0 {
			t.Errorf("the kubelet removed held image %s %d times", img.Ref, removed)
		}
	}

	// Removed by hand: image-keeper pulls it back, and the running holder still mounts it.
	if err := n.RemoveImage(c.Ref); err != nil {
		t.Fatal(err)
	}
	if !framework.Eventually(time.Minute, time.Second, func() bool { return present(t, n)[c.Ref] }) {
		t.Fatalf("%s, removed by hand, did not come back", c.Ref)
	}
	if running, err := n.ContainerRunning(second); err != nil || !running {
		t.Errorf("the holder stopped after its image was removed: %v", err)
	}

	// The node reboots offline: the registry is gone, every container dies, containerd and the
	// kubelet start again, still under pressure. The kubelet starts the holder from the images
	// on disk (IfNotPresent); until then, imageMinimumGCAge guards them (upstream's default is
	// 2 minutes; 20 s here, still ample: the holder runs within seconds). Past it the kubelet
	// deletes an unheld image and keeps the held ones.
	n.StopKubelet()
	pull(t, n, junk2.Ref)
	n.StopRegistry()
	if err := n.RemovePod(second); err != nil {
		t.Fatal(err)
	}
	n.StopRuntime()
	startRuntime(t, n, pause)
	rebooted, err := n.WriteKubeletConfig("kubelet-rebooted", framework.KubeletConfig{Customize: func(c *kubeletv1beta1.KubeletConfiguration) {
		c.ImageMinimumGCAge = metav1.Duration{Duration: 20 * time.Second}
	}})
	if err != nil {
		t.Fatal(err)
	}
	if err := n.StartKubelet(rebooted); err != nil {
		t.Fatal(err)
	}
	waitHolderRunning(t, n, second)
	if !waitDeleted(t, n, map[string]string{"junk2": junk2.Ref}) {
		t.Fatalf("after the reboot the kubelet did not collect the unheld %s past imageMinimumGCAge", junk2.Ref)
	}
	waitGCPasses(t, n, 2)
	assertPresent(t, n, a, c)
	for _, img := range []*framework.Image{a, c} {
		if removed := removalsOf(n, runtimeImageID(t, n, img.Ref)); removed != 0 {
			t.Errorf("after the offline reboot the kubelet removed held image %s", img.Ref)
		}
	}
}

// startStaticHolderKeeper starts image-keeper in static holder mode with docs/image-keeper.md's
// command, this node's paths and image, and a 2 s interval.
func startStaticHolderKeeper(t *testing.T, n *framework.Node, keeperConfig, keeperRef string) {
	t.Helper()
	args := docCommand(t, "image-keeper.md", "<!-- holder-static-pod -->", map[string]string{
		"/etc/image-keeper/config.yaml":            keeperConfig,
		"/etc/kubernetes/manifests":                n.StaticPodDir(),
		"registry.example.com/image-keeper:v0.1.0": keeperRef,
	})
	if err := n.StartKeeper(append(args[1:], "--interval", "2s")...); err != nil {
		t.Fatal(err)
	}
}

// staticHolderName is the name of the static holder image-keeper writes for refs.
func staticHolderName(t *testing.T, holderImage string, refs ...string) string {
	t.Helper()
	pod, err := holder.StaticPod(refs, holder.Options{Image: holderImage})
	if err != nil {
		t.Fatal(err)
	}
	return pod.Name
}

func waitHolderRunning(t *testing.T, n *framework.Node, pod string) {
	t.Helper()
	if !framework.Eventually(2*time.Minute, time.Second, func() bool {
		running, _ := n.ContainerRunning(pod)
		return running
	}) {
		t.Fatalf("the holder %s did not run; image-keeper: %s\nkubelet: %s", pod, framework.Tail(n.Keeper, 10), framework.Tail(n.Kubelet, 20))
	}
}

// docCommand is the command of the sh block after marker in docs/<doc> (backslash
// continuations joined), as words, each word that is a key of values replaced by its value; every
// key must be used, so that the doc and the test cannot drift apart unnoticed.
func docCommand(t *testing.T, doc, marker string, values map[string]string) []string {
	t.Helper()
	block, err := framework.DocBlock(filepath.Join(repoRoot, "docs", doc), marker, "sh")
	if err != nil {
		t.Fatal(err)
	}
	words := strings.Fields(strings.ReplaceAll(block, "\\\n", " "))
	used := map[string]bool{}
	for i, w := range words {
		if v, ok := values[w]; ok {
			words[i], used[w] = v, true
		}
	}
	for k := range values {
		if !used[k] {
			t.Fatalf("docs/%s's command after %s no longer has %q:\n%s", doc, marker, k, block)
		}
	}
	return words
}

// removalsOf counts the kubelet's GC removals of an image ID.
func removalsOf(n *framework.Node, id string) int {
	return n.Kubelet.CountInLog(`"Removing image to free bytes" imageID="` + id + `"`)
}

func manifestExists(n *framework.Node, pod string) bool {
	_, err := os.Stat(filepath.Join(n.StaticPodDir(), pod+".yaml"))
	return err == nil
}

// keeperProtection is the protection image-keeper's /status reports for ref ("yes: <entry>").
func keeperProtection(t *testing.T, n *framework.Node, ref string) string {
	t.Helper()
	_, body := getURL("http://" + n.KeeperAddr + "/status")
	var status keeper.Status
	if err := json.Unmarshal([]byte(body), &status); err != nil {
		t.Fatalf("image-keeper /status: %v: %s", err, body)
	}
	for _, img := range status.Images {
		if img.Reference == ref {
			if img.Protected.State != keeper.Protected {
				return strings.TrimSpace(img.Protected.String())
			}
			return img.Protected.Entry
		}
	}
	t.Fatalf("image-keeper /status lists no %s: %s", ref, body)
	return ""
}

// Holder mode in a cluster, on the stock v1.37.2 kubelet registered with image-keeper's startup
// taint: the holder DaemonSet (holder.DaemonSet, what `image-keeper holder-manifest` renders),
// at priority system-node-critical, runs on the tainted node and holds the list under an
// always-crossed imagefs threshold. image-keeper (a process here, publishing with a kubeconfig,
// --holder-daemonset-namespace) starts first and pulls the list itself, but keeps the gate shut
// (ImageCacheReady=False, ImagesNotHeld) until the holder's pod mounts every image; then it
// opens the gate and names the holder pod as what protects each image. A new list rolls out make-before-break (maxSurge 1, maxUnavailable 0): the
// old holder pod is deleted only after the new one is Ready, and the image in both lists is
// present at every look, twice a second; the dropped image is collected afterwards. Without the
// critical class, the kubelet does not keep the holder under that pressure.
func TestClusterHolderDaemonSet(t *testing.T) {
	t.Parallel()
	c := newClusterNode(t)
	ctx := context.Background()
	c.KubeletBinary = filepath.Join(binDir, "stock", "kubelet")
	a := push(t, c.Node, framework.ImageSpec{Repository: "e2e/held-a", Tag: "1"})
	b := push(t, c.Node, framework.ImageSpec{Repository: "e2e/held-b", Tag: "1"})
	d := push(t, c.Node, framework.ImageSpec{Repository: "e2e/held-d", Tag: "1"})
	junk := push(t, c.Node, framework.ImageSpec{Repository: "e2e/junk", Tag: "1"})
	keeperRef := pushKeeperImage(t, c.Node)
	startRuntimeWithPause(t, c.Node)
	pull(t, c.Node, junk.Ref)
	c.RegisterWithTaints = []string{nodestatus.StartupTaintKey + "=:NoSchedule"}
	config, err := c.WriteKubeletConfig("kubelet", framework.KubeletConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.StartKubelet(config); err != nil {
		t.Fatal(err)
	}
	// Under the always-crossed threshold the node also gets the disk-pressure taint: wait for the
	// node, not for the startup taint alone.
	if !framework.Eventually(2*time.Minute, time.Second, func() bool {
		node, err := c.client.CoreV1().Nodes().Get(ctx, c.Name, metav1.GetOptions{})
		ready := framework.NodeCondition(node, corev1.NodeReady)
		return err == nil && ready != nil && ready.Status == corev1.ConditionTrue && tainted(node)
	}) {
		t.Fatalf("the node is not Ready with the startup taint; kubelet: %s", framework.Tail(c.Kubelet, 20))
	}

	// image-keeper runs before the holder exists and pulls the list itself; in holder mode
	// present is not warm: the gate stays shut until the holder's pod mounts every image.
	keeperConfig := filepath.Join(c.Root, "keeper.yaml")
	if err := framework.WriteKeeperConfig(keeperConfig, a.Ref, b.Ref); err != nil {
		t.Fatal(err)
	}
	if err := c.StartKeeper("--config", keeperConfig, "--kubeconfig", c.cp.AdminKubeconfig, "--node-name", c.Name, "--interval", "2s", "--node-status-heartbeat", "10s",
		"--holder-daemonset-namespace", "kube-system"); err != nil {
		t.Fatal(err)
	}
	var notHeld string
	if !framework.Eventually(2*time.Minute, 500*time.Millisecond, func() bool {
		cond := condition(c.node(t), nodestatus.ConditionType)
		if cond != nil && cond.Reason == nodestatus.ReasonNotHeld {
			notHeld = cond.Message
		}
		return notHeld != ""
	}) {
		t.Fatalf("without a holder, the node's %s never said %s; image-keeper: %s", nodestatus.ConditionType, nodestatus.ReasonNotHeld, framework.Tail(c.Keeper, 20))
	}
	if !tainted(c.node(t)) {
		t.Fatalf("the gate opened before any holder held the images (condition: %s)", notHeld)
	}
	t.Logf("before the holder: %s", notHeld)

	// The eviction manager evicts pods while the threshold stays crossed; a critical holder is not
	// among them (docs/image-keeper.md, "Any kubelet: holder mode").
	opts := holder.Options{Image: keeperRef, PriorityClassName: "system-node-critical"}
	ds, err := holder.DaemonSet([]string{a.Ref, b.Ref}, opts)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.client.AppsV1().DaemonSets(ds.Namespace).Create(ctx, ds, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	holders := func() []corev1.Pod {
		pods, err := c.client.CoreV1().Pods(ds.Namespace).List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/name=" + holder.NamePrefix})
		if err != nil {
			t.Fatal(err)
		}
		return pods.Items
	}
	readyHolder := func(hash string) bool {
		for _, p := range holders() {
			if p.Annotations[holder.HashAnnotation] == hash && p.DeletionTimestamp == nil && podReady(&p) {
				return true
			}
		}
		return false
	}
	first := nodestatus.WantedHash([]string{a.Ref, b.Ref})
	if !framework.Eventually(2*time.Minute, time.Second, func() bool {
		node := c.node(t)
		return readyHolder(first) && !tainted(node)
	}) {
		t.Fatalf("the holder is not Ready on the node, or the gate did not open; holders %+v\nkubelet: %s", holders(), framework.Tail(c.Kubelet, 20))
	}
	if cond := condition(c.node(t), nodestatus.ConditionType); cond == nil || cond.Status != corev1.ConditionTrue || !strings.Contains(cond.Message, "held (DaemonSet pods in namespace kube-system)") {
		t.Errorf("the open gate's condition: %+v; want True, held by the DaemonSet's pods", cond)
	}
	for _, img := range []*framework.Image{a, b} {
		if got := keeperProtection(t, c.Node, img.Ref); !strings.HasPrefix(got, keeper.HeldByImageVolume+holder.NamePrefix+"-") {
			t.Errorf("image-keeper says %s is protected by %q; want the holder pod's image volume", img.Ref, got)
		}
	}
	if !waitDeleted(t, c.Node, map[string]string{"junk": junk.Ref}) {
		t.Fatalf("the stock kubelet did not collect the unheld image; present: %v", keys(present(t, c.Node)))
	}
	waitGCPasses(t, c.Node, 2)
	assertPresent(t, c.Node, a, b)

	// The new list: a stays, b goes, d comes.
	next, err := holder.DaemonSet([]string{a.Ref, d.Ref}, opts)
	if err != nil {
		t.Fatal(err)
	}
	c.updateDaemonSet(ctx, t, ds.Namespace, ds.Name, func(current *appsv1.DaemonSet) {
		current.Spec.Template = next.Spec.Template
	})
	// image-keeper's list changes with the holder's (one ConfigMap renders both): otherwise it
	// would pull the dropped image back after every GC pass.
	if err := framework.WriteKeeperConfig(keeperConfig, a.Ref, d.Ref); err != nil {
		t.Fatal(err)
	}
	second := nodestatus.WantedHash([]string{a.Ref, d.Ref})
	var newReadyAt, oldGoneAt time.Time
	deadline := time.Now().Add(3 * time.Minute)
	for oldGoneAt.IsZero() || newReadyAt.IsZero() {
		if !present(t, c.Node)[a.Ref] {
			t.Fatalf("%s, in both lists, went during the rollout (GC pass %d)", a.Ref, c.GCPasses())
		}
		if newReadyAt.IsZero() && readyHolder(second) {
			newReadyAt = time.Now()
		}
		oldLeft := false
		for _, p := range holders() {
			oldLeft = oldLeft || p.Annotations[holder.HashAnnotation] == first
		}
		if !oldLeft && oldGoneAt.IsZero() {
			oldGoneAt = time.Now()
			if newReadyAt.IsZero() {
				t.Fatalf("the old holder pod went before the new one was Ready: the rollout left the images unprotected")
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the rollout did not finish in 3 minutes; holders %+v", holders())
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Logf("rollout: new holder Ready, then the old one deleted %v later; %s present throughout", oldGoneAt.Sub(newReadyAt).Round(100*time.Millisecond), a.Ref)
	if !waitDeleted(t, c.Node, map[string]string{"b": b.Ref}) {
		t.Errorf("%s, dropped from the list, was not collected", b.Ref)
	}
	assertPresent(t, c.Node, a, d)
	for _, img := range []*framework.Image{a, d} {
		if removed := removalsOf(c.Node, runtimeImageID(t, c.Node, img.Ref)); removed != 0 {
			t.Errorf("the kubelet removed held image %s %d times", img.Ref, removed)
		}
	}

	// The operator's other choice: without a critical priority class the holder is a pod like
	// any other under disk pressure, and this pressure never ends: the kubelet evicts it, or
	// refuses to admit it while the node has DiskPressure (an event of reason Evicted either way;
	// docs/image-keeper.md, "Any kubelet: holder mode").
	c.updateDaemonSet(ctx, t, ds.Namespace, ds.Name, func(current *appsv1.DaemonSet) {
		current.Spec.Template.Spec.PriorityClassName = ""
	})
	if !framework.Eventually(3*time.Minute, time.Second, func() bool {
		events, err := c.client.CoreV1().Events(ds.Namespace).List(ctx, metav1.ListOptions{FieldSelector: "reason=Evicted"})
		if err != nil {
			return false
		}
		for _, e := range events.Items {
			if strings.HasPrefix(e.InvolvedObject.Name, holder.NamePrefix) {
				t.Logf("non-critical holder evicted or refused: %s", e.Message)
				return true
			}
		}
		return false
	}) {
		t.Errorf("the non-critical holder was neither evicted nor refused under unending imagefs pressure; holders %+v", holders())
	}
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// Holder mode with a private registry, as an operator meets it: every image (the held one, the
// holder's own, pause) needs a login. The kubelet pulls what the holder mounts with the node's
// credentials (here its root dir's config.json, /var/lib/kubelet/config.json on a node);
// image-keeper, given no login, cannot pull them itself, yet once the kubelet has, the holder
// runs, the image stays under an always-crossed imagefs threshold, and image-keeper reports it
// held and its node warm.
func TestHolderPrivateRegistry(t *testing.T) {
	t.Parallel()
	n := newNodeOn(t, runtimes(t, "containerd-2.4")[0], func(n *framework.Node) {
		n.RegistryUser, n.RegistryPassword = "e2e", fmt.Sprintf("pw-%d", time.Now().UnixNano())
	})
	n.KubeletBinary = filepath.Join(binDir, "stock", "kubelet")
	n.PodNetwork = true
	private := push(t, n, framework.ImageSpec{Repository: "e2e/private-held", Tag: "1"})
	junk := push(t, n, framework.ImageSpec{Repository: "e2e/junk", Tag: "1"})
	keeperRef := pushKeeperImage(t, n)
	pause := startRuntimeWithPause(t, n)
	// The runtime pulls its sandbox image with its own configuration, which has no login: the
	// node's image (as a node image build or kubeadm's pre-pull would) has it already.
	pull(t, n, pause.Ref, junk.Ref)

	auth := base64.StdEncoding.EncodeToString([]byte(n.RegistryUser + ":" + n.RegistryPassword))
	if err := os.MkdirAll(n.KubeletRootDir(), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(n.KubeletRootDir(), "config.json"), []byte(fmt.Sprintf(`{"auths":{%q:{"auth":%q}}}`, n.RegistryAddr, auth)), 0o600); err != nil {
		t.Fatal(err)
	}
	config, err := n.WriteKubeletConfig("kubelet", framework.KubeletConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if err := n.StartKubelet(config); err != nil {
		t.Fatal(err)
	}
	if err := n.StartKeeper("--image", private.Ref, "--holder-static-pod-dir", n.StaticPodDir(), "--holder-image", keeperRef, "--interval", "2s"); err != nil {
		t.Fatal(err)
	}
	pod := staticHolderName(t, keeperRef, private.Ref)
	waitHolderRunning(t, n, pod)
	if !waitDeleted(t, n, map[string]string{"junk": junk.Ref}) {
		t.Fatalf("the stock kubelet did not collect the unheld image; present: %v", keys(present(t, n)))
	}
	waitGCPasses(t, n, 2)
	assertPresent(t, n, private)
	if got, want := keeperProtection(t, n, private.Ref), keeper.HeldByImageVolume+pod; got != want {
		t.Errorf("image-keeper says %s is protected by %q; want %q", private.Ref, got, want)
	}
	if !framework.Eventually(30*time.Second, time.Second, func() bool {
		code, _ := getURL("http://" + n.KeeperAddr + "/readyz")
		return code == http.StatusOK
	}) {
		_, body := getURL("http://" + n.KeeperAddr + "/readyz")
		t.Errorf("image-keeper is not ready with its image present and held: %s", body)
	}
	// image-keeper's own pulls were refused: the kubelet, not image-keeper, pulled the image.
	if log := framework.Tail(n.Keeper, 200); !strings.Contains(log, "no basic auth credentials") {
		t.Errorf("image-keeper, with no login, did not report a refused pull; it pulled the private image itself?\n%s", log)
	}
}
