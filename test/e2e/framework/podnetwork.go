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
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// CNIBinDir holds Debian's containernetworking-plugins (hack/install-e2e-deps.sh).
const CNIBinDir = "/usr/lib/cni"

// podNetwork is a node's pod network: a Linux bridge that only this host reaches, with no
// route, NAT or forwarding to anything else (the framework creates the bridge and its address
// itself, so the bridge plugin never turns on the host's ip_forward). Pods get an address on it
// from host-local IPAM, and the kubelet's HTTP probes reach them from the host, as on a node.
type podNetwork struct {
	Bridge string
	// Subnet is a /24 in 10.213.0.0/16; Gateway, its first address, is the bridge's.
	Subnet, Gateway string
}

// newPodNetwork names the bridge after root, so that a rerun after a crash reuses the bridge the
// crashed run left instead of adding another, and gives it a subnet no other node uses: the one
// its bridge already has, else the first free one from a hash of root. Several nodes run at once
// (a cluster, a scenario's runtime legs): two bridges with one subnet would break both.
func newPodNetwork(root string) (podNetwork, error) {
	h := fnv.New32a()
	_, _ = h.Write([]byte(root))
	sum := h.Sum32()
	bridge := fmt.Sprintf("ikc%08x", sum) // 11 characters: a Linux interface name has at most 15
	subnetsMu.Lock()
	defer subnetsMu.Unlock()
	used := map[int]bool{}
	for octet := range subnetsGiven {
		used[octet] = true
	}
	own := -1
	ifaces, err := net.Interfaces()
	if err != nil {
		return podNetwork{}, err
	}
	for _, iface := range ifaces {
		addrs, err := iface.Addrs()
		if err != nil {
			continue
		}
		for _, a := range addrs {
			ipnet, ok := a.(*net.IPNet)
			if !ok {
				continue
			}
			if ip := ipnet.IP.To4(); ip != nil && ip[0] == 10 && ip[1] == 213 {
				if iface.Name == bridge {
					own = int(ip[2])
				} else {
					used[int(ip[2])] = true
				}
			}
		}
	}
	// Another test process's nodes too (ClaimsFile): a subnet is claimed before its bridge exists.
	octet, err := claimOne("subnet", func(claimed map[int]bool) (int, error) {
		if own >= 0 {
			return own, nil
		}
		for i := range 250 {
			if candidate := int((sum + uint32(i)) % 250); !used[candidate] && !claimed[candidate] {
				return candidate, nil
			}
		}
		return 0, errors.New("every pod network subnet in 10.213.0.0/16 is in use")
	})
	if err != nil {
		return podNetwork{}, err
	}
	subnetsGiven[octet] = true
	return podNetwork{
		Bridge:  bridge,
		Subnet:  fmt.Sprintf("10.213.%d.0/24", octet),
		Gateway: fmt.Sprintf("10.213.%d.1", octet),
	}, nil
}

var (
	// podNetworksCIDR holds every node's pod network subnet.
	podNetworksCIDR = "10.213.0.0/16"

	subnetsMu    sync.Mutex
	subnetsGiven = map[int]bool{}
)

// PodNetworkGateway creates the node's pod network if need be (see setupPodNetwork) and returns
// the host's address on it: what pods reach the host at, e.g. a control plane's API server.
func (n *Node) PodNetworkGateway() (string, error) {
	if n.podNetwork == nil {
		if err := n.setupPodNetwork(); err != nil {
			return "", err
		}
	}
	return n.podNetwork.Gateway, nil
}

// setupPodNetwork creates the node's bridge (up, with the gateway address) and writes the CNI
// config containerd reads from confDir. It may run again (containerd restarts).
func (n *Node) setupPodNetwork() error {
	if _, err := os.Stat(CNIBinDir + "/bridge"); err != nil {
		return fmt.Errorf("the CNI plugins are not installed (%v); run hack/install-e2e-deps.sh", err)
	}
	if n.podNetwork == nil {
		pn, err := newPodNetwork(n.Root)
		if err != nil {
			return err
		}
		n.podNetwork = &pn
	}
	pn := *n.podNetwork
	if _, err := net.InterfaceByName(pn.Bridge); err != nil {
		if err := ipCommand("link", "add", pn.Bridge, "type", "bridge"); err != nil {
			return err
		}
	}
	if err := ipCommand("addr", "replace", pn.Gateway+"/24", "dev", pn.Bridge); err != nil {
		return err
	}
	if err := ipCommand("link", "set", pn.Bridge, "up"); err != nil {
		return err
	}
	conflist := map[string]any{
		"cniVersion": "1.0.0",
		"name":       "e2e",
		"plugins": []any{
			map[string]any{
				"type":        "bridge",
				"bridge":      pn.Bridge,
				"isGateway":   false,
				"ipMasq":      false,
				"hairpinMode": true,
				"ipam": map[string]any{
					"type":   "host-local",
					"ranges": [][]map[string]string{{{"subnet": pn.Subnet, "gateway": pn.Gateway}}},
					// Every node's pod network through this node's gateway: the host owns every
					// bridge's address, so a pod on any node of a cluster reaches the API server
					// advertised on the first node's bridge.
					"routes":  []map[string]string{{"dst": podNetworksCIDR}},
					"dataDir": n.path("cni", "ipam"),
				},
			},
		},
	}
	data, err := json.MarshalIndent(conflist, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(n.path("cni", "net.d"), 0o755); err != nil {
		return err
	}
	return os.WriteFile(n.path("cni", "net.d", "10-e2e.conflist"), data, 0o644)
}

// teardownPodNetwork deletes the bridge; the pods' veths went with their sandboxes.
func (n *Node) teardownPodNetwork() error {
	if n.podNetwork == nil {
		return nil
	}
	if _, err := net.InterfaceByName(n.podNetwork.Bridge); err == nil {
		if err := ipCommand("link", "del", n.podNetwork.Bridge); err != nil {
			return err
		}
	}
	subnetsMu.Lock()
	defer subnetsMu.Unlock()
	var octet int
	if _, err := fmt.Sscanf(n.podNetwork.Gateway, "10.213.%d.1", &octet); err == nil {
		delete(subnetsGiven, octet)
		if err := releaseClaim("subnet", octet); err != nil {
			return err
		}
	}
	n.podNetwork = nil
	return nil
}

func ipCommand(args ...string) error {
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// PodIP is the pod network address of the running static pod podName.
func (n *Node) PodIP(podName string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	rs, err := n.RuntimeService()
	if err != nil {
		return "", err
	}
	sandboxes, err := rs.ListPodSandbox(ctx, &runtimeapi.PodSandboxFilter{
		State:         &runtimeapi.PodSandboxStateValue{State: runtimeapi.PodSandboxState_SANDBOX_READY},
		LabelSelector: map[string]string{"io.kubernetes.pod.name": podName + "-" + n.Name},
	})
	if err != nil {
		return "", err
	}
	for _, s := range sandboxes {
		status, err := rs.PodSandboxStatus(ctx, s.Id, false)
		if err != nil {
			return "", err
		}
		if ip := status.GetStatus().GetNetwork().GetIp(); ip != "" {
			return ip, nil
		}
	}
	return "", errors.New("no ready sandbox with a pod IP")
}
