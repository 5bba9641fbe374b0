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

// Package pullslots bounds how many nodes of a cluster pull from registries at once, so that a
// new image list reaching every node does not make a thousand nodes pull the same image
// together. A node pulls only while it holds one of Count coordination.k8s.io Leases, named
// <prefix>-0 … <prefix>-<Count-1> in one namespace, with the node's name as the holder.
//
// A holder renews its Lease every LeaseDuration/3 while it pulls and clears it when done. A
// holder that dies frees its slot by expiry: a Lease held by another node is free once its
// resourceVersion has not changed for the Lease's duration, measured on the local clock from
// when this node first saw that version (as client-go's leader election does, so that clock
// skew between nodes does not matter). Taking a slot is an update with the Lease's
// resourceVersion: of the nodes that race for a freed slot, one wins and the others conflict.
//
// Waiters look again after a delay that starts at MinWait and doubles up to MaxWait, fully
// jittered, and not later than a Lease they saw may expire. They do not watch: with a watch,
// every change of a slot would reach every waiting node, and each would look at once, so a
// rollout on N nodes would cost O(N) requests per change, O(N^2) in all. Polling costs each
// waiting node one List from the API server's watch cache per MaxWait once it has waited long,
// however many slots change (docs/bench/pull-slots.md measures both).
package pullslots

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"
	"k8s.io/utils/ptr"
)

const (
	// Prefix names the Leases: image-keeper-pull-slot-0, -1, ...
	Prefix = "image-keeper-pull-slot"
	// ComponentLabel marks them (value ComponentValue), so that waiters list only them.
	ComponentLabel = "app.kubernetes.io/component"
	ComponentValue = "pull-slot"
	// MaxCount bounds --pull-slots: a waiter lists and may try every slot.
	MaxCount = 1000
	// MinLeaseDuration and MaxLeaseDuration bound a Lease's duration as a node counts it,
	// whatever the Lease says: a slot written with a year's duration frees itself in ten
	// minutes.
	MinLeaseDuration = 5 * time.Second
	MaxLeaseDuration = 10 * time.Minute
)

// Slots are the pull slots of a cluster as one node sees them.
type Slots struct {
	client    kubernetes.Interface
	namespace string
	identity  string
	count     int

	// LeaseDuration is how long a slot stays held without a renewal (30 s).
	LeaseDuration time.Duration
	// MinWait and MaxWait bound a waiter's delay between two looks (1 s and 30 s): it starts at
	// MinWait and doubles per look, and is drawn at random up to that bound, so that waiters
	// spread out.
	MinWait, MaxWait time.Duration
	// FailOpenAfter is how long the API server may fail to answer before the node pulls without
	// a slot (1 min): the slots spread a fleet's pulls, they must not stop an edge node that
	// lost its control plane from warming from a local mirror. A refusal (no RBAC for Leases,
	// no such namespace) fails open at once: it does not heal by waiting.
	FailOpenAfter time.Duration
	// GiveUpAfter is the longest a node waits for a slot before it pulls without one (1 h): a
	// fleet's rollout takes (nodes / slots) x (a node's pulls), and a node whose slots are held
	// by a node renewing them without pulling (a stolen token: no admission policy can check a
	// Lease's expiry) still warms.
	GiveUpAfter time.Duration

	mu           sync.Mutex
	failingSince time.Time // the API server has failed every look since, zero when it answers
	rng          *rand.Rand
	seen         map[string]observed // by Lease name: the version last seen and since when
	// state is what this node is doing with the slots, for its status.
	state string
}

type observed struct {
	resourceVersion string
	since           time.Time
}

