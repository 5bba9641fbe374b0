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

// Package deploy holds the deployment manifests; its test checks that they decode strictly
// into the Kubernetes API types and that the shipped image-keeper config loads.
package deploy

import (
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"sigs.k8s.io/yaml"

	"github.com/kubelet-imagecache/kubelet-imagecache/pkg/keeper"
	"github.com/kubelet-imagecache/kubelet-imagecache/pkg/nodestatus"
	"github.com/kubelet-imagecache/kubelet-imagecache/pkg/pullslots"
)

func TestDaemonSetManifest(t *testing.T) {
	data, err := os.ReadFile("daemonset.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var sawConfigMap, sawDaemonSet bool
	for i, doc := range strings.Split(string(data), "\n---\n") {
		var meta struct{ Kind string }
		if err := yaml.Unmarshal([]byte(doc), &meta); err != nil {
			t.Fatalf("document %d: %v", i, err)
		}
		switch meta.Kind {
		case "Namespace":
			var ns corev1.Namespace
			if err := yaml.UnmarshalStrict([]byte(doc), &ns); err != nil {
				t.Fatalf("Namespace: %v", err)
			}
		case "ServiceAccount":
			var sa corev1.ServiceAccount
			if err := yaml.UnmarshalStrict([]byte(doc), &sa); err != nil {
				t.Fatalf("ServiceAccount: %v", err)
			}
			if i > 1 {
				t.Error("the ServiceAccount comes after the DaemonSet's other objects: it must exist before the DaemonSet's pods")
			}
		case "ConfigMap":
			var cm corev1.ConfigMap
			if err := yaml.UnmarshalStrict([]byte(doc), &cm); err != nil {
				t.Fatalf("ConfigMap: %v", err)
			}
			path := filepath.Join(t.TempDir(), "config.yaml")
			if err := os.WriteFile(path, []byte(cm.Data["config.yaml"]), 0o644); err != nil {
				t.Fatal(err)
			}
			if _, err := keeper.Load(keeper.Sources{ConfigFile: path}); err != nil {
				t.Errorf("the ConfigMap's image-keeper config does not load: %v", err)
			}
			sawConfigMap = true
		case "DaemonSet":
			var ds appsv1.DaemonSet
			if err := yaml.UnmarshalStrict([]byte(doc), &ds); err != nil {
				t.Fatalf("DaemonSet: %v", err)
			}
			spec := ds.Spec.Template.Spec
			if len(spec.Containers) != 1 || !strings.Contains(strings.Join(spec.Containers[0].Args, " "), "--runtime-endpoint=unix:///run/containerd/containerd.sock") {
				t.Errorf("DaemonSet container args: %v", spec.Containers)
			}
			if spec.ServiceAccountName != "image-keeper" {
				t.Errorf("the DaemonSet runs as service account %q; want image-keeper, which deploy/rbac.yaml binds", spec.ServiceAccountName)
			}
			nodeName := false
			for _, e := range spec.Containers[0].Env {
				nodeName = nodeName || e.Name == "NODE_NAME" && e.ValueFrom != nil && e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "spec.nodeName"
			}
			if !nodeName {
				t.Error("the DaemonSet does not give image-keeper NODE_NAME from spec.nodeName")
			}
			if spec.HostNetwork {
				t.Error("the DaemonSet uses the host network; image-keeper serves on its pod IP")
			}
			if spec.SecurityContext == nil || spec.SecurityContext.SeccompProfile == nil || spec.SecurityContext.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
				t.Error("the DaemonSet has no RuntimeDefault seccomp profile")
			}
			for _, v := range spec.Volumes {
				// A socket file mount keeps the dead inode when containerd recreates the socket.
				if v.HostPath != nil && v.HostPath.Type != nil && *v.HostPath.Type == corev1.HostPathSocket {
					t.Errorf("volume %q mounts a socket file; mount its directory", v.Name)
				}
			}
			for _, m := range spec.Containers[0].VolumeMounts {
				found := false
				for _, v := range spec.Volumes {
					found = found || v.Name == m.Name
				}
				if !found {
					t.Errorf("volume mount %q has no volume", m.Name)
				}
			}
			if ds.Spec.Selector.MatchLabels["app.kubernetes.io/name"] != ds.Spec.Template.Labels["app.kubernetes.io/name"] {
				t.Error("DaemonSet selector does not match its template's labels")
			}
			sawDaemonSet = true
		default:
			t.Errorf("document %d: unexpected kind %q", i, meta.Kind)
		}
	}
	if !sawConfigMap || !sawDaemonSet {
		t.Error("daemonset.yaml must hold a ConfigMap and a DaemonSet")
	}
}

