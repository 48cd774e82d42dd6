#!/usr/bin/env bash
# Builds every artifact into TARGET_DIR/packages/ (target/packages/ unless CARGO_TARGET_DIR
# says otherwise):
#   vigie-agent_VERSION_amd64.deb, vigie-collector_VERSION_amd64.deb   (dpkg-deb)
#   vigie-agent-VERSION-x64.msi                                          (wixl, from deploy/windows/)
#   vigie-agent-VERSION-x64.exe + install.ps1                            (sites without MSI tooling)
#   SHA256SUMS
#
# Needs: dpkg-dev (dpkg-shlibdeps), wixl, gcc-mingw-w64-x86-64, rustup target x86_64-pc-windows-gnu.
# VIGIE_PACKAGE_PROFILE=debug packages the debug builds (what the tests do: no release build in
# CI); the default is the release profile, and for the agent the size profile `agent`
# (Cargo.toml: its resident code is most of its memory on every clinic PC; docs/PERFORMANCE.md),
# linked on Linux with deploy/agent.order (agent/build.rs; regenerate: deploy/agent-order.sh).
#
# The .debs are made with dpkg-deb from this script rather than cargo-deb: same result
# (control, conffiles, maintainer scripts, md5sums, shlibs), nothing to compile first
# (`cargo install cargo-deb` is minutes of CI time on two cores), and the maintainer scripts
# sit next to the units in deploy/debian/ where a reviewer reads them.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

profile=${VIGIE_PACKAGE_PROFILE:-release}
case "$profile" in
  release) cargo_profile=release; out_subdir=release; agent_profile=agent; agent_subdir=agent ;;
  debug | dev) cargo_profile=dev; out_subdir=debug; agent_profile=dev; agent_subdir=debug ;;
  *) echo "VIGIE_PACKAGE_PROFILE must be release or debug" >&2; exit 2 ;;
esac

metadata=$(cargo metadata --format-version 1 --no-deps --locked)
target_dir=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["target_directory"])' "$metadata")
version=$(python3 -c 'import json,sys; print([p["version"] for p in json.loads(sys.argv[1])["packages"] if p["name"]=="vigie-agent"][0])' "$metadata")
out="$target_dir/packages"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
rm -rf "$out"
mkdir -p "$out"

echo "== build ($profile): vigie-agent, vigie-collector; vigie-agent.exe"
# --workspace, as tests/run.sh builds: the same feature set, so CI reuses that build.
cargo build --locked --profile "$cargo_profile" --workspace --bins
# The agent alone in its own profile: alone, it also links only the features it asks for
# (built with the workspace, it would get the collector's, e.g. tracing-subscriber's regex).
if [ "$agent_profile" != "$cargo_profile" ]; then
  cargo build --locked --profile "$agent_profile" -p vigie-agent --bins
  # agent/build.rs linked it with deploy/agent.order (hot code first: docs/PERFORMANCE.md);
  # fails when most of the list no longer names this build's symbols (then regenerate it).
  [ "${VIGIE_AGENT_ORDER:-}" = 0 ] || bash deploy/agent-order.sh --check
fi
cargo build --locked --profile "$agent_profile" -p vigie-agent --bins --target x86_64-pc-windows-gnu
linux_bin="$target_dir/$out_subdir"
agent_bin="$target_dir/$agent_subdir"
windows_exe="$target_dir/x86_64-pc-windows-gnu/$agent_subdir/vigie-agent.exe"

# Libraries the binary links, as Debian package dependencies (dpkg-shlibdeps wants a
# debian/control to exist, nothing more).
shlib_depends() {
  local dir="$work/shlibs"
  mkdir -p "$dir/debian"
  printf 'Source: vigie\n\nPackage: vigie\nArchitecture: amd64\n' >"$dir/debian/control"
  (cd "$dir" && dpkg-shlibdeps -O "$1" 2>/dev/null | sed -n 's/^shlibs:Depends=//p')
}

