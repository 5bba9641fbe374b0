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

// image-keeper keeps a node's cached images present: it pulls wanted images that are missing
// from the container runtime, and never deletes anything.
//
//	image-keeper [flags]          run the reconcile loop (or one pass with --once)
//	image-keeper status [flags]   print the wanted images as a table
//	image-keeper explain [flags]  what the kubelet's image GC decides for each image, and why
//	image-keeper holder-manifest  the image-volume holder (a DaemonSet or a static pod) for the list
//	image-keeper hold             the holder container's process
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/pflag"
	"golang.org/x/sync/errgroup"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/klog/v2"

	"github.com/kubelet-imagecache/kubelet-imagecache/pkg/configwatch"
	"github.com/kubelet-imagecache/kubelet-imagecache/pkg/credentialplugin"
	"github.com/kubelet-imagecache/kubelet-imagecache/pkg/dockerconfig"
	"github.com/kubelet-imagecache/kubelet-imagecache/pkg/holder"
	"github.com/kubelet-imagecache/kubelet-imagecache/pkg/keeper"
	"github.com/kubelet-imagecache/kubelet-imagecache/pkg/nodestatus"
	"github.com/kubelet-imagecache/kubelet-imagecache/pkg/pullslots"
)

// config is everything the flags say.
type config struct {
	sources          keeper.Sources
	options          keeper.Options
	runtimeEndpoint  string
	listen           string
	once             bool
	dockerConfigPath string
	providerConfig   string        // the kubelet's --image-credential-provider-config
	providerBinDir   string        // the kubelet's --image-credential-provider-bin-dir
	server           string        // status: ask a running daemon instead of the runtime
	timeout          time.Duration // status: bound on the whole answer
	kubeconfig       string        // the API server to publish the node's cache state on
	nodeName         string
	heartbeat        time.Duration
	holderDir        string // the kubelet's staticPodPath, for the holder static pod
	holderImage      string
	holderNamespace  string // the holder DaemonSet's namespace, to read what its pods hold
	statusListen     string // loopback address of /status (as well as the probes)
	stateDir         string // where the last good config is kept
	// The cluster's pull slots: how many, the namespace of their Leases, the Leases' duration.
	pullSlots         int
	pullSlotNamespace string
	pullSlotLease     time.Duration
	// The readiness conventions: the condition's type, the startup taint's key and mode.
	conditionType string
	taintKey      string
	taintMode     string
}

// Floors of the duration flags: below them the loop would spin or never finish a pull.
const (
	minInterval    = time.Second
	minMaxBackoff  = time.Second
	minPullTimeout = 10 * time.Second
)

// defaultPullSlots is --pull-slots' default: with --pull-concurrency 2, at most 20 pulls of
// image-keeper's in flight against the registries of a whole cluster, what one registry
// replica (distribution, Harbor) serves without queueing, while a cluster of up to 10 nodes
// never waits for a slot. A fleet that warms faster from a pull-through or peer-to-peer mirror
// raises it (docs/image-keeper.md, "Many nodes").
const defaultPullSlots = 10

// The bounds of --pull-slot-lease-duration: renewed every third of it, a shorter one would be
// lost to one slow API request; a longer one keeps a dead node's slot for too long.
const (
	minPullSlotLease = 5 * time.Second
	maxPullSlotLease = 10 * time.Minute
)

// defaultNamespace is the pod's namespace (POD_NAMESPACE from the downward API), else
// image-keeper's usual one.
func defaultNamespace() string {
	if ns := os.Getenv("POD_NAMESPACE"); ns != "" {
		return ns
	}
	return "image-keeper"
}

// kubeletConditions are the node conditions the kubelet owns: image-keeper publishing one would
// fight it.
var kubeletConditions = []string{"Ready", "MemoryPressure", "DiskPressure", "PIDPressure", "NetworkUnavailable"}

// maxPullConcurrency caps --pull-concurrency: each pull holds a worker, a CRI call and a
// registry connection, and a node has no use for more at once than a registry serves one
// client (the kubelet itself pulls one at a time by default, serializeImagePulls).
const maxPullConcurrency = 32

// hupSignals receives SIGHUP from package initialization on, before flags and config files are
// read: a reload sent right after start (systemctl reload) must not kill the process, which is
// what SIGHUP does until a handler is installed.
var hupSignals = func() chan os.Signal {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGHUP)
	return ch
}()

