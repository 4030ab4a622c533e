# shellcheck shell=bash
# The Debian package (docs/operations.md, "Packages"), built with CPack from a Release build
# of its own (build/deb). Sourced by ./scripts/test, which calls package_build before the
# tests; tests/integration/test_package.py installs it into a fresh Debian 12 root.
#
#   package_build — exports KQE_TEST_DEB (the .deb's path) and KQE_TEST_IMAGE_BASE (the
#   debootstrap root to install it into, scripts/lib/image.sh), or leaves them unset where
#   buildah cannot run (KQE_TEST_IMAGE_SKIP says why).

package_build() {
	unset KQE_TEST_DEB KQE_TEST_IMAGE_BASE
	cmake -S . -B build/deb -DCMAKE_BUILD_TYPE=RelWithDebInfo -DKQE_TESTS=OFF \
		-DCMAKE_INSTALL_PREFIX=/usr >/dev/null
	cmake --build build/deb -j"$(nproc)" --target kqe-api kqe-aggregator kqe >/dev/null
	rm -f build/deb/kqe_*.deb
	(cd build/deb && cpack -G DEB >cpack.log 2>&1) || {
		tail -20 build/deb/cpack.log >&2
		return 1
	}
	KQE_TEST_DEB=$(ls "$PWD"/build/deb/kqe_*.deb)
	export KQE_TEST_DEB
	echo "image: package $(basename "$KQE_TEST_DEB")" >&2
	if [ -z "${KQE_TEST_IMAGE_SKIP:-}" ]; then
		KQE_TEST_IMAGE_BASE=$(image__base) || return 1
		export KQE_TEST_IMAGE_BASE
	fi
}