# make_deb NAME DESCRIPTION EXTRA_DEPENDS: stages deploy/debian/NAME/ (maintainer scripts,
# conffiles, lintian overrides) with the binary, unit and docs, then builds the .deb.
make_deb() {
  local name=$1 summary=$2 extra_depends=$3
  local stage="$work/$name" doc="$work/$name/usr/share/doc/$name"
  mkdir -p "$stage/DEBIAN" "$stage/usr/bin" "$stage/lib/systemd/system" "$doc" \
    "$stage/usr/share/lintian/overrides"
  local bin_dir=$linux_bin
  [ "$name" != vigie-agent ] || bin_dir=$agent_bin
  install -m 0755 "$bin_dir/$name" "$stage/usr/bin/$name"
  strip --strip-unneeded --remove-section=.comment --remove-section=.note "$stage/usr/bin/$name"
  sed -e "s|/usr/local/bin/$name|/usr/bin/$name|" \
      -e "s|^Documentation=.*|Documentation=file:///usr/share/doc/$name/README.md|" \
      "deploy/systemd/$name.service" >"$stage/lib/systemd/system/$name.service"
  chmod 0644 "$stage/lib/systemd/system/$name.service"
  install -m 0644 deploy/README.md "$doc/README.md"
  install -m 0644 "deploy/debian/copyright" "$doc/copyright"
  printf '%s (%s) stable; urgency=medium\n\n  * Release %s.\n\n -- Vigie <vigie@example.re>  %s\n' \
    "$name" "$version" "$version" "$(date -R -d "@${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct)}")" \
    | gzip -9n >"$doc/changelog.gz"
  chmod 0644 "$doc/changelog.gz"
  install -m 0644 "deploy/debian/$name/lintian-overrides" "$stage/usr/share/lintian/overrides/$name"
  for script in postinst prerm postrm; do
    install -m 0755 "deploy/debian/$name/$script" "$stage/DEBIAN/$script"
  done
  if [ -f "deploy/debian/$name/conffiles" ]; then
    install -m 0644 "deploy/debian/$name/conffiles" "$stage/DEBIAN/conffiles"
  fi
  "install_extra_$name" "$stage"
  local depends
  depends=$(shlib_depends "$stage/usr/bin/$name")
  cat >"$stage/DEBIAN/control" <<EOF
Package: $name
Version: $version
Architecture: amd64
Maintainer: Vigie <vigie@example.re>
Installed-Size: $(du -ks --exclude=DEBIAN "$stage" | cut -f1)
Depends: ${depends}${extra_depends:+, $extra_depends}
Section: admin
Priority: optional
Homepage: https://vigie.example.re/
Description: $summary
$(sed 's/^/ /' "deploy/debian/$name/description")
EOF
  (cd "$stage" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | sort -z | xargs -0 md5sum) \
    >"$stage/DEBIAN/md5sums"
  chmod 0644 "$stage/DEBIAN/md5sums" "$stage/DEBIAN/control"
  dpkg-deb --root-owner-group -Zxz --build "$stage" "$out/${name}_${version}_amd64.deb" >/dev/null
  echo "   $out/${name}_${version}_amd64.deb"
}

install_extra_vigie-agent() {
  local stage=$1
  install -d -m 0755 "$stage/etc/vigie" "$stage/usr/share/doc/vigie-agent/examples"
  install -m 0644 deploy/agent-package.toml "$stage/etc/vigie/agent.toml"
  install -m 0644 deploy/agent.toml "$stage/usr/share/doc/vigie-agent/examples/agent.toml"
}

install_extra_vigie-collector() {
  local stage=$1
  install -d -m 0755 "$stage/usr/share/doc/vigie-collector/examples"
  install -m 0644 deploy/collector-escalation.toml \
    "$stage/usr/share/doc/vigie-collector/examples/collector-escalation.toml"
}

echo "== .deb packages"
make_deb vigie-agent "Vigie monitoring agent for clinic PCs and servers" ""
make_deb vigie-collector "Vigie collector: receives, stores and judges agent reports" "adduser"

echo "== MSI (wixl)"
msi_stage="$work/msi"
mkdir -p "$msi_stage"
install -m 0755 "$windows_exe" "$msi_stage/vigie-agent.exe"
x86_64-w64-mingw32-strip "$msi_stage/vigie-agent.exe"
cp deploy/windows/vigie-agent.wxs "$msi_stage/"
# wixl prints GLib warnings for attributes it ignores; fail on anything else it says.
(cd "$msi_stage" && wixl -a x64 -D Version="$version" -o "$out/vigie-agent-$version-x64.msi" vigie-agent.wxs)
echo "   $out/vigie-agent-$version-x64.msi"
install -m 0755 "$msi_stage/vigie-agent.exe" "$out/vigie-agent-$version-x64.exe"
install -m 0644 deploy/windows/install.ps1 "$out/install.ps1"

(cd "$out" && sha256sum -- *.deb *.msi *.exe install.ps1 >SHA256SUMS)
echo "== $out/SHA256SUMS"
cat "$out/SHA256SUMS"
cd "$root"