// New returns count slots in namespace, taken in identity's name (the node's name). It checks
// the arguments only; the Leases are created when first taken.
func New(client kubernetes.Interface, namespace, identity string, count int) (*Slots, error) {
	if count < 1 || count > MaxCount {
		return nil, fmt.Errorf("--pull-slots=%d: want 1 to %d (or 0 for no slots)", count, MaxCount)
	}
	if errs := validation.IsDNS1123Label(namespace); len(errs) > 0 {
		return nil, fmt.Errorf("--pull-slot-namespace=%q: %s", namespace, strings.Join(errs, "; "))
	}
	if identity == "" {
		return nil, errors.New("pull slots need the node's name: set --node-name, or NODE_NAME from the downward API (fieldRef: spec.nodeName)")
	}
	h := fnv.New64a()
	_, _ = h.Write([]byte(identity))
	return &Slots{
		client: client, namespace: namespace, identity: identity, count: count,
		LeaseDuration: 30 * time.Second, MinWait: time.Second, MaxWait: 30 * time.Second, FailOpenAfter: time.Minute, GiveUpAfter: time.Hour,
		rng:  rand.New(rand.NewPCG(h.Sum64(), uint64(time.Now().UnixNano()))),
		seen: map[string]observed{},
	}, nil
}

// Describe says what the slots are, for logs.
func (s *Slots) Describe() string {
	return fmt.Sprintf("%d pull slots (Leases %s-N in namespace %s)", s.count, Prefix, s.namespace)
}

// State says what this node is doing with the slots: holding one, waiting, or neither ("").
func (s *Slots) State() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.state
}

func (s *Slots) setState(state string) {
	s.mu.Lock()
	s.state = state
	s.mu.Unlock()
}

// Acquire waits until this node holds a slot, and returns the function that gives it back and a
// channel closed if the node loses the slot before (its renewals failed for longer than the
// Lease's duration and another node took it, or the Lease was deleted). When the API server
// refuses the slots or does not answer for FailOpenAfter, or the node has waited GiveUpAfter,
// it returns with nothing to give back: the node pulls without a slot (State says so). It
// fails only when ctx is done.
func (s *Slots) Acquire(ctx context.Context) (release func(), lost <-chan struct{}, err error) {
	logger := klog.FromContext(ctx)
	start := time.Now()
	waitingLogged := false
	bound := s.MinWait
	for {
		lookCtx, cancel := context.WithTimeout(ctx, s.callTimeout())
		name, acquired, list, err := s.tryAll(lookCtx)
		cancel()
		if ctx.Err() != nil {
			s.setState("")
			return nil, nil, ctx.Err()
		}
		failingFor := s.failing(err)
		var failOpen string
		switch {
		case err != nil && refused(err):
			failOpen = fmt.Sprintf("the API server refuses them: %v", err)
		case err != nil && failingFor >= s.FailOpenAfter:
			failOpen = fmt.Sprintf("the API server has failed for %v: %v", failingFor.Round(time.Second), err)
		case name == "" && time.Since(start) >= s.GiveUpAfter:
			failOpen = fmt.Sprintf("waited %v for one", time.Since(start).Round(time.Second))
		}
		if failOpen != "" {
			state := "pulling without a slot: " + failOpen
			logger.Error(err, "Pull slots unavailable; pulling without one", "slots", s.Describe(), "why", failOpen)
			s.setState(state)
			return func() { s.setState("") }, nil, nil
		}
		if name != "" {
			s.setState("holding " + name)
			if waitingLogged {
				logger.Info("Took a pull slot", "lease", name, "waited", time.Since(start).Round(time.Millisecond))
			} else {
				logger.V(2).Info("Took a pull slot", "lease", name)
			}
			release, lost := s.holding(ctx, name, acquired)
			return release, lost, nil
		}
		why := fmt.Sprintf("waiting for one of %d pull slots", s.count)
		if err != nil {
			why += fmt.Sprintf(" (the API server: %v)", err)
		} else if holders := holdersOf(list); len(holders) > 0 {
			why += fmt.Sprintf(" (held by %s)", listed(holders))
		}
		s.setState(why)
		if !waitingLogged {
			logger.Info("All pull slots are taken; waiting", "slots", s.count, "why", why)
			waitingLogged = true
		}
		s.wait(ctx, list, bound)
		bound = min(2*bound, s.MaxWait)
		if ctx.Err() != nil {
			s.setState("")
			return nil, nil, ctx.Err()
		}
	}
}

