// hack/upstream-bugs holds tests of upstream's own packages that hack/test-upstream.sh copies into
// the patched tree. A module of its own keeps them out of this module's build and go mod tidy.
module github.com/kubelet-imagecache/kubelet-imagecache/hack/upstream-bugs

go 1.26.0