func main() {
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case "explain":
			os.Exit(explainMain(os.Args[2:], os.Stdin, os.Stdout, os.Stderr))
		case "holder-manifest":
			os.Exit(holderManifestMain(os.Args[2:], os.Stdout, os.Stderr))
		case "hold":
			os.Exit(holdMain(os.Args[2:], os.Stderr))
		}
	}
	status := len(os.Args) > 1 && os.Args[1] == "status"
	args := os.Args[1:]
	if status {
		args = args[1:]
	}
	cfg, err := parseFlags(args, status)
	if err != nil {
		fmt.Fprintf(os.Stderr, "image-keeper: %v\n", err)
		os.Exit(2)
	}
	if err := serve(cfg, status); err != nil {
		fmt.Fprintf(os.Stderr, "image-keeper: %v\n", err)
		os.Exit(1)
	}
}

// serve runs image-keeper, or its status command, until SIGTERM or an interrupt.
func serve(cfg *config, status bool) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if status {
		return runStatus(ctx, cfg)
	}
	return run(ctx, cfg)
}

func parseFlags(args []string, status bool) (*config, error) {
	cfg := &config{options: keeper.DefaultOptions()}
	name := "image-keeper"
	if status {
		name += " status"
	}
	fs := pflag.NewFlagSet(name, pflag.ContinueOnError)
	fs.StringVar(&cfg.runtimeEndpoint, "runtime-endpoint", "unix:///run/containerd/containerd.sock", "CRI endpoint of the container runtime.")
	fs.StringVar(&cfg.sources.ConfigFile, "config", "", "Config file (kind: ImageKeeperConfiguration) listing images to keep. Reloaded on SIGHUP and when it changes.")
	fs.StringArrayVar(&cfg.sources.Images, "image", nil, "An image to keep, with a tag or a digest. Repeatable.")
	fs.StringVar(&cfg.sources.KubeletConfigFile, "kubelet-config", "", "The kubelet's config file: tags and digests in its imageGCExclude are kept too, and its allowlist decides which wanted images are protected from the kubelet's garbage collection.")
	fs.StringVar(&cfg.sources.KubeletConfigDir, "kubelet-config-dir", "", "The kubelet's --config-dir: its *.conf drop-ins are merged onto --kubelet-config as the kubelet merges them (lexical order, JSON merge patch).")
	if status {
		fs.StringVar(&cfg.server, "server", "", "Ask a running image-keeper at this URL (e.g. http://127.0.0.1:10356) instead of the runtime.")
		fs.DurationVar(&cfg.timeout, "timeout", 30*time.Second, "Give up after this long. The exit status is non-zero when image-keeper is not ready.")
	} else {
		fs.DurationVar(&cfg.options.Interval, "interval", cfg.options.Interval, "Time between reconcile passes.")
		fs.IntVar(&cfg.options.PullConcurrency, "pull-concurrency", cfg.options.PullConcurrency, "Most pulls in flight at once.")
		fs.DurationVar(&cfg.options.PullTimeout, "pull-timeout", cfg.options.PullTimeout, "Longest one pull may take.")
		fs.DurationVar(&cfg.options.BackoffMax, "max-backoff", cfg.options.BackoffMax, "Longest wait before retrying a failed pull.")
		fs.DurationVar(&cfg.options.UnhealthyAfter, "runtime-unreachable-timeout", cfg.options.UnhealthyAfter, "/healthz fails once the container runtime has been unreachable this long, so that a wedged pod is restarted; 0 never fails. An unreachable registry never does.")
		fs.StringVar(&cfg.listen, "listen", "127.0.0.1:10356", "Address of /healthz, /readyz and /metrics, and of /status when it is a loopback address; empty to serve none.")
		fs.StringVar(&cfg.statusListen, "status-listen", "", "A loopback address of /status too (and the probes), for when --listen is not loopback, as in a pod: /status names the wanted images, the kubelet's allowlist and runtime errors, so it is never served beyond the host or pod.")
		fs.BoolVar(&cfg.once, "once", false, "Reconcile once, print the status table and exit; non-zero if a wanted image is still missing.")
		fs.StringVar(&cfg.providerConfig, "image-credential-provider-config", "", "The kubelet's CredentialProviderConfig file: its exec plugins give registry logins (ECR, GCR, ACR, ...) as they do to the kubelet. Tried after --docker-config.")
		fs.StringVar(&cfg.providerBinDir, "image-credential-provider-bin-dir", "", "The directory of the credential provider plugin binaries, as on the kubelet.")
		fs.StringVar(&cfg.kubeconfig, "kubeconfig", "", "A kubeconfig of the API server on which to publish the node's image cache state (condition ImageCacheReady, removal of the startup taint "+nodestatus.StartupTaintKey+", annotation "+nodestatus.WantedHashAnnotation+"). In a pod with a service account token, the in-cluster config is used without it; with neither, nothing is published.")
		fs.StringVar(&cfg.nodeName, "node-name", os.Getenv("NODE_NAME"), "This node's name, as the kubelet registered it (default $NODE_NAME, from the downward API).")
		fs.DurationVar(&cfg.heartbeat, "node-status-heartbeat", time.Minute, "How often the condition is published when nothing changed.")
		fs.StringVar(&cfg.conditionType, "node-condition-type", string(nodestatus.ConditionType), "The type of the node condition image-keeper publishes. deploy/admission.yaml names it (variable condition): change both together; the condition of the old type is left on the Node.")
		fs.StringVar(&cfg.taintKey, "startup-taint-key", nodestatus.StartupTaintKey, "The key of the node's startup taint (NoSchedule), for --startup-taint-mode. Register the node with it (kubelet --register-with-taints). deploy/admission.yaml names it (variable startupTaint): change both together.")
		fs.StringVar(&cfg.taintMode, "startup-taint-mode", string(nodestatus.TaintRemoveOnce), "What image-keeper does with the startup taint: remove-once (removed the first time every wanted image is present, never added back), none (left to another controller, such as node-readiness-controller, that reads the condition), rearm (removed while the cache is warm, added back as NoSchedule while a wanted image is missing; running pods stay).")
		fs.IntVar(&cfg.pullSlots, "pull-slots", defaultPullSlots, "With an API server: pull only while holding one of this many coordination.k8s.io Leases shared by every node, so that at most this many nodes pull from registries at once when a new image list reaches them all (each with --pull-concurrency pulls). 0 for no slots.")
		fs.StringVar(&cfg.pullSlotNamespace, "pull-slot-namespace", defaultNamespace(), "The namespace of the pull slots' Leases (default $POD_NAMESPACE, from the downward API, else image-keeper).")
		fs.DurationVar(&cfg.pullSlotLease, "pull-slot-lease-duration", 30*time.Second, "How long a pull slot stays taken after its holder stops renewing it (it died): the longest other nodes wait for a dead node's slot.")
		fs.StringVar(&cfg.holderDir, "holder-static-pod-dir", "", "Holder mode without an API server: keep a static pod that mounts every wanted image as an image volume in this directory (the kubelet's staticPodPath), so that a kubelet without imageGCExclude never collects them. Replaced make-before-break when the list changes.")
		fs.StringVar(&cfg.holderImage, "holder-image", "", "The holder container's image (image-keeper's own, make image); required with --holder-static-pod-dir.")
		fs.StringVar(&cfg.stateDir, "state-dir", "", "A directory image-keeper keeps a copy of the last config that loaded in ("+keeper.LastGoodFile+", 0600). When --config does not load at start, image-keeper starts from that copy, reports the config as stale (/readyz, image_keeper_config_stale, ImageCacheReady=False reason ConfigInvalid) and loads --config again when it changes; without a copy it refuses to start.")
		fs.StringVar(&cfg.holderNamespace, "holder-daemonset-namespace", "", "Holder mode in a cluster: the namespace of the holder DaemonSet (image-keeper holder-manifest) that mounts the wanted images on this node. image-keeper reads from the runtime which images its running pods mount, reports them as held, and calls the node warm only once every wanted image is held. Use a namespace only cluster administrators write, such as kube-system.")
		fs.StringVar(&cfg.dockerConfigPath, "docker-config", "", "Registry credentials, in docker config.json form (\"auths\"), matched to images like the kubelet's keyring and read again when the file changes. Never logged.")
	}
	klogFlags := goflagSet()
	fs.AddGoFlagSet(klogFlags)
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q; images are given with --image", fs.Args())
	}
	for _, f := range []struct {
		flag       string
		value, min time.Duration
	}{
		{"--interval", cfg.options.Interval, minInterval},
		{"--max-backoff", cfg.options.BackoffMax, minMaxBackoff},
		{"--pull-timeout", cfg.options.PullTimeout, minPullTimeout},
	} {
		if f.value < f.min {
			return nil, fmt.Errorf("%s %v: must be at least %v", f.flag, f.value, f.min)
		}
	}
	if !status && cfg.heartbeat < 10*time.Second {
		return nil, fmt.Errorf("--node-status-heartbeat %v: must be at least 10s", cfg.heartbeat)
	}
	if !status {
		if n := cfg.pullSlots; n < 0 || n > pullslots.MaxCount {
			return nil, fmt.Errorf("--pull-slots %d: must be between 0 (no slots) and %d", n, pullslots.MaxCount)
		}
		if errs := validation.IsDNS1123Label(cfg.pullSlotNamespace); cfg.pullSlots > 0 && len(errs) > 0 {
			return nil, fmt.Errorf("--pull-slot-namespace %q: not a namespace name: %s", cfg.pullSlotNamespace, strings.Join(errs, "; "))
		}
		if errs := validation.IsQualifiedName(cfg.conditionType); len(errs) > 0 {
			return nil, fmt.Errorf("--node-condition-type %q: not a condition type: %s", cfg.conditionType, strings.Join(errs, "; "))
		}
		if slices.Contains(kubeletConditions, cfg.conditionType) {
			return nil, fmt.Errorf("--node-condition-type %q: the kubelet owns that condition; choose a type of image-keeper's own, such as %s", cfg.conditionType, nodestatus.ConditionType)
		}
		if errs := validation.IsQualifiedName(cfg.taintKey); len(errs) > 0 {
			return nil, fmt.Errorf("--startup-taint-key %q: not a taint key: %s", cfg.taintKey, strings.Join(errs, "; "))
		}
		if !slices.Contains(nodestatus.TaintModes, nodestatus.TaintMode(cfg.taintMode)) {
			return nil, fmt.Errorf("--startup-taint-mode %q: want one of %v", cfg.taintMode, nodestatus.TaintModes)
		}
		if d := cfg.pullSlotLease; d < minPullSlotLease || d > maxPullSlotLease {
			return nil, fmt.Errorf("--pull-slot-lease-duration %v: must be between %v and %v", d, minPullSlotLease, maxPullSlotLease)
		}
	}
	if c := cfg.options.PullConcurrency; c < 1 || c > maxPullConcurrency {
		return nil, fmt.Errorf("--pull-concurrency %d: must be between 1 and %d", c, maxPullConcurrency)
	}
	if (cfg.holderDir == "") != (cfg.holderImage == "") {
		return nil, errors.New("--holder-static-pod-dir and --holder-image go together: the holder static pod runs image-keeper's image")
	}
	if cfg.holderDir != "" && cfg.once {
		return nil, errors.New("--holder-static-pod-dir keeps a static pod current while image-keeper runs; it does nothing with --once")
	}
	if cfg.statusListen != "" && !loopback(cfg.statusListen) {
		return nil, fmt.Errorf("--status-listen %q: not a loopback address; /status is served on loopback only (for example 127.0.0.1:10357)", cfg.statusListen)
	}
	if cfg.holderNamespace != "" {
		if errs := validation.IsDNS1123Label(cfg.holderNamespace); len(errs) > 0 {
			return nil, fmt.Errorf("--holder-daemonset-namespace %q: not a namespace name: %s", cfg.holderNamespace, strings.Join(errs, "; "))
		}
		if cfg.holderDir != "" {
			return nil, errors.New("--holder-daemonset-namespace and --holder-static-pod-dir: choose one; a node's images are held by the DaemonSet's pod or by the static pod, not both")
		}
		if cfg.once {
			return nil, errors.New("--holder-daemonset-namespace follows the holder's pods while image-keeper runs; it does nothing with --once")
		}
	}
	cfg.sources.Holder = cfg.holderDir != "" || cfg.holderNamespace != ""
	if status && cfg.timeout <= 0 {
		return nil, fmt.Errorf("--timeout %v: must be positive", cfg.timeout)
	}
	var creds keeper.CredentialChain
	if cfg.dockerConfigPath != "" {
		file, err := dockerconfig.Open(cfg.dockerConfigPath)
		if err != nil {
			return nil, err
		}
		creds = append(creds, file)
	}
	if (cfg.providerConfig == "") != (cfg.providerBinDir == "") {
		return nil, errors.New("--image-credential-provider-config and --image-credential-provider-bin-dir go together, as on the kubelet")
	}
	if cfg.providerConfig != "" {
		plugins, err := credentialplugin.Load(cfg.providerConfig, cfg.providerBinDir)
		if err != nil {
			return nil, err
		}
		creds = append(creds, plugins)
	}
	if len(creds) > 0 {
		cfg.options.Credentials = creds
	}
	return cfg, nil
}

