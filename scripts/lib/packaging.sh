# Shared by scripts/test-packages and scripts/release (sourced; needs $work and $repo).
# podman as it runs here: runc and the cgroupfs manager (crun and systemd's manager fail in
# some sandboxes), with bounded limits.
podman=(podman --runtime runc --cgroup-manager=cgroupfs)
run_opts=(--ulimit nofile=1024:1024 --ulimit nproc=1024:1024)

# The repository the image's source label names: the git remote, else this checkout.
source_url() {
  git -C "$repo" config --get remote.origin.url 2>/dev/null || echo "file://$repo"
}

install_missing() {
  local missing=()
  command -v podman >/dev/null || missing+=(podman)
  command -v runc >/dev/null || missing+=(runc)
  command -v debootstrap >/dev/null || missing+=(debootstrap)
  command -v lintian >/dev/null || missing+=(lintian)
  command -v systemd-analyze >/dev/null || missing+=(systemd)
  command -v curl >/dev/null || missing+=(curl)
  command -v objcopy >/dev/null || missing+=(binutils)
  if ((${#missing[@]})); then
    echo "== installing ${missing[*]}" >&2
    env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >/dev/null \
      || { apt-get update -q >/dev/null && env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >/dev/null; }
  fi
}

# The mirror this machine's apt takes $1 (the release) from, with its main component: from the
# deb822 .sources stanzas or the one-line sources.list entries (options in [...] skipped).
debian_mirror() {
  python3 - "$1" <<'PY'
import glob, re, sys
suite = sys.argv[1]
for path in sorted(glob.glob("/etc/apt/sources.list.d/*.sources")) + ["/etc/apt/sources.list"] + sorted(glob.glob("/etc/apt/sources.list.d/*.list")):
    try:
        text = open(path).read()
    except OSError:
        continue
    if path.endswith(".sources"):
        for stanza in re.split(r"\n\s*\n", text):
            fields = dict((k.strip().lower(), v.strip()) for k, _, v in (l.partition(":") for l in stanza.splitlines() if ":" in l and not l.startswith("#")))
            if suite in fields.get("suites", "").split() and "main" in fields.get("components", "").split() and fields.get("enabled", "yes") != "no":
                print(fields.get("uris", "").split()[0]); sys.exit(0)
    else:
        for line in text.splitlines():
            words = re.sub(r"\[[^\]]*\]", "", line).split()
            if len(words) >= 4 and words[0] == "deb" and words[2] == suite and "main" in words[3:]:
                print(words[1]); sys.exit(0)
PY
}

# A fresh Debian root of this machine's release (cached as a tarball in target/): minbase, with
# adduser (the package's postinst needs it) and systemd (for systemd-analyze verify --root).
debian_root() {
  local suite mirror tarball=$work/debian-root.tar
  if [[ ! -f $tarball ]]; then
    suite=$(. /etc/os-release && echo "$VERSION_CODENAME")
    # The mirror this machine's apt uses: no address is written into the repository.
    mirror=$(debian_mirror "$suite")
    [[ -n $mirror ]] || { echo "no Debian mirror for $suite in this machine's apt sources" >&2; return 1; }
    echo "== debootstrap $suite (once; cached in $tarball)" >&2
    rm -rf "$work/root.tmp"
    debootstrap --variant=minbase --include=adduser,ca-certificates,systemd "$suite" "$work/root.tmp" "$mirror" \
      >"$work/debootstrap.log" 2>&1 || { tail -20 "$work/debootstrap.log" >&2; return 1; }
    tar -C "$work/root.tmp" -cf "$tarball.tmp" . && mv "$tarball.tmp" "$tarball"
    rm -rf "$work/root.tmp"
  fi
  rm -rf "$1"
  mkdir -p "$1"
  tar -C "$1" -xf "$tarball"
}

# A runtime base made here, under a name of its own (never the distroless name the Containerfile
# defaults to, which a later `podman build .` would then take for the real one): glibc, libgcc
# and the CA bundle from a Debian root of this machine's release, and a nonroot user (65532),
# as distroless' cc image has.
local_base=localhost/waotp-runtime-base:latest
runtime_base() {
  local name=$local_base base=$work/runtime-base
  "${podman[@]}" image exists "$name" && return 0
  debian_root "$work/base-root"
  rm -rf "$base"
  mkdir -p "$base/lib/x86_64-linux-gnu" "$base/lib64" "$base/etc/ssl/certs" "$base/tmp" "$base/home/nonroot"
  chmod 1777 "$base/tmp"
  for lib in libc.so.6 libm.so.6 libgcc_s.so.1 ld-linux-x86-64.so.2; do
    cp -L "$work/base-root/lib/x86_64-linux-gnu/$lib" "$base/lib/x86_64-linux-gnu/"
  done
  cp -L "$work/base-root/lib64/ld-linux-x86-64.so.2" "$base/lib64/"
  cp -L "$work/base-root/etc/ssl/certs/ca-certificates.crt" "$base/etc/ssl/certs/"
  printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' \
    >"$base/etc/passwd"
  printf 'root:x:0:\nnonroot:x:65532:\n' >"$base/etc/group"
  chown 65532:65532 "$base/home/nonroot"
  tar -C "$base" -c . | "${podman[@]}" import --change 'USER 65532:65532' - "$name" >/dev/null
  rm -rf "$work/base-root" "$base"
}

# Builds the image from this tree's release binary (BINARY_FROM=prebuilt; no registry): $1 its
# tag, $2 the runtime base (default: the one made here).
build_image() {
  local ctx=$work/context version base=${2:-$local_base}
  version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
  rm -rf "$ctx"
  mkdir -p "$ctx/target/release" "$ctx/packaging/container"
  cp Containerfile .containerignore "$ctx/"
  cp packaging/container/config.toml "$ctx/packaging/container/"
  objcopy --strip-debug target/release/waotp "$ctx/target/release/waotp"
  "${podman[@]}" build -q --format docker --pull=never --build-arg BINARY_FROM=prebuilt \
    --build-arg RUNTIME_IMAGE="$base" \
    --build-arg VERSION="$version" --build-arg SOURCE_URL="$(source_url)" -t "$1" "$ctx" >/dev/null
}