// failing records the outcome of a look and returns for how long the API server has failed
// (across Acquire calls: a node whose API server is away fails open at once on its next batch).
func (s *Slots) failing(err error) time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err == nil {
		s.failingSince = time.Time{}
		return 0
	}
	if s.failingSince.IsZero() {
		s.failingSince = time.Now()
	}
	return time.Since(s.failingSince)
}

// callTimeout bounds one look's or one renewal's API calls: a third of the Lease's duration,
// so that a renewal stuck on a dead connection is retried before the Lease expires.
func (s *Slots) callTimeout() time.Duration { return max(time.Second, s.LeaseDuration/3) }

// tryAll lists the slots and tries to take a free one, with one write at most: the slot this
// node holds already if any (a restarted image-keeper), else the first free one from a slot
// picked at random, so that nodes spread over the slots. A conflict (another node took it
// first) takes nothing and is no error. It returns the name of the slot taken ("" when none),
// the acquire time written, and the list, for waiting on.
func (s *Slots) tryAll(ctx context.Context) (string, time.Time, *coordinationv1.LeaseList, error) {
	// From the API server's watch cache (resourceVersion 0): cheap at a thousand waiters; a
	// stale entry only makes an update conflict.
	list, err := s.client.CoordinationV1().Leases(s.namespace).List(ctx, metav1.ListOptions{
		LabelSelector: ComponentLabel + "=" + ComponentValue, ResourceVersion: "0",
	})
	if err != nil {
		return "", time.Time{}, nil, listError{err}
	}
	byName := map[string]*coordinationv1.Lease{}
	for i := range list.Items {
		byName[list.Items[i].Name] = &list.Items[i]
	}
	// The acquire time names this holding: a node that takes its own slot again (a restart, a
	// new pull right after a give-back) writes a new one, and what the old holding renews or
	// gives back is only the Lease that still has its own (the API keeps microseconds).
	now := time.Now().Truncate(time.Microsecond)
	s.mu.Lock()
	first := s.rng.IntN(s.count)
	s.mu.Unlock()
	names := make([]string, 0, s.count+1)
	for i := range s.count {
		name := fmt.Sprintf("%s-%d", Prefix, (first+i)%s.count)
		if lease, ok := byName[name]; ok && ptr.Deref(lease.Spec.HolderIdentity, "") == s.identity {
			names = append([]string{name}, names...)
			continue
		}
		names = append(names, name)
	}
	for _, name := range names {
		lease, ok := byName[name]
		var taken bool
		switch {
		case !ok:
			if taken, err = s.create(ctx, name, now); err == nil && !taken {
				// It exists: created since the list (which is stale), or without the slots'
				// label (which the list does not show). Judged by name, and relabelled if taken.
				if lease, err = s.client.CoordinationV1().Leases(s.namespace).Get(ctx, name, metav1.GetOptions{}); err == nil && s.free(lease, now) {
					taken, err = s.take(ctx, lease, now)
				}
			}
		case s.free(lease, now):
			taken, err = s.take(ctx, lease, now)
		default:
			continue
		}
		if taken {
			return name, now, list, nil
		}
		return "", time.Time{}, list, err
	}
	return "", time.Time{}, list, nil
}

// listError is a failure to list the slots, as opposed to one to write one.
type listError struct{ error }

func (e listError) Unwrap() error { return e.error }