func TestSystemdUnitFlagsExist(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("systemd", "image-keeper.service"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"NoNewPrivileges=yes", "ProtectSystem=strict", "ExecReload=/bin/kill -HUP $MAINPID", "--kubelet-config-dir=/etc/kubernetes/kubelet.conf.d", "-/etc/kubernetes/kubelet.conf.d"} {
		if !strings.Contains(string(data), want) {
			t.Errorf("image-keeper.service lacks %q", want)
		}
	}
	// Connecting to a unix socket works on a read-only path; nothing needs to be writable.
	if strings.Contains(string(data), "ReadWritePaths") {
		t.Error("image-keeper.service makes a path writable")
	}
}

// The shipped kubelet drop-in is a KubeletConfiguration that the kubelet's merge and the
// allowlist accept, and the systemd drop-in sets no allowlist flag (image-keeper cannot see
// flags).
func TestKubeletDropIn(t *testing.T) {
	base := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(base, []byte("apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	w, err := keeper.Load(keeper.Sources{KubeletConfigFile: base, KubeletConfigDir: "kubelet"})
	if err != nil {
		t.Fatalf("kubelet/50-imagecache.conf: %v", err)
	}
	if w.AllowlistOff || w.Allowlist.Empty() {
		t.Errorf("the drop-in does not turn the allowlist on: off=%v empty=%v", w.AllowlistOff, w.Allowlist.Empty())
	}
	unit, err := os.ReadFile(filepath.Join("systemd", "10-kubelet-imagecache.conf"))
	if err != nil {
		t.Fatal(err)
	}
	var settings []string
	for _, line := range strings.Split(string(unit), "\n") {
		if !strings.HasPrefix(line, "#") {
			settings = append(settings, line)
		}
	}
	if set := strings.Join(settings, "\n"); strings.Contains(set, "--image-gc-exclude") || !strings.Contains(set, "--config-dir=/etc/kubernetes/kubelet.conf.d") {
		t.Errorf("10-kubelet-imagecache.conf must pass --config-dir and no allowlist flag:\n%s", unit)
	}
}

// systemd's own audit of the unit (offline, so no systemd as PID 1 is needed): the exposure
// stays at most 2.0 (it was 3.6 before the syscall filter, ProtectProc, ProcSubset,
// PrivateMounts and UMask).
func TestSystemdUnitExposure(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze is not installed")
	}
	out, err := exec.Command(analyze, "security", "--offline=true", "--no-pager", filepath.Join("systemd", "image-keeper.service")).CombinedOutput()
	if err != nil {
		t.Fatalf("systemd-analyze security: %v\n%s", err, out)
	}
	m := regexp.MustCompile(`Overall exposure level for image-keeper.service: ([0-9.]+)`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("no exposure level in:\n%s", out)
	}
	exposure, err := strconv.ParseFloat(string(m[1]), 64)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("systemd-analyze security --offline: exposure %.1f", exposure)
	if exposure > 2.0 {
		t.Errorf("exposure %.1f; want at most 2.0:\n%s", exposure, out)
	}
}

// rbac.yaml grants what image-keeper's node status publishing needs and nothing more, to the
// service account the DaemonSet runs as (in daemonset.yaml).
func TestRBAC(t *testing.T) {
	rbac, err := os.ReadFile("rbac.yaml")
	if err != nil {
		t.Fatal(err)
	}
	daemonSet, err := os.ReadFile("daemonset.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var role rbacv1.ClusterRole
	var binding rbacv1.ClusterRoleBinding
	var sa corev1.ServiceAccount
	for i, doc := range strings.Split(string(rbac)+"\n---\n"+string(daemonSet), "\n---\n") {
		var meta struct{ Kind string }
		if err := yaml.Unmarshal([]byte(doc), &meta); err != nil {
			t.Fatalf("document %d: %v", i, err)
		}
		var into any
		switch meta.Kind {
		case "ClusterRole":
			into = &role
		case "ClusterRoleBinding":
			into = &binding
		case "ServiceAccount":
			into = &sa
		default:
			continue // daemonset.yaml's other objects
		}
		if err := yaml.UnmarshalStrict([]byte(doc), into); err != nil {
			t.Fatalf("%s: %v", meta.Kind, err)
		}
	}
	got := map[string]string{}
	for _, r := range role.Rules {
		if len(r.APIGroups) != 1 || r.APIGroups[0] != "" || len(r.ResourceNames) != 0 || len(r.NonResourceURLs) != 0 {
			t.Errorf("rule %+v reaches beyond the core group's node resources", r)
		}
		for _, res := range r.Resources {
			got[res] = strings.Join(r.Verbs, ",")
		}
	}
	if want := map[string]string{"nodes": "get,patch", "nodes/status": "patch"}; !reflect.DeepEqual(got, want) {
		t.Errorf("ClusterRole grants %v; want exactly %v", got, want)
	}
	// The pull slots: Leases, in image-keeper's namespace only, no delete.
	var slotRole rbacv1.Role
	var slotBinding rbacv1.RoleBinding
	for _, doc := range strings.Split(string(rbac), "\n---\n") {
		switch {
		case strings.Contains(doc, "\nkind: Role\n"):
			if err := yaml.UnmarshalStrict([]byte(doc), &slotRole); err != nil {
				t.Fatal(err)
			}
		case strings.Contains(doc, "\nkind: RoleBinding\n"):
			if err := yaml.UnmarshalStrict([]byte(doc), &slotBinding); err != nil {
				t.Fatal(err)
			}
		}
	}
	if slotRole.Namespace != "image-keeper" || len(slotRole.Rules) != 1 || fmt.Sprint(slotRole.Rules[0].APIGroups, slotRole.Rules[0].Resources, slotRole.Rules[0].Verbs) != "[coordination.k8s.io] [leases] [get list create update]" {
		t.Errorf("the pull slots' Role %+v; want get, list, create, update of leases in image-keeper", slotRole)
	}
	if slotBinding.Namespace != "image-keeper" || slotBinding.RoleRef.Name != slotRole.Name || len(slotBinding.Subjects) != 1 || slotBinding.Subjects[0].Name != sa.Name || slotBinding.Subjects[0].Namespace != sa.Namespace {
		t.Errorf("the pull slots' RoleBinding %+v does not bind the Role to image-keeper/image-keeper", slotBinding)
	}
	if binding.RoleRef.Name != role.Name || len(binding.Subjects) != 1 || binding.Subjects[0].Kind != "ServiceAccount" ||
		binding.Subjects[0].Name != sa.Name || binding.Subjects[0].Namespace != sa.Namespace || sa.Namespace != "image-keeper" || sa.Name != "image-keeper" {
		t.Errorf("the binding %+v does not bind the ClusterRole to image-keeper/image-keeper (%s/%s)", binding, sa.Namespace, sa.Name)
	}
}

// admission.yaml decodes strictly, matches image-keeper's service account (the binding's
// subject in rbac.yaml) and names the keys image-keeper's publisher writes; the API server runs
// its rules (TestKeeperAdmissionPolicy in test/e2e).
func TestAdmissionPolicy(t *testing.T) {
	data, err := os.ReadFile("admission.yaml")
	if err != nil {
		t.Fatal(err)
	}
	policies := map[string]admissionregistrationv1.ValidatingAdmissionPolicy{}
	bindings := map[string]admissionregistrationv1.ValidatingAdmissionPolicyBinding{}
	for i, doc := range strings.Split(string(data), "\n---\n") {
		var meta struct{ Kind string }
		if err := yaml.Unmarshal([]byte(doc), &meta); err != nil {
			t.Fatalf("document %d: %v", i, err)
		}
		switch meta.Kind {
		case "ValidatingAdmissionPolicy":
			var p admissionregistrationv1.ValidatingAdmissionPolicy
			if err := yaml.UnmarshalStrict([]byte(doc), &p); err != nil {
				t.Fatalf("%s: %v", meta.Kind, err)
			}
			policies[p.Name] = p
		case "ValidatingAdmissionPolicyBinding":
			var b admissionregistrationv1.ValidatingAdmissionPolicyBinding
			if err := yaml.UnmarshalStrict([]byte(doc), &b); err != nil {
				t.Fatalf("%s: %v", meta.Kind, err)
			}
			bindings[b.Spec.PolicyName] = b
		default:
			t.Errorf("document %d: a %s in admission.yaml", i, meta.Kind)
		}
	}
	if len(policies) != 2 {
		t.Fatalf("policies %v; want image-keeper-own-node and image-keeper-pull-slots", slices.Collect(maps.Keys(policies)))
	}
	for name, policy := range policies {
		binding := bindings[name]
		if len(binding.Spec.ValidationActions) != 1 || binding.Spec.ValidationActions[0] != admissionregistrationv1.Deny {
			t.Errorf("%s: binding %+v does not deny by the policy", name, binding.Spec)
		}
		if policy.Spec.FailurePolicy == nil || *policy.Spec.FailurePolicy != admissionregistrationv1.Fail {
			t.Errorf("%s must fail closed: an error in a rule refuses the change", name)
		}
		if len(policy.Spec.MatchConditions) != 1 || !strings.Contains(policy.Spec.MatchConditions[0].Expression, `"system:serviceaccount:image-keeper:image-keeper"`) {
			t.Errorf("%s: match conditions %+v: want image-keeper's service account", name, policy.Spec.MatchConditions)
		}
	}
	slots := policies["image-keeper-pull-slots"]
	var slotRules strings.Builder
	for _, v := range slots.Spec.Validations {
		slotRules.WriteString(v.Expression)
	}
	if !strings.Contains(slotRules.String(), "'^"+pullslots.Prefix+"-(0|[1-9][0-9]{0,2})$'") || pullslots.MaxCount != 1000 {
		t.Errorf("image-keeper-pull-slots does not hold image-keeper to its Leases, %s-N", pullslots.Prefix)
	}
	policy := policies["image-keeper-own-node"]
	// Every field of a Node's metadata that a token could use against it, and every field of
	// its spec and status, is either image-keeper's or checked unchanged: a field a new
	// Kubernetes adds fails here until the policy names it.
	var rules strings.Builder
	for _, v := range policy.Spec.Validations {
		rules.WriteString(v.Expression)
	}
	for _, typ := range []reflect.Type{reflect.TypeFor[corev1.NodeSpec](), reflect.TypeFor[corev1.NodeStatus]()} {
		for f := range typ.Fields() {
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if !strings.Contains(rules.String(), "."+name) && !strings.Contains(rules.String(), "?"+name) {
				t.Errorf("admission.yaml does not check %s.%s", typ.Name(), name)
			}
		}
	}
	for _, name := range []string{"labels", "annotations", "ownerReferences", "finalizers"} {
		if !strings.Contains(rules.String(), "metadata.?"+name) {
			t.Errorf("admission.yaml does not check metadata.%s", name)
		}
	}
	vars := map[string]string{}
	for _, v := range policy.Spec.Variables {
		vars[v.Name] = v.Expression
	}
	for name, want := range map[string]string{"startupTaint": nodestatus.StartupTaintKey, "condition": string(nodestatus.ConditionType), "annotation": nodestatus.WantedHashAnnotation} {
		if vars[name] != "'"+want+"'" {
			t.Errorf("variable %s = %s; want '%s', what image-keeper writes", name, vars[name], want)
		}
	}
}

// networkpolicy.yaml selects the DaemonSet's pods and lets in the port of the probes and metrics
// only; the DaemonSet serves /status on loopback, tolerates its own startup taint and nothing
// wider (the DaemonSet controller adds node.kubernetes.io/ tolerations).
func TestNetworkExposure(t *testing.T) {
	data, err := os.ReadFile("networkpolicy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var np networkingv1.NetworkPolicy
	if err := yaml.UnmarshalStrict(data, &np); err != nil {
		t.Fatal(err)
	}
	ds := daemonSet(t)
	if !reflect.DeepEqual(np.Spec.PodSelector.MatchLabels, ds.Spec.Template.Labels) || np.Namespace != ds.Namespace {
		t.Errorf("the policy selects %v in %s; the DaemonSet's pods are %v in %s", np.Spec.PodSelector.MatchLabels, np.Namespace, ds.Spec.Template.Labels, ds.Namespace)
	}
	if len(np.Spec.Ingress) != 1 || len(np.Spec.Ingress[0].Ports) != 1 || np.Spec.Ingress[0].Ports[0].Port.IntValue() != 10356 {
		t.Errorf("ingress %+v: want TCP 10356 only", np.Spec.Ingress)
	}
	c := ds.Spec.Template.Spec.Containers[0]
	if !slices.Contains(c.Args, "--listen=:10356") || !slices.Contains(c.Args, "--status-listen=127.0.0.1:10357") {
		t.Errorf("args %v: want probes and metrics on :10356, /status on loopback", c.Args)
	}
	for _, tol := range ds.Spec.Template.Spec.Tolerations {
		if tol.Key != nodestatus.StartupTaintKey {
			t.Errorf("toleration %+v: the DaemonSet tolerates its own startup taint only", tol)
		}
	}
}

// The warm-node drop-in registers the node with the taint image-keeper removes.
func TestWarmNodeDropIn(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("kubelet", "60-imagecache-warm.conf"))
	if err != nil {
		t.Fatal(err)
	}
	var kc struct {
		APIVersion         string         `json:"apiVersion"`
		Kind               string         `json:"kind"`
		RegisterWithTaints []corev1.Taint `json:"registerWithTaints"`
	}
	if err := yaml.UnmarshalStrict(data, &kc); err != nil {
		t.Fatal(err)
	}
	if kc.APIVersion != "kubelet.config.k8s.io/v1beta1" || kc.Kind != "KubeletConfiguration" || len(kc.RegisterWithTaints) != 1 ||
		kc.RegisterWithTaints[0].Key != nodestatus.StartupTaintKey || kc.RegisterWithTaints[0].Effect != corev1.TaintEffectNoSchedule {
		t.Errorf("60-imagecache-warm.conf = %+v; want registerWithTaints [%s:NoSchedule]", kc, nodestatus.StartupTaintKey)
	}
}

// daemonSet is daemonset.yaml's DaemonSet.
func daemonSet(t *testing.T) *appsv1.DaemonSet {
	t.Helper()
	data, err := os.ReadFile("daemonset.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, doc := range strings.Split(string(data), "\n---\n") {
		if !strings.Contains(doc, "\nkind: DaemonSet\n") {
			continue
		}
		var ds appsv1.DaemonSet
		if err := yaml.UnmarshalStrict([]byte(doc), &ds); err != nil {
			t.Fatal(err)
		}
		return &ds
	}
	t.Fatal("daemonset.yaml has no DaemonSet")
	return nil
}
