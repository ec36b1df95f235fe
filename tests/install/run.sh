#!/usr/bin/env bash
# The install test (docs/operations.md "Installing"): the Debian packages on a fresh Debian 12.
#   1. builds the packages twice with scripts/package.sh (version V and V+1, the upgrade);
#   2. copies a pristine minbase Debian 12 root (debootstrap, made once and kept in
#      $LS_INSTALL_BASE, default /var/cache/layerswarm-tests/bookworm-minbase) and installs the
#      three packages there with apt: it reports the packages apt pulled in and checks that none
#      is a development package and that every program finds its libraries;
#   3. checks the user, directories, modes and conffiles the maintainer scripts made;
#   4. runs what the supernode's unit runs, as its user: it refuses to start without a site;
#      after `init-site` (run as that user) it starts and answers /healthz;
#   5. runs what the agent's unit runs, as its user, with the packaged configuration edited to
#      use a local docker-registry (on the host's loopback) as its upstream; skopeo pulls an
#      image through it; the CLI (from the package) reports its status;
#   6. upgrades to V+1 with apt: the edited configuration and the cache stay, a second pull is
#      served from the cache (the registry sees no further blob request) and is byte-identical;
#   7. removes (programs gone; configuration and cache kept), then purges (both gone);
#   8. runs the container image's RUN lines (packaging/docker/Dockerfile) in that root.
# No systemd runs in a chroot: the units themselves are checked by tests/packaging/check_units.sh.
# Exit 77 (skipped, with the reason) without root, debootstrap or a reachable Debian mirror.
#   tests/install/run.sh           (KEEP=1 keeps the work directory)
set -euo pipefail
cd "$(dirname "$0")/../.."
skip() { echo "install test: $1; skipped"; exit 77; }
[ "$(id -u)" -eq 0 ] || skip "needs root (debootstrap, chroot)"
scripts/setup.sh --package >/dev/null
for tool in debootstrap chroot skopeo docker-registry; do
  command -v "$tool" >/dev/null || skip "no $tool"
done

source scripts/lib.sh
ls_workdir layerswarm-install
ROOTFS=$WORK/root
ls_on_cleanup() {
  # The chroot's /proc must be gone before its tree is removed.
  umount "$ROOTFS/proc" 2>/dev/null || true
  if grep -q " $WORK/" /proc/mounts; then
    echo "install test: a mount is left under $WORK; keeping it" >&2
    KEEP=1
  fi
}
step() { echo "install test: $*"; }
fail() { echo "install test: FAILED: $*" >&2; exit 1; }
in_root() { chroot "$ROOTFS" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 \
  DEBIAN_FRONTEND=noninteractive "$@"; }

# 1. Two builds: the version under test and the upgrade.
version=$(sed -nE 's/^project\(layerswarm VERSION ([0-9.]+).*/\1/p' CMakeLists.txt)
upgrade=$version+1
step "building the packages $version and $upgrade"
scripts/package.sh --version "$version" --out "$WORK/pkg1" >"$WORK/package1.log" 2>&1 ||
  { tail -30 "$WORK/package1.log"; fail "scripts/package.sh"; }
scripts/package.sh --version "$upgrade" --out "$WORK/pkg2" >"$WORK/package2.log" 2>&1 ||
  { tail -30 "$WORK/package2.log"; fail "scripts/package.sh --version $upgrade"; }
grep -h '^[EW]:' "$WORK/pkg1/lintian.txt" || step "lintian: no errors, no warnings"

# 2. A fresh Debian 12 root, and the packages installed into it.
BASE=${LS_INSTALL_BASE:-/var/cache/layerswarm-tests/bookworm-minbase}
mirror=$(grep -rhoE '^(URIs:|deb) +[^ ]+' /etc/apt/sources.list /etc/apt/sources.list.d/ \
  2>/dev/null | awk '{print $2}' | grep -m1 '/debian$' || true)