// free says whether a Lease may be taken: unheld, held by this node (a restarted
// image-keeper), or unchanged for its duration since this node first saw its version.
func (s *Slots) free(lease *coordinationv1.Lease, now time.Time) bool {
	holder := ptr.Deref(lease.Spec.HolderIdentity, "")
	if holder == "" || holder == s.identity {
		return true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	seen, ok := s.seen[lease.Name]
	if !ok || seen.resourceVersion != lease.ResourceVersion {
		s.seen[lease.Name] = observed{resourceVersion: lease.ResourceVersion, since: now}
		return false
	}
	return now.Sub(seen.since) >= s.durationOf(lease)
}

// durationOf is a Lease's duration as this node counts it: its own, within [MinLeaseDuration,
// MaxLeaseDuration] (a Lease written with a year's duration does not hold a slot for a year),
// and this node's LeaseDuration when it has none.
func (s *Slots) durationOf(lease *coordinationv1.Lease) time.Duration {
	d := s.LeaseDuration
	if lease.Spec.LeaseDurationSeconds != nil {
		d = time.Duration(*lease.Spec.LeaseDurationSeconds) * time.Second
	}
	return min(max(d, MinLeaseDuration), MaxLeaseDuration)
}

func (s *Slots) spec(now time.Time, transitions int32) coordinationv1.LeaseSpec {
	t := metav1.NewMicroTime(now)
	return coordinationv1.LeaseSpec{
		HolderIdentity:       ptr.To(s.identity),
		LeaseDurationSeconds: ptr.To(int32(s.LeaseDuration / time.Second)),
		AcquireTime:          &t,
		RenewTime:            &t,
		LeaseTransitions:     ptr.To(transitions),
	}
}

// create makes a slot's Lease, held by this node; another node creating it first is no error.
func (s *Slots) create(ctx context.Context, name string, now time.Time) (bool, error) {
	lease := &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: s.namespace, Labels: labels()},
		Spec:       s.spec(now, 0),
	}
	_, err := s.client.CoordinationV1().Leases(s.namespace).Create(ctx, lease, metav1.CreateOptions{})
	switch {
	case err == nil:
		return true, nil
	case apierrors.IsAlreadyExists(err):
		return false, nil
	default:
		return false, fmt.Errorf("create Lease %s/%s: %w", s.namespace, name, err)
	}
}

// labels are the slots' Leases' labels, all of them (deploy/admission.yaml allows no others).
func labels() map[string]string {
	return map[string]string{"app.kubernetes.io/name": "image-keeper", ComponentLabel: ComponentValue}
}

// take updates a free Lease to this node, with its resourceVersion: a conflict means another
// node took it first.
func (s *Slots) take(ctx context.Context, lease *coordinationv1.Lease, now time.Time) (bool, error) {
	updated := lease.DeepCopy()
	transitions := ptr.Deref(lease.Spec.LeaseTransitions, 0)
	if ptr.Deref(lease.Spec.HolderIdentity, "") != s.identity && transitions < math.MaxInt32 {
		transitions++
	}
	updated.Spec = s.spec(now, max(0, transitions))
	updated.Labels = labels() // a Lease that lost its labels is listed again
	_, err := s.client.CoordinationV1().Leases(s.namespace).Update(ctx, updated, metav1.UpdateOptions{})
	switch {
	case err == nil:
		return true, nil
	case apierrors.IsConflict(err) || apierrors.IsNotFound(err):
		return false, nil
	default:
		return false, fmt.Errorf("take Lease %s/%s: %w", s.namespace, lease.Name, err)
	}
}

