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
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// ControlPlane is a throwaway Kubernetes control plane: etcd, kube-apiserver,
// kube-controller-manager and kube-scheduler of the same release as the patched kubelet (built
// by `make control-plane` from the assembled tree), with a certificate authority made for the
// run, each a process of its own under Root, stopped by its PID.
type ControlPlane struct {
	Root, Bin, LogDir string
	// Address is the host address every component listens on. The API server must be reachable
	// from pods (image-keeper patches its Node), so it is the node's pod network gateway: an
	// address of a host-only bridge, not of any interface that leaves the machine.
	Address string
	// Server is the API server's URL.
	Server string
	// AdminKubeconfig is a kubeconfig of a system:masters user.
	AdminKubeconfig string

	Etcd, APIServer, ControllerManager, Scheduler *Process

	pki *pki
}

// StartControlPlane starts etcd, the API server, the controller manager and the scheduler, on
// address, and waits for the API server to be ready.
func StartControlPlane(root, bin, address string) (*ControlPlane, error) {
	cp := &ControlPlane{Root: root, Bin: bin, LogDir: filepath.Join(root, "logs"), Address: address}
	for _, c := range []string{"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler"} {
		if _, err := os.Stat(filepath.Join(bin, c)); err != nil {
			return nil, fmt.Errorf("%s is not built (%v); run make control-plane", c, err)
		}
	}
	if err := os.MkdirAll(cp.LogDir, 0o755); err != nil {
		return nil, err
	}
	var err error
	if cp.pki, err = newPKI(filepath.Join(root, "pki")); err != nil {
		return nil, err
	}
	ports, err := freePorts(4)
	if err != nil {
		return nil, err
	}
	etcdClient, etcdPeer, apiPort, kcmPort := ports[0], ports[1], ports[2], ports[3]
	cp.Server = "https://" + net.JoinHostPort(address, strconv.Itoa(apiPort))

	// etcd: plain HTTP on loopback, one member.
	etcdURL := fmt.Sprintf("http://127.0.0.1:%d", etcdClient)
	peerURL := fmt.Sprintf("http://127.0.0.1:%d", etcdPeer)
	if cp.Etcd, err = Start(cp.LogDir, "etcd", []string{filepath.Join(bin, "etcd"),
		"--name", "e2e", "--data-dir", filepath.Join(root, "etcd"),
		"--listen-client-urls", etcdURL, "--advertise-client-urls", etcdURL,
		"--listen-peer-urls", peerURL, "--initial-advertise-peer-urls", peerURL,
		"--initial-cluster", "e2e=" + peerURL,
		"--unsafe-no-fsync", // a throwaway cluster: durability is not wanted, speed is
	}); err != nil {
		return nil, err
	}

	ip := net.ParseIP(address)
	serving, servingKey, err := cp.pki.issue("apiserver", "kube-apiserver", nil, []net.IP{ip, net.ParseIP("127.0.0.1"), net.ParseIP("10.96.0.1")},
		[]string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"})
	if err != nil {
		return nil, err
	}
	kubeletClient, kubeletClientKey, err := cp.pki.issue("apiserver-kubelet-client", "kube-apiserver-kubelet-client", []string{"kubeadm:cluster-admins"}, nil, nil)
	if err != nil {
		return nil, err
	}
	saKey, err := cp.pki.serviceAccountKey()
	if err != nil {
		return nil, err
	}
	if cp.APIServer, err = Start(cp.LogDir, "kube-apiserver", []string{filepath.Join(bin, "kube-apiserver"),
		"--etcd-servers", etcdURL,
		"--bind-address", address, "--advertise-address", address, "--secure-port", strconv.Itoa(apiPort),
		"--cert-dir", filepath.Join(root, "apiserver"),
		"--tls-cert-file", serving, "--tls-private-key-file", servingKey,
		"--client-ca-file", cp.pki.CAFile(),
		"--kubelet-client-certificate", kubeletClient, "--kubelet-client-key", kubeletClientKey,
		"--service-account-key-file", saKey, "--service-account-signing-key-file", saKey,
		"--service-account-issuer", "https://kubernetes.default.svc.cluster.local",
		"--service-cluster-ip-range", "10.96.0.0/24",
		"--authorization-mode", "Node,RBAC",
		"--enable-admission-plugins", "NodeRestriction",
		"--allow-privileged=true",
		"--profiling=false",
		"-v=2",
	}); err != nil {
		return nil, errors.Join(err, cp.Stop())
	}

	write := func(name, cn string, orgs []string) (string, error) {
		cert, key, err := cp.pki.issue(name, cn, orgs, nil, nil)
		if err != nil {
			return "", err
		}
		path := filepath.Join(root, name+".kubeconfig")
		return path, cp.pki.kubeconfig(path, cp.Server, cn, cert, key)
	}
	if cp.AdminKubeconfig, err = write("admin", "kubernetes-admin", []string{"system:masters"}); err != nil {
		return nil, errors.Join(err, cp.Stop())
	}
	if err := cp.waitReady(90 * time.Second); err != nil {
		return nil, errors.Join(err, cp.Stop())
	}

	kcm, err := write("controller-manager", "system:kube-controller-manager", nil)
	if err != nil {
		return nil, errors.Join(err, cp.Stop())
	}
	if cp.ControllerManager, err = Start(cp.LogDir, "kube-controller-manager", []string{filepath.Join(bin, "kube-controller-manager"),
		"--kubeconfig", kcm, "--authentication-kubeconfig", kcm, "--authorization-kubeconfig", kcm,
		"--bind-address", "127.0.0.1", "--secure-port", strconv.Itoa(kcmPort),
		"--cert-dir", filepath.Join(root, "controller-manager"),
		"--leader-elect=false",
		"--use-service-account-credentials",
		"--service-account-private-key-file", saKey,
		"--root-ca-file", cp.pki.CAFile(),
		"--cluster-signing-cert-file", cp.pki.CAFile(), "--cluster-signing-key-file", filepath.Join(cp.pki.dir, "ca.key"),
		// No pod CIDRs to allocate: the node's CNI config has its subnet.
		"--controllers", "*,-node-ipam-controller",
		"-v=2",
	}); err != nil {
		return nil, errors.Join(err, cp.Stop())
	}
	sched, err := write("scheduler", "system:kube-scheduler", nil)
	if err != nil {
		return nil, errors.Join(err, cp.Stop())
	}
	schedPort, err := FreePort()
	if err != nil {
		return nil, errors.Join(err, cp.Stop())
	}
	if cp.Scheduler, err = Start(cp.LogDir, "kube-scheduler", []string{filepath.Join(bin, "kube-scheduler"),
		"--kubeconfig", sched, "--authentication-kubeconfig", sched, "--authorization-kubeconfig", sched,
		"--bind-address", "127.0.0.1", "--secure-port", strconv.Itoa(schedPort),
		"--cert-dir", filepath.Join(root, "scheduler"),
		"--leader-elect=false",
		"-v=2",
	}); err != nil {
		return nil, errors.Join(err, cp.Stop())
	}
	return cp, nil
}

// NodeKubeconfig writes the kubeconfig of a node's kubelet: a client certificate of
// system:node:<name> in system:nodes, which the Node authorizer and NodeRestriction admit for
// that node only, as kubeadm's bootstrap would leave it.
func (cp *ControlPlane) NodeKubeconfig(nodeName string) (string, error) {
	cn := "system:node:" + nodeName
	cert, key, err := cp.pki.issue("kubelet-"+nodeName, cn, []string{"system:nodes"}, nil, nil)
	if err != nil {
		return "", err
	}
	path := filepath.Join(cp.Root, "kubelet-"+nodeName+".kubeconfig")
	return path, cp.pki.kubeconfig(path, cp.Server, cn, cert, key)
}

// UserKubeconfig writes a kubeconfig of a user with a client certificate (common name user,
// organizations groups): who the user may be is for RBAC to say.
func (cp *ControlPlane) UserKubeconfig(user string, groups []string) (string, error) {
	cert, key, err := cp.pki.issue("user-"+user, user, groups, nil, nil)
	if err != nil {
		return "", err
	}
	path := filepath.Join(cp.Root, "user-"+user+".kubeconfig")
	return path, cp.pki.kubeconfig(path, cp.Server, user, cert, key)
}

// CAFile is the cluster CA's certificate.
func (cp *ControlPlane) CAFile() string { return cp.pki.CAFile() }

// waitReady polls the API server's /readyz with the admin's certificate.
func (cp *ControlPlane) waitReady(timeout time.Duration) error {
	cert, err := tls.LoadX509KeyPair(filepath.Join(cp.pki.dir, "admin.crt"), filepath.Join(cp.pki.dir, "admin.key"))
	if err != nil {
		return err
	}
	pool := x509.NewCertPool()
	pool.AddCert(cp.pki.caCert)
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cert}}}}
	var last string
	if Eventually(timeout, 500*time.Millisecond, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, cp.Server+"/readyz", nil)
		resp, err := client.Do(req)
		if err != nil {
			last = err.Error()
			return false
		}
		resp.Body.Close()
		last = resp.Status
		return resp.StatusCode == http.StatusOK
	}) {
		return nil
	}
	return fmt.Errorf("kube-apiserver at %s not ready after %v (%s); log: %s", cp.Server, timeout, last, Tail(cp.APIServer, 20))
}

// Stop stops every component, by PID, newest first.
func (cp *ControlPlane) Stop() error {
	for _, p := range []*Process{cp.Scheduler, cp.ControllerManager, cp.APIServer, cp.Etcd} {
		if p != nil {
			p.Stop(10 * time.Second)
		}
	}
	return nil
}

func freePorts(n int) ([]int, error) {
	seen := map[int]bool{}
	var ports []int
	for len(ports) < n {
		p, err := FreePort()
		if err != nil {
			return nil, err
		}
		if !seen[p] {
			seen[p] = true
			ports = append(ports, p)
		}
	}
	return ports, nil
}