[ -n "$mirror" ] || skip "no Debian mirror in this machine's apt sources"
if [ ! -x "$BASE/usr/bin/apt-get" ]; then
  step "making a minbase Debian 12 root in $BASE (once)"
  rm -rf "$BASE.new"
  mkdir -p "$(dirname "$BASE")"
  debootstrap --variant=minbase bookworm "$BASE.new" "$mirror" >"$WORK/debootstrap.log" 2>&1 ||
    { tail -5 "$WORK/debootstrap.log"; skip "debootstrap failed (is $mirror reachable?)"; }
  mv "$BASE.new" "$BASE"
fi
cp -a "$BASE" "$ROOTFS"
cp /etc/resolv.conf "$ROOTFS/etc/resolv.conf"
mount -t proc proc "$ROOTFS/proc"
mkdir -p "$ROOTFS/tmp/pkg1" "$ROOTFS/tmp/pkg2"
cp "$WORK"/pkg1/*.deb "$ROOTFS/tmp/pkg1/"
cp "$WORK"/pkg2/*.deb "$ROOTFS/tmp/pkg2/"
debs() { ls "$ROOTFS/tmp/$1"/layerswarm-{agent,supernode,cli}_*.deb | sed "s#^$ROOTFS##"; }
in_root dpkg-query -W -f '${Package}\n' | sort >"$WORK/before.txt"
in_root apt-get update -q >"$WORK/apt.log" 2>&1 || { tail "$WORK/apt.log"; skip "apt-get update failed"; }
step "apt-get install $(debs pkg1 | xargs -n1 basename | tr '\n' ' ')"
in_root apt-get install -y -q --no-install-recommends $(debs pkg1) >>"$WORK/apt.log" 2>&1 ||
  { tail -20 "$WORK/apt.log"; fail "apt-get install"; }
in_root dpkg-query -W -f '${Package}\n' | sort >"$WORK/after.txt"
pulled=$(comm -13 "$WORK/before.txt" "$WORK/after.txt" | grep -v '^layerswarm' | tr '\n' ' ')
step "apt pulled in: $pulled"
if echo " $pulled" | grep -qE ' [^ ]*-dev |cmake|g\+\+|debhelper'; then
  fail "a build-time package was pulled in: $pulled"
fi
for program in layerswarm-agent layerswarm-supernode layerswarm; do
  if in_root ldd "/usr/bin/$program" | grep -q 'not found'; then
    in_root ldd "/usr/bin/$program"; fail "$program misses a library"
  fi
done
in_root layerswarm-agent --version

# 3. What the maintainer scripts made.
passwd=$(in_root getent passwd layerswarm) || fail "no layerswarm user"
uid=$(echo "$passwd" | cut -d: -f3)
gid=$(echo "$passwd" | cut -d: -f4)
[ "$uid" -lt 1000 ] || fail "layerswarm is not a system user: $passwd"
echo "$passwd" | grep -q ':/usr/sbin/nologin$' || fail "layerswarm can log in: $passwd"
expect_stat() {
  local got
  got=$(in_root stat -c "%U:%G %a" "$1")
  [ "$got" = "$2" ] || fail "$1 is $got, expected $2"
}
expect_stat /var/lib/layerswarm/agent "layerswarm:layerswarm 750"
expect_stat /var/lib/layerswarm/supernode "layerswarm:layerswarm 750"
expect_stat /etc/layerswarm/agent.json "root:layerswarm 640"
expect_stat /etc/layerswarm/supernode.json "root:layerswarm 640"
expect_stat /etc/layerswarm/site "layerswarm:layerswarm 700"
for role in agent supernode; do
  in_root dpkg-query -W -f '${Conffiles}\n' "layerswarm-$role" |
    grep -q "/etc/layerswarm/$role.json" || fail "/etc/layerswarm/$role.json is not a conffile"
  [ -f "$ROOTFS/lib/systemd/system/layerswarm-$role.service" ] || fail "no unit for $role"
  [ -f "$ROOTFS/usr/share/man/man8/layerswarm-$role.8.gz" ] || fail "no manual page for $role"
done
# What the unit runs, as the unit's user.
exec_start() { sed -n 's/^ExecStart=//p' "$ROOTFS/lib/systemd/system/layerswarm-$1.service"; }
as_service() { in_root chroot --userspec="$uid:$gid" / "$@"; }

# 4. The supernode: not without a site; with one, as packaged.
step "supernode without a site: $(exec_start supernode)"
set +e
timeout 20 chroot --userspec="$uid:$gid" "$ROOTFS" $(exec_start supernode) >"$WORK/supernode0.log" 2>&1
status=$?
set -e
[ "$status" -eq 1 ] || [ "$status" -eq 2 ] || { cat "$WORK/supernode0.log"; fail "supernode without a site: status $status"; }
step "  refused (status $status): $(grep -m1 -o 'cannot start.*' "$WORK/supernode0.log")"
as_service layerswarm-supernode init-site --dir /etc/layerswarm/site --ip 127.0.0.1 >/dev/null
sed -i -E 's/"(0\.0\.0\.0):[0-9]+"/"127.0.0.1:0"/' "$ROOTFS/etc/layerswarm/supernode.json"
chroot --userspec="$uid:$gid" "$ROOTFS" $(exec_start supernode) >"$WORK/supernode.log" 2>&1 &
PIDS+=($!)
supernode_pid=$!
ls_wait_log "$WORK/supernode.log" "listening on https"
supernode=$(ls_listening "$WORK/supernode.log")
curl -fsS "http://$supernode/healthz" >/dev/null || fail "supernode /healthz"
step "  with a site made by init-site as the user: listening, /healthz 200"
kill "$supernode_pid"
wait "$supernode_pid" || fail "supernode did not stop cleanly"

# 5. The agent, as packaged, with the upstream edited in.
ls_start_registry upstream
python3 scripts/mkimage.py "$WORK/image" --tag latest --busybox /bin/busybox \
  --layer 3M --layer 1M --label install >/dev/null
skopeo --insecure-policy copy -q --dest-tls-verify=false "oci:$WORK/image:latest" \
  "docker://$REGISTRY/install/app:latest"
python3 - "$ROOTFS/etc/layerswarm/agent.json" "$REGISTRY" <<'PY'
import json, sys
path, registry = sys.argv[1], sys.argv[2]
config = json.load(open(path))
config["upstream"] = "http://" + registry
config["listen"] = "127.0.0.1:0"
json.dump(config, open(path, "w"), indent=2)
PY
cp "$ROOTFS/etc/layerswarm/agent.json" "$WORK/agent.json.edited"
blob_gets() { grep -c 'GET /v2/install/app/blobs/' "$WORK/upstream.log" || true; }
start_agent() {
  chroot --userspec="$uid:$gid" "$ROOTFS" $(exec_start agent) >"$WORK/agent$1.log" 2>&1 &
  PIDS+=($!)
  agent_pid=$!
  ls_wait_log "$WORK/agent$1.log" "listening on"
  agent=$(ls_listening "$WORK/agent$1.log")
}
stop_agent() { kill "$agent_pid"; wait "$agent_pid" || fail "agent did not stop cleanly"; }
step "agent: $(exec_start agent), upstream edited to http://$REGISTRY"
start_agent 1
skopeo --insecure-policy copy -q --src-tls-verify=false "docker://$agent/install/app:latest" \
  "dir:$WORK/pull1"
gets1=$(blob_gets)
[ "$gets1" -ge 3 ] || fail "the registry saw $gets1 blob GETs for the first pull"
in_root layerswarm --server "http://$agent" status >"$WORK/status.txt" ||
  { cat "$WORK/status.txt"; fail "layerswarm status"; }
step "  pulled through the agent ($gets1 blob GETs upstream); layerswarm status:"
sed 's/^/    /' "$WORK/status.txt" | head -8
blobs=$(find "$ROOTFS/var/lib/layerswarm/agent/blobs" -type f | wc -l)
[ "$blobs" -ge 3 ] || fail "the cache holds $blobs blobs"
others=$(in_root find /var/lib/layerswarm/agent ! -user layerswarm)
[ -z "$others" ] || fail "files in the cache not owned by layerswarm: $others"
stop_agent

# 6. Upgrade, keeping the edited configuration and the cache.
step "apt-get install $upgrade (upgrade)"
in_root apt-get install -y -q --no-install-recommends -o Dpkg::Options::=--force-confdef \
  -o Dpkg::Options::=--force-confold $(debs pkg2) >>"$WORK/apt.log" 2>&1 ||
  { tail -20 "$WORK/apt.log"; fail "apt-get install (upgrade)"; }
for p in layerswarm-agent layerswarm-supernode layerswarm-cli; do
  got=$(in_root dpkg-query -W -f '${Version}' "$p")
  [ "$got" = "$upgrade" ] || fail "$p is at $got after the upgrade"
done
cmp -s "$ROOTFS/etc/layerswarm/agent.json" "$WORK/agent.json.edited" ||
  fail "the upgrade changed the edited /etc/layerswarm/agent.json"
[ -z "$(ls "$ROOTFS"/etc/layerswarm/*.dpkg-* 2>/dev/null)" ] || fail "dpkg left $(ls "$ROOTFS"/etc/layerswarm/*.dpkg-*)"
expect_stat /etc/layerswarm/agent.json "root:layerswarm 640"
start_agent 2
skopeo --insecure-policy copy -q --src-tls-verify=false "docker://$agent/install/app:latest" \
  "dir:$WORK/pull2"
[ "$(blob_gets)" -eq "$gets1" ] || fail "after the upgrade the registry saw $(( $(blob_gets) - gets1 )) more blob GETs"
diff -r "$WORK/pull1" "$WORK/pull2" >/dev/null || fail "the pulls before and after the upgrade differ"
grep -q 'source=cache' "$WORK/agent2.log" || fail "the agent served nothing from its cache"
step "  configuration kept, second pull from the cache (0 blob GETs upstream), byte-identical"
stop_agent

# 7. Remove keeps configuration and cache; purge removes them.
in_root apt-get remove -y -q layerswarm-agent layerswarm-supernode layerswarm-cli >>"$WORK/apt.log" 2>&1 ||
  fail "apt-get remove"
[ ! -e "$ROOTFS/usr/bin/layerswarm-agent" ] || fail "remove left /usr/bin/layerswarm-agent"
[ -f "$ROOTFS/etc/layerswarm/agent.json" ] || fail "remove took /etc/layerswarm/agent.json"
[ -d "$ROOTFS/var/lib/layerswarm/agent/blobs" ] || fail "remove took the cache"
in_root apt-get purge -y -q layerswarm-agent layerswarm-supernode layerswarm-cli >>"$WORK/apt.log" 2>&1 ||
  fail "apt-get purge"
[ ! -e "$ROOTFS/etc/layerswarm" ] || fail "purge left /etc/layerswarm: $(find "$ROOTFS/etc/layerswarm")"
[ ! -e "$ROOTFS/var/lib/layerswarm" ] || fail "purge left /var/lib/layerswarm"
if in_root dpkg-query -W -f '${Status}\n' layerswarm-agent 2>/dev/null | grep -q installed; then
  fail "layerswarm-agent still known to dpkg"
fi
step "  removed (configuration and cache kept), purged (both gone; the layerswarm user stays)"

# 8. The container image's recipe (packaging/docker/Dockerfile; no docker here): its RUN lines
#    in this root without the layerswarm user: the packages keep the image's fixed user ID.
in_root userdel layerswarm
mkdir -p "$ROOTFS/tmp/debs"
cp "$ROOTFS"/tmp/pkg2/layerswarm-{agent,supernode,cli}_*.deb "$ROOTFS/tmp/debs/"
sed -n 's/^RUN //p' packaging/docker/Dockerfile >"$ROOTFS/tmp/dockerfile-run.sh"
in_root sh -e /tmp/dockerfile-run.sh >>"$WORK/apt.log" 2>&1 || { tail -20 "$WORK/apt.log"; fail "the Dockerfile's RUN lines"; }
image_uid=$(sed -nE 's/.*useradd .*--uid ([0-9]+).*/\1/p' packaging/docker/Dockerfile)
[ "$(in_root id -u layerswarm)" = "$image_uid" ] || fail "the image's layerswarm user is $(in_root id -u layerswarm), not $image_uid"
expect_stat /var/lib/layerswarm/agent "layerswarm:layerswarm 750"
chroot --userspec="$image_uid:$image_uid" "$ROOTFS" layerswarm-agent --config /etc/layerswarm/agent.json --check-config
step "  the Dockerfile's RUN lines: installed, user $image_uid kept, the packaged configuration valid as that user"
step "passed"
