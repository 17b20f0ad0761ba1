#!/usr/bin/env bash
# Builds the images the service-backed tests start their PostgreSQL, NATS
# and Redis containers from, out of this machine's Debian packages (each
# server binary, the libraries `ldd` lists, and for PostgreSQL its share
# files and a cluster made by initdb), and starts the Docker engine when it
# is installed but not running. There is no image registry here: images are
# imported from a folder. Installs Debian's engine (docker.io) first when
# there is none and this runs as root. Idempotent: an image whose tag (the package's
# version) exists is not built again; each is also tagged `latest`, the tag
# the tests use unless EP_TEST_{POSTGRES,NATS,REDIS}_IMAGE names another.
#
# Usage: scripts/test-images.sh          (as root on this machine kind)
set -euo pipefail

log() { echo "test-images: $*" >&2; }

install_engine() {
  command -v dockerd >/dev/null && return 0
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
    log "no Docker engine: install one (Debian: apt-get install -y docker.io)"; return 1
  fi
  log "installing Debian's Docker engine (docker.io)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q docker.io >/dev/null \
    || { apt-get update -q >/dev/null && apt-get install -y -q docker.io >/dev/null; }
}

start_engine() {
  docker info >/dev/null 2>&1 && return 0
  log "starting the Docker engine (log: /var/log/dockerd.log)"
  # No iptables and no overlayfs on this machine kind.
  nohup dockerd --iptables=false --ip6tables=false --storage-driver=vfs \
    >/var/log/dockerd.log 2>&1 &
  for _ in $(seq 150); do docker info >/dev/null 2>&1 && return 0; sleep 0.2; done
  log "the Docker engine did not start: see /var/log/dockerd.log"; return 1
}

# A package's version as an image tag ([A-Za-z0-9_.-]).
tag_of() { dpkg-query -W -f='${Version}' "$1" | tr -c 'A-Za-z0-9_.-' '_'; }

# Copies files (following links) into ROOT at the same paths, with every
# library the ELF files among them need.
copy_with_libraries() {
  local root=$1; shift
  local file lib
  for file in "$@"; do
    mkdir -p "$root$(dirname "$file")"
    cp -L "$file" "$root$file"
    if ldd "$file" >/dev/null 2>&1; then
      { ldd "$file" | grep -o '/[^ ]*' || true; } | while read -r lib; do
        [ -e "$root$lib" ] && continue
        mkdir -p "$root$(dirname "$lib")"
        cp -L "$lib" "$root$lib"
      done
    fi
  done
}

# import ROOT NAME TAG CHANGE...: the folder as image NAME:TAG and NAME:latest.
import() {
  local root=$1 name=$2 tag=$3; shift 3
  local changes=()
  for c in "$@"; do changes+=(--change "$c"); done
  tar -C "$root" -c . | docker import "${changes[@]}" - "$name:$tag" >/dev/null
  docker tag "$name:$tag" "$name:latest"
  log "built $name:$tag ($(du -sh "$root" | cut -f1))"
}

have() { docker image inspect "$1" >/dev/null 2>&1; }

build_nats() {
  local tag; tag=$(tag_of nats-server)
  if have "ep-test/nats:$tag"; then docker tag "ep-test/nats:$tag" ep-test/nats:latest; return; fi
  local root; root=$(mktemp -d)
  copy_with_libraries "$root" /usr/sbin/nats-server
  import "$root" ep-test/nats "$tag" 'EXPOSE 4222' \
    'CMD ["/usr/sbin/nats-server", "-a", "0.0.0.0", "-p", "4222"]'
  rm -rf "$root"
}

build_redis() {
  local tag; tag=$(tag_of redis-server)
  if have "ep-test/redis:$tag"; then docker tag "ep-test/redis:$tag" ep-test/redis:latest; return; fi
  local root; root=$(mktemp -d)
  copy_with_libraries "$root" "$(command -v redis-server)"
  mkdir -p "$root/data"
  import "$root" ep-test/redis "$tag" 'EXPOSE 6379' 'WORKDIR /data' \
    "CMD [\"$(command -v redis-server)\", \"--bind\", \"0.0.0.0\", \"--protected-mode\", \"no\", \"--save\", \"\", \"--appendonly\", \"no\"]"
  rm -rf "$root"
}

build_postgres() {
  local major; major=$(ls /usr/lib/postgresql | sort -n | tail -1)
  local tag; tag=$(tag_of "postgresql-$major")
  if have "ep-test/postgres:$tag"; then docker tag "ep-test/postgres:$tag" ep-test/postgres:latest; return; fi
  local root; root=$(mktemp -d)
  chmod 755 "$root"
  local lib=/usr/lib/postgresql/$major share=/usr/share/postgresql/$major
  local files=()
  # All but the JIT (llvmjit and its bitcode need LLVM, 100 MB; jit = off).
  while IFS= read -r f; do files+=("$f"); done \
    < <(find "$lib" -type f ! -name 'llvmjit*' ! -path '*/bitcode/*')
  copy_with_libraries "$root" "${files[@]}"
  mkdir -p "$root$share" "$root/usr/share/zoneinfo"
  # The share files but the documentation and translations.
  tar -C / -c --exclude='*/man/*' --exclude='*.mo' "${share#/}" | tar -C "$root" -x
  cp -a /usr/share/zoneinfo/Etc /usr/share/zoneinfo/UTC "$root/usr/share/zoneinfo/"
  local uid gid; uid=$(id -u postgres); gid=$(id -g postgres)
  mkdir -p "$root/etc" "$root/tmp" "$root/data"
  chmod 1777 "$root/tmp"
  echo "postgres:x:$uid:$gid:PostgreSQL:/data:/bin/false" > "$root/etc/passwd"
  echo "postgres:x:$gid:" > "$root/etc/group"
  chown "$uid:$gid" "$root/data"
  # The cluster, made now (initdb refuses root): trust from any address, as
  # the pre-started server of this kind trusts 127.0.0.1.
  runuser -u postgres -- "$lib/bin/initdb" -D "$root/data" -U postgres --auth=trust \
    --encoding=UTF8 --locale=C >/dev/null
  echo "host all all 0.0.0.0/0 trust" >> "$root/data/pg_hba.conf"
  cat >> "$root/data/postgresql.conf" <<'CONF'
listen_addresses = '*'
unix_socket_directories = '/tmp'
timezone = 'UTC'
log_timezone = 'UTC'
# Test servers: a crash of the process loses nothing (the page cache
# survives it); a crash of the machine is not what these tests are about.
fsync = off
jit = off
max_connections = 200
CONF
  import "$root" ep-test/postgres "$tag" 'EXPOSE 5432' "USER $uid:$gid" \
    "CMD [\"$lib/bin/postgres\", \"-D\", \"/data\"]"
  rm -rf "$root"
}

install_engine
start_engine
build_nats
build_redis
build_postgres