// wait sleeps a random time up to bound, and not past the soonest moment a held Lease it saw
// may have expired, or until ctx is done.
func (s *Slots) wait(ctx context.Context, list *coordinationv1.LeaseList, bound time.Duration) {
	s.mu.Lock()
	wait := time.Duration(s.rng.Int64N(int64(bound) + 1))
	var expiries []time.Time
	if list != nil {
		for _, lease := range list.Items {
			if o, ok := s.seen[lease.Name]; ok && o.resourceVersion == lease.ResourceVersion {
				expiries = append(expiries, o.since.Add(s.durationOf(&lease)))
			}
		}
	}
	s.mu.Unlock()
	for _, expiry := range expiries {
		wait = min(wait, max(s.MinWait, time.Until(expiry)))
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	select {
	case <-ctx.Done():
	case <-timer.C:
	}
}

// holding renews the slot every LeaseDuration/3 until ctx is done or the returned function is
// called, which clears the Lease's holder (also after ctx is done) so that a waiter takes it
// at once.
func (s *Slots) holding(ctx context.Context, name string, acquired time.Time) (func(), <-chan struct{}) {
	logger := klog.FromContext(ctx)
	renewCtx, cancel := context.WithCancel(ctx)
	done, lost := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		ticker := time.NewTicker(s.callTimeout())
		defer ticker.Stop()
		for {
			select {
			case <-renewCtx.Done():
				return
			case <-ticker.C:
			}
			callCtx, cancelCall := context.WithTimeout(renewCtx, s.callTimeout())
			gone, err := s.renew(callCtx, name, acquired)
			cancelCall()
			if gone {
				logger.Info("Lost the pull slot: its Lease was deleted, or taken by another node after it expired (this node could not renew it in time)", "lease", name, "err", err)
				s.setState("")
				close(lost)
				return
			} else if err != nil && renewCtx.Err() == nil {
				logger.Error(err, "Renewing the pull slot failed; retrying", "lease", name)
			}
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() {
			cancel()
			<-done
			releaseCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			if err := s.clear(releaseCtx, name, acquired); err != nil {
				logger.Error(err, "Giving back the pull slot failed; it frees itself when the Lease expires", "lease", name, "leaseDuration", s.LeaseDuration)
			} else {
				logger.V(2).Info("Gave back the pull slot", "lease", name)
			}
			s.setState("")
		})
	}, lost
}

// renew moves the Lease's renewTime; lost says another node holds it now.
func (s *Slots) renew(ctx context.Context, name string, acquired time.Time) (lost bool, err error) {
	leases := s.client.CoordinationV1().Leases(s.namespace)
	lease, err := leases.Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return apierrors.IsNotFound(err), err
	}
	if !s.ours(lease, acquired) {
		return true, nil
	}
	lease.Spec.RenewTime = ptr.To(metav1.NewMicroTime(time.Now()))
	_, err = leases.Update(ctx, lease, metav1.UpdateOptions{})
	return false, err
}

// clear gives the slot back, if this node still holds it.
func (s *Slots) clear(ctx context.Context, name string, acquired time.Time) error {
	leases := s.client.CoordinationV1().Leases(s.namespace)
	for range 3 {
		lease, err := leases.Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		if err != nil {
			return err
		}
		if !s.ours(lease, acquired) {
			return nil
		}
		lease.Spec.HolderIdentity, lease.Spec.AcquireTime = nil, nil
		lease.Spec.RenewTime = ptr.To(metav1.NewMicroTime(time.Now()))
		if _, err = leases.Update(ctx, lease, metav1.UpdateOptions{}); !apierrors.IsConflict(err) {
			return err
		}
	}
	return fmt.Errorf("lease %s/%s kept changing", s.namespace, name)
}

// ours says the Lease is still the holding that took it at acquired.
func (s *Slots) ours(lease *coordinationv1.Lease, acquired time.Time) bool {
	return ptr.Deref(lease.Spec.HolderIdentity, "") == s.identity && lease.Spec.AcquireTime != nil && lease.Spec.AcquireTime.Time.Equal(acquired)
}

// refused says the API server refused to list the slots, which waiting does not heal (no RBAC
// for Leases). A refused write of one Lease (a poisoned Lease, a policy) is not: the node fails
// open only after FailOpenAfter, so that one bad Lease does not release the whole fleet.
func refused(err error) bool {
	var le listError
	if !errors.As(err, &le) {
		return false
	}
	return apierrors.IsForbidden(err) || apierrors.IsUnauthorized(err) || apierrors.IsNotFound(err) || apierrors.IsBadRequest(err)
}

func holdersOf(list *coordinationv1.LeaseList) []string {
	if list == nil {
		return nil
	}
	var holders []string
	for _, lease := range list.Items {
		if h := ptr.Deref(lease.Spec.HolderIdentity, ""); h != "" {
			holders = append(holders, h)
		}
	}
	slices.Sort(holders)
	return holders
}

// listed names at most 5 holders.
func listed(names []string) string {
	if len(names) <= 5 {
		return strings.Join(names, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(names[:5], ", "), len(names)-5)
}
