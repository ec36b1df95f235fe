#!/usr/bin/env bash
# Builds the Debian packages layerswarm-agent, layerswarm-supernode and layerswarm-cli (plus
# their -dbgsym packages) with debhelper into build/packages/, then runs lintian on them and
# fails on any lintian error. docs/operations.md "Installing" describes what they install.
#   scripts/package.sh [--version V] [--out DIR]
#     V: the packages' version (default: the CMake project version); DIR: where the .deb,
#     .changes and .buildinfo files and lintian.txt go (default build/packages).
# The source tree is staged in build/packages/src/layerswarm (tracked files only, with
# packaging/debian as debian/); its path never changes, so ccache serves the compiler's output
# again and a second run mostly links.
set -euo pipefail
cd "$(dirname "$0")/.."
out=build/packages
version=$(sed -nE 's/^project\(layerswarm VERSION ([0-9.]+).*/\1/p' CMakeLists.txt)
while [ $# -gt 0 ]; do
  case "$1" in
    --version) version=${2:?--version needs a value}; shift 2 ;;
    --out) out=${2:?--out needs a directory}; shift 2 ;;
    *) echo "usage: $0 [--version V] [--out DIR]" >&2; exit 2 ;;
  esac
done
[[ "$version" =~ ^[0-9][0-9A-Za-z.+~]*$ ]] || { echo "package: bad version '$version'" >&2; exit 2; }

scripts/setup.sh --package >/dev/null
stage=build/packages/src
src=$stage/layerswarm
mkdir -p "$out" "$stage"
rm -f "$out"/*.deb "$out"/*.changes "$out"/*.buildinfo "$stage"/*.deb "$stage"/*.changes \
  "$stage"/*.buildinfo
rm -rf "$src"
mkdir -p "$src"
git ls-files -z | xargs -0 cp --parents -p -t "$src"
cp -rp packaging/debian "$src/debian"
# The changelog (dpkg takes the version from it) is written here rather than kept in git.
cat >"$src/debian/changelog" <<CHANGELOG
layerswarm ($version) unstable; urgency=medium

  * Built from $(git rev-parse --short HEAD 2>/dev/null || echo "a source tree") by scripts/package.sh.

 -- layerswarm maintainers <maintainers@layerswarm.invalid>  $(date -R)
CHANGELOG

# debhelper points HOME at a scratch directory, which would hide ccache's cache.
if command -v ccache >/dev/null; then
  CCACHE_DIR=${CCACHE_DIR:-$(ccache -k cache_dir)}
  export CCACHE_DIR
fi
(cd "$src" && dpkg-buildpackage -b -us -uc --no-sign >../build.log 2>&1) || {
  tail -40 "$stage/build.log" >&2
  echo "package: dpkg-buildpackage failed (log: $stage/build.log)" >&2
  exit 1
}
mv "$stage"/*.deb "$stage"/*.changes "$stage"/*.buildinfo "$out"/
changes=$(ls "$out"/layerswarm_"${version}"_*.changes)
# Errors fail the build; warnings (none today) are printed.
status=0
lintian --fail-on error "$changes" >"$out/lintian.txt" 2>&1 || status=$?
sed -i '/^running with root privileges/d' "$out/lintian.txt"
cat "$out/lintian.txt"
[ "$status" -eq 0 ] || { echo "package: lintian found errors (above)" >&2; exit 1; }
echo "package: built $(ls "$out"/*.deb | wc -l) packages in $out:"
ls -1 "$out"/*.deb