// loopback reports whether addr (host:port) listens on loopback only: an IP of 127.0.0.0/8 or
// ::1, or "localhost". An empty host (":10356") is every address.
func loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// connector gives the keeper the process's one runtime client: its calls fail while the runtime
// is down, and gRPC reconnects by itself, so no connection is made per retry.
func connector(svc *keeper.RuntimeImageService) func(context.Context) (keeper.ImageService, error) {
	return func(context.Context) (keeper.ImageService, error) { return svc, nil }
}

func run(ctx context.Context, cfg *config) error {
	logger := klog.FromContext(ctx)
	var lastGood *keeper.LastGood
	if cfg.stateDir != "" {
		if err := os.MkdirAll(cfg.stateDir, 0o700); err != nil {
			return fmt.Errorf("--state-dir: %w", err)
		}
		lastGood = &keeper.LastGood{Dir: cfg.stateDir}
	}
	wanted, stale, err := keeper.LoadLastGood(cfg.sources, lastGood)
	if err != nil {
		return err
	}
	if stale == nil {
		if err := lastGood.Save(wanted.ConfigData); err != nil {
			logger.Error(err, "Could not keep a copy of the config; a config broken while image-keeper is down will stop it")
		}
	}
	if wanted.KubeletConfigMissing != "" {
		logger.Info("Warning: the kubelet config is not there yet; reading it when it appears", "err", wanted.KubeletConfigMissing)
	}
	metrics := keeper.NewMetrics()
	svc, err := keeper.NewRuntimeImageService(cfg.runtimeEndpoint)
	if err != nil {
		return err
	}
	defer svc.Close()
	var staticHolder *staticHolder
	if cfg.holderDir != "" {
		if len(wanted.Images) > holder.MaxImages {
			return fmt.Errorf("--holder-static-pod-dir: %d wanted images; a holder holds at most %d (each is a mount in its container and a pull before it starts)", len(wanted.Images), holder.MaxImages)
		}
		staticHolder = newStaticHolder(cfg, svc)
		release, err := staticHolder.syncer.Lock()
		if err != nil {
			return fmt.Errorf("--holder-static-pod-dir: %w", err)
		}
		defer release()
		cfg.options.Holder = staticHolder
	}
	var dsHolder *daemonSetHolder
	if cfg.holderNamespace != "" {
		dsHolder = &daemonSetHolder{runtime: svc, namespace: cfg.holderNamespace, pending: "not looked for yet"}
		cfg.options.Holder = dsHolder
	}
	client, err := newClient(cfg)
	if err != nil {
		return err
	}
	if client != nil {
		slots, err := newPullSlots(cfg, client)
		if err != nil {
			return err
		}
		if slots != nil {
			cfg.options.PullSlots = slots
			logger.Info("Pulling only while holding one of the cluster's pull slots", "slots", slots.Describe())
		}
	}
	k := keeper.New(cfg.options, wanted, connector(svc), metrics)
	defer k.ReleaseSlot()
	wanted.LogWarnings(logger)
	if stale != nil {
		stale = fmt.Errorf("%w; image-keeper started from the last good config, %s", stale, filepath.Join(cfg.stateDir, keeper.LastGoodFile))
		logger.Error(stale, "The config does not load; keeping the images of the last good config until it is fixed")
		k.SetConfigError(stale)
	}

	if cfg.once {
		err := k.Reconcile(ctx)
		if err == nil {
			err = k.Observe(ctx) // observe what the pulls left, for the table
		}
		status := k.Status()
		keeper.PrintStatus(os.Stdout, status)
		if ready, reason := status.Ready(); !ready {
			return errors.New(reason)
		}
		return err
	}

	var publisher *nodestatus.Publisher
	if client != nil {
		publisher = newPublisher(cfg, client)
	}

	// The HTTP server and the reconcile loop run in one group: when either ends with an error, or
	// ctx is cancelled (SIGTERM), the group's context stops the other.
	g, gctx := errgroup.WithContext(ctx)
	for _, l := range []struct{ flag, addr string }{{"--listen", cfg.listen}, {"--status-listen", cfg.statusListen}} {
		if l.addr == "" {
			continue
		}
		ln, err := net.Listen("tcp", l.addr)
		if err != nil {
			return fmt.Errorf("%s %s: %w", l.flag, l.addr, err)
		}
		// Decided on the address listened on, not the one asked for: "localhost" is whatever the
		// resolver says.
		status := loopback(ln.Addr().String())
		if l.flag == "--status-listen" && !status {
			ln.Close()
			return fmt.Errorf("--status-listen %s: listens on %s, not a loopback address", l.addr, ln.Addr())
		}
		srv := keeper.NewHTTPServer(k.Handler(status))
		g.Go(func() error {
			if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
				return fmt.Errorf("HTTP server on %s: %w", ln.Addr(), err)
			}
			return nil
		})
		g.Go(func() error {
			<-gctx.Done()
			shutdownCtx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			return srv.Shutdown(shutdownCtx)
		})
		logger.Info("Serving /healthz, /readyz, /metrics", "address", ln.Addr().String(), "status", status)
	}

	reload := make(chan struct{}, 1)
	watcher := configwatch.New(configwatch.Paths{
		Files:     []string{cfg.sources.ConfigFile, cfg.sources.KubeletConfigFile},
		DropInDir: cfg.sources.KubeletConfigDir,
	})
	g.Go(func() error {
		watcher.Run(gctx, hupSignals, reload)
		return nil
	})
	// Inotify misses a host file bind-mounted into a pod (the DaemonSet's kubelet config) and
	// written in place; a look every interval (at most 10 s) does not, and stops image-keeper
	// when the file was renamed over on the host, which such a mount never shows.
	g.Go(func() error {
		return watcher.Poll(gctx, min(cfg.options.Interval, 10*time.Second), reload)
	})

	if publisher != nil {
		g.Go(func() error {
			publishNodeStatus(gctx, publisher, k)
			return nil
		})
	}
	if staticHolder != nil {
		logger.Info("Holder mode: a static pod mounts the wanted images as image volumes", "dir", cfg.holderDir, "holderImage", cfg.holderImage)
		g.Go(func() error {
			staticHolder.run(gctx, k, cfg.options.Interval)
			return nil
		})
	}
	if dsHolder != nil {
		logger.Info("Holder mode: the holder DaemonSet's pod mounts the wanted images as image volumes", "namespace", cfg.holderNamespace)
		g.Go(func() error {
			dsHolder.run(gctx, k, cfg.options.Interval)
			return nil
		})
	}

	logger.Info("Keeping images present", "wanted", len(wanted.Images), "interval", cfg.options.Interval, "pullConcurrency", cfg.options.PullConcurrency, "runtime", cfg.runtimeEndpoint)
	g.Go(func() error {
		k.Run(gctx, reload, func() (*keeper.Wanted, error) {
			w, err := keeper.Load(cfg.sources)
			if err == nil {
				w.LogWarnings(logger)
				if err := lastGood.Save(w.ConfigData); err != nil {
					logger.Error(err, "Could not keep a copy of the reloaded config")
				}
			}
			return w, err
		})
		return nil
	})
	if err := g.Wait(); err != nil {
		return err
	}
	logger.Info("Stopped")
	return nil
}

