// hack/bench holds benchmark files that hack/bench.sh copies into a worktree of the unpatched
// upstream tree. A module of its own keeps them out of this module's build and go mod tidy.
module github.com/kubelet-imagecache/kubelet-imagecache/hack/bench

go 1.26.0
