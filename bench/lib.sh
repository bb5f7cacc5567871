# Shared by bench/run and bench/ab (sourced): tools, temp dir and process bookkeeping, the
# nginx upstream, sessiongate instances, logging in, and wrk runs that append result rows.
# shellcheck shell=bash

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH=$ROOT/bench
DURATION=${BENCH_DURATION:-10}
WARMUP=${BENCH_WARMUP:-2}
ROUNDS=${BENCH_ROUNDS:-3}
CONNS=${BENCH_CONNECTIONS:-50}
THREADS=${BENCH_THREADS:-2}
PG_URL=${BENCH_PG_URL:-postgres://postgres@127.0.0.1:5432/test}
REDIS_URL=${BENCH_REDIS_URL:-redis://127.0.0.1:6379}
VENV=${XDG_CACHE_HOME:-$HOME/.cache}/sessiongate-bench-venv

log() { printf '\033[1m[bench]\033[0m %s\n' "$*" >&2; }
die() { printf '[bench] error: %s\n' "$*" >&2; exit 1; }

# --- tools --------------------------------------------------------------------------------------
APT_UPDATED=0
apt_install() {
  [ "$(id -u)" = 0 ] || die "missing Debian packages: $* (install them, or run as root)"
  if [ "$APT_UPDATED" = 0 ]; then apt-get update -qq; APT_UPDATED=1; fi
  log "installing Debian packages: $*"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}
need_tools() { # extra Debian packages to check by command: cmd=package...
  local need=() pair
  command -v wrk >/dev/null || need+=(wrk)
  command -v curl >/dev/null || need+=(curl)
  command -v python3 >/dev/null || need+=(python3 python3-venv)
  NGINX=$(command -v nginx || { [ -x /usr/sbin/nginx ] && echo /usr/sbin/nginx; } || true)
  [ -n "$NGINX" ] || need+=(nginx)
  for pair in "$@"; do command -v "${pair%%=*}" >/dev/null || need+=("${pair#*=}"); done
  [ ${#need[@]} = 0 ] || apt_install "${need[@]}"
  NGINX=${NGINX:-$(command -v nginx || echo /usr/sbin/nginx)}
  TOOL=(python3 "$BENCH/tool.py")
}
build_release() { # sets SG
  command -v cargo >/dev/null || die "cargo not found (install Rust)"
  log "building sessiongate (release)"
  (cd "$ROOT" && cargo build --release --bins --example bench_bare_proxy --quiet)
  local target
  target=$(cd "$ROOT" && cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
  [ -x "$target/release/sessiongate" ] || die "no binary at $target/release/sessiongate"
  # A copy: another build in the same target directory must not swap it out mid-run.
  cp "$target/release/sessiongate" "$WORK/sessiongate"
  SG=$WORK/sessiongate
  cp "$target/release/examples/bench_bare_proxy" "$WORK/bare-proxy"
  BARE=$WORK/bare-proxy
}

# --- bookkeeping --------------------------------------------------------------------------------
WORK=$(mktemp -d "${TMPDIR:-/tmp}/sessiongate-bench.XXXXXX")
RESULTS=$WORK/results.tsv
: >"$RESULTS"
PIDS=()
RUN_ID=$$_$RANDOM
PG_SCHEMA=sgbench_$RUN_ID
REDIS_PREFIX=sgbench:$RUN_ID:
PG_CREATED=0
USES_REDIS=0
cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  if [ "$PG_CREATED" = 1 ]; then psql "$PG_URL" -qc "DROP SCHEMA IF EXISTS $PG_SCHEMA CASCADE" >/dev/null 2>&1 || true; fi
  if [ "$USES_REDIS" = 1 ]; then # only this run's keys: never FLUSHALL a shared Redis
    redis-cli -u "$REDIS_URL" --scan --pattern "${REDIS_PREFIX}*" 2>/dev/null |
      xargs -r -n 500 redis-cli -u "$REDIS_URL" del >/dev/null 2>&1 || true
  fi
  if [ "${BENCH_KEEP:-0}" = 1 ]; then log "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Sessiongate reads SESSIONGATE_* as configuration and RUST_LOG as its log filter: the bench runs
# it with neither, so it logs at its default level (info).
SG_ENV=(env -u RUST_LOG)
while IFS= read -r name; do SG_ENV+=(-u "$name"); done < <(compgen -e | grep '^SESSIONGATE_' || true)

PORTS=()
port() { # sets PORT to a free loopback port
  [ ${#PORTS[@]} -gt 0 ] || read -r -a PORTS <<<"$(python3 "$BENCH/tool.py" ports 16)"
  PORT=${PORTS[0]}
  PORTS=("${PORTS[@]:1}")
}
spawn() { # log-file cmd... ; sets LAST_PID
  local out=$1
  shift
  "$@" >"$out" 2>&1 &
  LAST_PID=$!
  PIDS+=("$LAST_PID")
}
stop() { # pid ; also forgets it, so cleanup never signals a reused pid
  kill "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
  local keep=() p
  for p in "${PIDS[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done
  PIDS=("${keep[@]+"${keep[@]}"}")
}
rss_mb() { awk '/^VmRSS/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status"; }

# --- nginx --------------------------------------------------------------------------------------
# Access logs off (sessiongate writes none); keep-alive everywhere.
nginx_start() { # name conf-body ; sets LAST_PID
  local dir=$WORK/$1
  mkdir -p "$dir"
  cat >"$dir/nginx.conf" <<EOF
worker_processes auto;
daemon off;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $dir/body; proxy_temp_path $dir/proxy;
  fastcgi_temp_path $dir/fastcgi; uwsgi_temp_path $dir/uwsgi; scgi_temp_path $dir/scgi;
  keepalive_requests 1000000;
  $2
}
EOF
  spawn "$dir/stderr.log" "$NGINX" -p "$dir/" -c "$dir/nginx.conf" -e "$dir/error.log"
}
upstream_start() { # the upstream: a static 200 for any path; sets UP_PORT
  port
  UP_PORT=$PORT
  nginx_start upstream "server { listen 127.0.0.1:$UP_PORT; default_type text/plain; location / { return 200 \"ok\\n\"; } }"
  "${TOOL[@]}" wait "http://127.0.0.1:$UP_PORT/api/bench" 20 "$LAST_PID"
}

# --- sessiongate --------------------------------------------------------------------------------
BENCH_PASSWORD=bench-$RANDOM-$RANDOM-password
sg_config() { # dir port store [extra toml] : /api/ proxied to the upstream, auth required
  local dir=$1 port=$2 store=$3 url=""
  case $store in
    redis) url=$REDIS_URL USES_REDIS=1 ;;
    postgres)
      url="$PG_URL?options=-c%20search_path%3D$PG_SCHEMA"
      if [ "$PG_CREATED" = 0 ]; then psql "$PG_URL" -qc "CREATE SCHEMA $PG_SCHEMA" >/dev/null && PG_CREATED=1; fi
      ;;
  esac
  mkdir -p "$dir/data"
  cat >"$dir/sessiongate.toml" <<EOF
public_url = "http://127.0.0.1:$port"
data_dir = "$dir/data"
[server]
listen = "127.0.0.1:$port"
[spa]
dir = "off"
[[routes]]
prefix = "/api/"
upstream = "http://127.0.0.1:${UP_PORT:?upstream first}"
auth = "required"
[auth]
bootstrap_admin = false
[session]
store = "$store"
url = "$url"
key_prefix = "$REDIS_PREFIX${dir##*/}:"
[rate_limit]
login_per_ip = "1000000/1s"
login_per_account = "1000000/1s"
${4:-}
EOF
}
sg_start() { # name store [extra toml] ; runs $SG; sets PORT, LAST_PID; creates user `bench`
  local dir=$WORK/sg-$1
  port
  sg_config "$dir" "$PORT" "$2" "${3:-}"
  printf '%s\n' "$BENCH_PASSWORD" | "${SG_ENV[@]}" "$SG" -c "$dir/sessiongate.toml" user add bench --password-stdin >"$dir/user-add.log" 2>&1 ||
    { cat "$dir/user-add.log" >&2; die "sessiongate user add failed ($1)"; }
  spawn "$dir/server.log" "${SG_ENV[@]}" ${SG_EXTRA_ENV:-} "$SG" -c "$dir/sessiongate.toml" serve
  "${TOOL[@]}" wait "http://127.0.0.1:$PORT/healthz" 30 "$LAST_PID" || { cat "$dir/server.log" >&2; exit 1; }
}
# Log in through the auth API as an SPA would (CSRF cookie + header); prints "session csrf-cookie".
login() { # auth-base-url user password
  local jar=$WORK/jar.$RANDOM token
  token=$(curl -sf -c "$jar" -b "$jar" "$1/csrf" | python3 -c 'import json,sys; print(json.load(sys.stdin)["csrfToken"])')
  curl -sf -o /dev/null -c "$jar" -b "$jar" -H "X-CSRFToken: $token" -H 'Content-Type: application/json' \
    -d "{\"username\":\"$2\",\"password\":\"$3\"}" "$1/login" || die "login at $1 failed"
  awk -F'\t' '$6 == "sessionid" { s = $7 } $6 == "csrftoken" { c = $7 } END { print s, c }' "$jar"
  rm -f "$jar"
}

# --- wrk ----------------------------------------------------------------------------------------
wrk_scripts() {
  local s
  for s in plain login paced; do cat "$BENCH/wrk/$s.lua" "$BENCH/wrk/report.lua" >"$WORK/$s.lua"; done
}
ROUND=0
measure() { # label url script threads conns seconds [wrk args...] ; appends a row to $RESULTS
  local label=$1 url=$2 script=$3 t=$4 c=$5 d=$6 out line
  shift 6
  [ -f "$WORK/$script.lua" ] || wrk_scripts
  out=$(wrk -t"$t" -c"$c" -d"${d}s" --timeout 10s -s "$WORK/$script.lua" "$@" "$url" 2>&1) || true
  printf '%s\n' "$out" >>"$WORK/wrk-$label.log"
  line=$(grep '^RESULT ' <<<"$out" | head -1) || die "wrk gave no result for $label: $out"
  printf '%s %s %s\n' "$ROUND" "$label" "${line#RESULT }" >>"$RESULTS"
  local req dur non2xx errs p99
  read -r _ req dur non2xx errs _ p99 _ <<<"$line"
  log "  $label: $(awk -v n="$req" -v d="$dur" 'BEGIN { printf "%.0f", n / (d / 1e6) }') req/s, p99 $(awk -v p="$p99" 'BEGIN { printf "%.1f", p / 1000 }') ms$([ "$non2xx$errs" = 00 ] || echo ", $non2xx non-2xx, $errs socket errors")"
}
bench_get() { # label url [wrk args...] : warm-up, then the measured run
  local label=$1 url=$2
  shift 2
  wrk -t"$THREADS" -c"$CONNS" -d"${WARMUP}s" "$@" "$url" >/dev/null 2>&1 || true
  measure "$label" "$url" plain "$THREADS" "$CONNS" "$DURATION" "$@"
}
