# shellcheck shell=bash
# The container image, built the way the state IT provider's build machines can: buildah
# without a container engine (docs/operations.md, "Images"). Sourced by ./scripts/test, which
# calls image_build before the tests; tests/integration/test_image.py smoke-tests the result.
#
#   image_build — installs buildah and debootstrap if missing, makes the Debian 12 base image
#   once (debootstrap --variant=minbase, imported as localhost/kqe-base:bookworm and kept in
#   buildah's storage between runs), then builds docker/Dockerfile on it as
#   localhost/kqe:test (buildah's layer cache: only what changed is built again). Exports
#   KQE_TEST_IMAGE, or KQE_TEST_IMAGE_SKIP with the reason where buildah cannot run at all
#   (the smoke test then says so and skips).
#
# Storage: vfs (works without overlay support or fuse), in buildah's default place
# (/var/lib/containers/storage as root). KQE_IMAGE_BASE overrides the base (e.g. a registry's
# debian:12-slim where one is reachable).

IMAGE_BASE_LOCAL=localhost/kqe-base:bookworm
IMAGE_TEST=localhost/kqe:test

image__buildah() {
	buildah --storage-driver vfs "$@"
}

# image__base — the base image: KQE_IMAGE_BASE, else the local debootstrap one (made once).
image__base() {
	if [ -n "${KQE_IMAGE_BASE:-}" ]; then
		echo "$KQE_IMAGE_BASE"
		return 0
	fi
	if image__buildah inspect --type image "$IMAGE_BASE_LOCAL" >/dev/null 2>&1; then
		echo "$IMAGE_BASE_LOCAL"
		return 0
	fi
	local dir
	dir=$(mktemp -d /tmp/kqe-base.XXXXXX) || return 1
	echo "image: making the Debian 12 base with debootstrap (once; kept as $IMAGE_BASE_LOCAL)" >&2
	local mirror
	mirror=$(awk '/^URIs:/ && $2 ~ /debian\/?$/ {print $2; exit}' /etc/apt/sources.list.d/*.sources \
		2>/dev/null)
	if ! debootstrap --variant=minbase bookworm "$dir" "${mirror:-http://deb.debian.org/debian}" \
		>"$dir.log" 2>&1; then
		tail -20 "$dir.log" >&2
		rm -rf "$dir" "$dir.log"
		return 1
	fi
	# What debian:12-slim leaves out: documentation, the apt lists (the build updates them).
	rm -rf "$dir"/usr/share/doc/* "$dir"/usr/share/man/* "$dir"/var/lib/apt/lists/* \
		"$dir"/var/cache/apt/*.bin
	local ctr
	ctr=$(image__buildah from scratch) &&
		image__buildah copy "$ctr" "$dir" / >/dev/null &&
		image__buildah config --cmd /bin/bash --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
			"$ctr" &&
		image__buildah commit --rm "$ctr" "$IMAGE_BASE_LOCAL" >/dev/null
	local rc=$?
	rm -rf "$dir" "$dir.log"
	[ "$rc" -eq 0 ] && echo "$IMAGE_BASE_LOCAL"
	return "$rc"
}

image_build() {
	unset KQE_TEST_IMAGE KQE_TEST_IMAGE_SKIP
	stack_install_deps buildah debootstrap
	if ! image__buildah info >/dev/null 2>&1; then
		export KQE_TEST_IMAGE_SKIP="buildah cannot run on this machine ($(image__buildah info 2>&1 | tail -1))"
		echo "image: $KQE_TEST_IMAGE_SKIP; the image smoke test is skipped" >&2
		return 0
	fi
	local base start
	base=$(image__base) || {
		echo "image: no base image (debootstrap failed, above)" >&2
		return 1
	}
	start=$(date +%s)
	echo "image: building docker/Dockerfile on $base as $IMAGE_TEST" >&2
	mkdir -p build
	: >build/image-build.log
	# The stages that change only with the Dockerfile are named, so pruning the unnamed
	# layers of the source-dependent steps afterwards keeps them as the cache.
	local target tag
	for target in deps runtime ""; do
		case $target in
		deps) tag=localhost/kqe-deps:bookworm ;;
		runtime) tag=localhost/kqe-runtime:bookworm ;;
		*) tag=$IMAGE_TEST ;;
		esac
		if ! image__buildah bud --isolation chroot --format docker --layers \
			${target:+--target "$target"} --build-arg "BASE=$base" \
			--build-arg "REVISION=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)" \
			-f docker/Dockerfile -t "$tag" . >>build/image-build.log 2>&1; then
			tail -40 build/image-build.log >&2
			echo "image: the build failed (build/image-build.log)" >&2
			return 1
		fi
	done
	# Earlier builds' layers no longer named, and what failed builds left behind: vfs keeps a
	# whole copy of each (the images kept: about 1.3 GB in /var/lib/containers).
	local ctr
	for ctr in $(image__buildah containers --format '{{.ContainerName}}' 2>/dev/null); do
		case $ctr in *-working-container) image__buildah rm "$ctr" >/dev/null 2>&1 || true ;; esac
	done
	image__buildah rmi --prune >/dev/null 2>&1 || true
	echo "image: built in $(($(date +%s) - start)) s" >&2
	export KQE_TEST_IMAGE=$IMAGE_TEST
}
