#!/bin/sh
# Builds the local apt repositories the tests use, so no test depends on what
# Debian's mirror publishes today. Output is reproducible (SOURCE_DATE_EPOCH).
#
# Usage: build.sh OUTDIR
# Repositories (flat, "deb [trusted=yes] file:OUTDIR/NAME ./"):
#   v1       testapp 1.0, testkernel 1.0, testbroken 1.0, testbulk 1.0 (the installed base)
#   app2     testapp 2.0 (conffile changed; no kernel change)
#   kernel2  testapp 2.0, testkernel 2.0 (a new kernel under /usr/lib/modules and /boot)
#   broken   testapp 2.0, testbroken 2.0 (its postinst fails)
#   bulk2    testbulk 2.0 (many files; for the staging benchmark)
#   web1-3   testweb 1.0, 2.0, 3.0 (a web server for containers; 3.0's postinst breaks it)
set -eu
out=${1:?usage: build.sh OUTDIR}
export SOURCE_DATE_EPOCH=1700000000
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$out/debs"

# pkg NAME VERSION: starts a package tree in $work/NAME_VERSION and echoes its path.
pkg() {
  d="$work/$1_$2"
  mkdir -p "$d/DEBIAN"
  cat > "$d/DEBIAN/control" <<CTL
Package: $1
Version: $2
Architecture: all
Maintainer: Speedia host tests <tests@speedia.invalid>
Description: Speedia host test package $1
Priority: optional
Section: misc
CTL
  echo "$d"
}
finish() {
  find "$1" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
  dpkg-deb --root-owner-group -Zgzip --build "$1" "$out/debs/" >/dev/null
}

for v in 1.0 2.0; do
  d=$(pkg speedia-testapp $v)
  mkdir -p "$d/usr/share/speedia-testapp" "$d/etc"
  echo "$v" > "$d/usr/share/speedia-testapp/version"
  printf '# speedia-testapp %s\nlisten=8080\nworkers=%s\n' "$v" "${v%%.*}" > "$d/etc/speedia-testapp.conf"
  echo /etc/speedia-testapp.conf > "$d/DEBIAN/conffiles"
  finish "$d"

  n=${v%%.*}
  kver="6.1.0-speedia$n"
  d=$(pkg speedia-testkernel $v)
  mkdir -p "$d/boot" "$d/usr/lib/modules/$kver/kernel"
  printf 'fake kernel image %s\n' "$kver" > "$d/boot/vmlinuz-$kver"
  printf 'fake initrd %s\n' "$kver" > "$d/boot/initrd.img-$kver"
  printf 'fake kernel image %s\n' "$kver" > "$d/usr/lib/modules/$kver/vmlinuz"
  : > "$d/usr/lib/modules/$kver/modules.dep"
  finish "$d"

  d=$(pkg speedia-testbroken $v)
  mkdir -p "$d/usr/share/speedia-testbroken"
  echo "$v" > "$d/usr/share/speedia-testbroken/version"
  if [ "$v" = 2.0 ]; then
    printf '#!/bin/sh\necho "speedia-testbroken: postinst fails on purpose" >&2\nexit 1\n' > "$d/DEBIAN/postinst"
    chmod 755 "$d/DEBIAN/postinst"
  fi
  finish "$d"

  d=$(pkg speedia-testbulk $v)
  mkdir -p "$d/usr/share/speedia-testbulk"
  i=0
  while [ $i -lt 400 ]; do
    # 64 KiB of text per file, different in each version.
    awk -v s="$v-$i" 'BEGIN { for (j = 0; j < 1024; j++) printf "%s line %06d %040d\n", s, j, j * 7919 }' \
      > "$d/usr/share/speedia-testbulk/f$i"
    i=$((i + 1))
  done
  finish "$d"
done

# speedia-testweb: a small web server (busybox httpd, which the container
# brings) serving /srv/www on the port its conffile names; 3.0's postinst
# breaks that conffile, so the service no longer starts.
for v in 1.0 2.0 3.0; do
  d=$(pkg speedia-testweb $v)
  mkdir -p "$d/usr/bin" "$d/etc" "$d/usr/share/speedia-testweb"
  cat > "$d/usr/bin/speedia-testweb" <<'SRV'
#!/bin/sh
. /etc/speedia-testweb.conf
case "$port" in ''|*[!0-9]*) echo "speedia-testweb: bad port '$port'" >&2; exit 1 ;; esac
exec busybox httpd -f -p "$port" -h /srv/www
SRV
  chmod 755 "$d/usr/bin/speedia-testweb"
  printf '# speedia-testweb\nport=8080\n' > "$d/etc/speedia-testweb.conf"
  echo /etc/speedia-testweb.conf > "$d/DEBIAN/conffiles"
  echo "$v" > "$d/usr/share/speedia-testweb/version"
  if [ "$v" = 3.0 ]; then
    printf '#!/bin/sh\nsed -i "s/^port=.*/port=broken/" /etc/speedia-testweb.conf\n' > "$d/DEBIAN/postinst"
    chmod 755 "$d/DEBIAN/postinst"
  fi
  finish "$d"
done

repo() {
  name=$1; shift
  rm -rf "${out:?}/${name:?repo: no name}"; mkdir -p "$out/$name"
  for p in "$@"; do ln "$out/debs/$p" "$out/$name/$p"; done
  (cd "$out/$name" && dpkg-scanpackages --multiversion . /dev/null 2>/dev/null > Packages)
}
repo v1 speedia-testapp_1.0_all.deb speedia-testkernel_1.0_all.deb speedia-testbroken_1.0_all.deb speedia-testbulk_1.0_all.deb
repo app2 speedia-testapp_2.0_all.deb
repo kernel2 speedia-testapp_2.0_all.deb speedia-testkernel_2.0_all.deb
repo broken speedia-testapp_2.0_all.deb speedia-testbroken_2.0_all.deb
repo bulk2 speedia-testbulk_2.0_all.deb
repo web1 speedia-testweb_1.0_all.deb
repo web2 speedia-testweb_2.0_all.deb
repo web3 speedia-testweb_3.0_all.deb