func runStatus(ctx context.Context, cfg *config) error {
	var status keeper.Status
	if cfg.server != "" {
		var err error
		if status, err = keeper.FetchStatus(ctx, cfg.server, cfg.timeout); err != nil {
			return err
		}
	} else {
		wanted, err := keeper.Load(cfg.sources)
		if err != nil {
			return err
		}
		svc, err := keeper.NewRuntimeImageService(cfg.runtimeEndpoint)
		if err != nil {
			return err
		}
		defer svc.Close()
		k := keeper.New(cfg.options, wanted, connector(svc), keeper.NewMetrics())
		ctx, cancel := context.WithTimeout(ctx, cfg.timeout)
		defer cancel()
		if err := k.Observe(ctx); err != nil {
			return err
		}
		status = k.Status()
	}
	keeper.PrintStatus(os.Stdout, status)
	// Scripts and probes read the exit status: not ready is a failure.
	if ready, reason := status.Ready(); !ready {
		// The reason carries text from the server (status --server): quoted, like the table.
		return fmt.Errorf("not ready: %s", keeper.QuoteControl(reason))
	}
	return nil
}

// goflagSet holds klog's flags (-v, --vmodule, ...).
func goflagSet() *flag.FlagSet {
	fs := flag.NewFlagSet("klog", flag.ContinueOnError)
	klog.InitFlags(fs)
	return fs
}
