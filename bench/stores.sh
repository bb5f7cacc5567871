#!/usr/bin/env bash
# whoami throughput per session store, side by side in one run, plus Redis bytes per session.
# Writes bench/STORES.md (override with OUT=...). Not a test: numbers depend on the machine.
#
#   bench/stores.sh                      # defaults: 10 s per case, 64 connections, 2 wrk threads,
#                                        # every case twice (rounds), best round reported
#   DURATION=30s CONNS=128 ROUNDS=3 bench/stores.sh
#   CASES="memory redis" BIN=/tmp/other-build OUT=/tmp/other.md bench/stores.sh
#
# Needs: PostgreSQL at $PG_URL (default postgres://postgres@127.0.0.1:5432/test; a throwaway
# schema is created and dropped), redis-server (a private one is started on a free port, so the
# sizing numbers are not disturbed by other users of a shared Redis), curl, python3, and
# Debian's `wrk` (installed with apt-get when missing). Builds the release binary.
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/root/.cache/sessiongate-target}"
PG_URL="${PG_URL:-postgres://postgres@127.0.0.1:5432/test}"
DURATION="${DURATION:-10s}"
CONNS="${CONNS:-64}"
THREADS="${THREADS:-2}"
OUT="${OUT:-bench/STORES.md}"
ROUNDS="${ROUNDS:-2}"
SIZING_USERS="${SIZING_USERS:-200}"
SIZING_TIME="${SIZING_TIME:-5s}"
PASSWORD='bench password 12345'
# A typical browser User-Agent: it is stored in every session, so it counts in the sizing.
UA='Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36'
# A fixed CSRF secret (32 chars): the raw form is accepted as the token, so wrk can log in.
CSRF='benchbenchbenchbenchbenchbench12'

log() { printf '>> %s\n' "$*" >&2; }

if ! command -v wrk >/dev/null; then
    log "installing wrk (Debian package)"
    if [ "$(id -u)" -eq 0 ]; then apt-get install -y wrk >/dev/null; else sudo apt-get install -y wrk >/dev/null; fi
fi
for tool in curl python3 psql redis-server redis-cli; do
    command -v "$tool" >/dev/null || { echo "missing: $tool" >&2; exit 1; }
done

# BIN=path benchmarks that binary instead of building one (e.g. to compare two builds).
if [ -z "${BIN:-}" ]; then
    log "building the release binary"
    cargo build --release --quiet --bin sessiongate
    BIN="$CARGO_TARGET_DIR/release/sessiongate"
fi
LOAD_BEFORE="$(cut -d' ' -f1-3 /proc/loadavg)"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

WORK="$(mktemp -d)"
SCHEMA="sg_bench_$(date +%s)_$$"
REDIS_PORT="$(free_port)"
REDIS_PID=""
GW_PID=""
cleanup() {
    [ -n "$GW_PID" ] && kill "$GW_PID" 2>/dev/null && wait "$GW_PID" 2>/dev/null || true
    [ -n "$REDIS_PID" ] && kill "$REDIS_PID" 2>/dev/null && wait "$REDIS_PID" 2>/dev/null || true
    psql -q "$PG_URL" -c "DROP SCHEMA IF EXISTS $SCHEMA CASCADE" >/dev/null 2>&1 || true
    rm -rf "$WORK"
}
trap cleanup EXIT

log "private redis-server on port $REDIS_PORT"
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no \
    --maxmemory-policy noeviction --logfile "$WORK/redis.log" &
REDIS_PID=$!
RCLI=(redis-cli -p "$REDIS_PORT")
for _ in $(seq 50); do "${RCLI[@]}" ping >/dev/null 2>&1 && break; sleep 0.1; done
REDIS_URL="redis://127.0.0.1:$REDIS_PORT"

psql -q "$PG_URL" -c "CREATE SCHEMA $SCHEMA" >/dev/null
PG_SCHEMA_URL="$PG_URL?options=-c%20search_path%3D$SCHEMA"

# write_config DIR PORT SESSION_STORE SESSION_URL USERS_STORE USERS_URL [KEY_PREFIX]
write_config() {
    cat >"$1/sessiongate.toml" <<EOF
public_url = "http://127.0.0.1:$2"
data_dir = "$1/data"
secret_key = "bench-secret-bench-secret-bench-secret"

[server]
listen = "127.0.0.1:$2"

[auth]
bootstrap_admin = false

[session]
store = "$3"
url = "$4"
key_prefix = "${7:-sgbench:}"

[users]
store = "$5"
url = "$6"
argon2 = { memory_kib = 1024, iterations = 1, parallelism = 1 }

[rate_limit]
login_per_ip = "1000000/1s"
login_per_account = "1000000/1s"
EOF
}

start_gateway() { # DIR PORT
    RUST_LOG=warn "$BIN" serve -c "$1/sessiongate.toml" >"$1/gateway.log" 2>&1 &
    GW_PID=$!
    for _ in $(seq 100); do
        curl -fs "http://127.0.0.1:$2/healthz" >/dev/null 2>&1 && return 0
        kill -0 "$GW_PID" 2>/dev/null || { cat "$1/gateway.log" >&2; exit 1; }
        sleep 0.1
    done
    echo "gateway did not start" >&2; cat "$1/gateway.log" >&2; exit 1
}

stop_gateway() {
    kill "$GW_PID" 2>/dev/null || true
    wait "$GW_PID" 2>/dev/null || true
    GW_PID=""
}

add_user() { # DIR NAME
    printf '%s\n' "$PASSWORD" | RUST_LOG=warn "$BIN" user add "$2" --password-stdin -c "$1/sessiongate.toml" >/dev/null
}

login_cookie() { # PORT USER -> session cookie value
    local jar="$WORK/jar.$1"
    curl -fs -c "$jar" -b "csrftoken=$CSRF" -A "$UA" \
        -H "X-CSRFToken: $CSRF" -H 'Content-Type: application/json' \
        -d "{\"username\":\"$2\",\"password\":\"$PASSWORD\"}" "http://127.0.0.1:$1/api/auth/login" >/dev/null
    awk '$6 == "sessionid" { print $7 }' "$jar"
}

RESULTS="$WORK/results.tsv"
: >"$RESULTS"

# run_case LABEL SESSION_STORE SESSION_URL USERS_STORE USERS_URL
run_case() {
    local label="$1" dir="$WORK/$1" port user cookie out
    port="$(free_port)"
    user="bench_$1"
    mkdir -p "$dir"
    write_config "$dir" "$port" "$2" "$3" "$4" "$5"
    [ -e "$dir/.user" ] || { add_user "$dir" "$user" && touch "$dir/.user"; }
    start_gateway "$dir" "$port"
    cookie="$(login_cookie "$port" "$user")"
    [ -n "$cookie" ] || { echo "login failed for $label" >&2; cat "$dir/gateway.log" >&2; exit 1; }
    local url="http://127.0.0.1:$port/api/auth/session"
    [ "$(curl -s -o /dev/null -w '%{http_code}' -b "sessionid=$cookie" "$url")" = 200 ] || { echo "whoami failed" >&2; exit 1; }
    log "$label: warm-up, then wrk -t$THREADS -c$CONNS -d$DURATION"
    wrk -t1 -c8 -d2s -H "Cookie: sessionid=$cookie" -H "User-Agent: $UA" "$url" >/dev/null
    out="$dir/wrk.$RANDOM.txt"
    wrk -t"$THREADS" -c"$CONNS" -d"$DURATION" --latency -H "Cookie: sessionid=$cookie" -H "User-Agent: $UA" "$url" >"$out"
    if grep -q 'Non-2xx' "$out"; then echo "$label: non-2xx answers:" >&2; cat "$out" >&2; exit 1; fi
    local rps p50 p99
    rps="$(awk '/^Requests\/sec/ { print $2 }' "$out")"
    p50="$(awk '$1 == "50%" { print $2 }' "$out")"
    p99="$(awk '$1 == "99%" { print $2 }' "$out")"
    printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$label" "$2" "$4" "$rps" "$p50" "$p99" >>"$RESULTS"
    log "$label: $rps req/s (p50 $p50, p99 $p99)"
    stop_gateway
}

# Rounds interleave the cases, so a burst of other load on the machine hits all of them alike.
# CASES selects some of them (keep memory: the ratios are relative to it).
CASES="${CASES:-memory sqlite postgres redis memory-pg pg-pg redis-pg}"
for round in $(seq "$ROUNDS"); do
    log "round $round of $ROUNDS"
    for c in $CASES; do
        case "$c" in
            memory) run_case memory memory "" sqlite "" ;;
            sqlite) run_case sqlite sqlite "" sqlite "" ;;
            postgres) run_case postgres postgres "$PG_SCHEMA_URL" sqlite "" ;;
            redis) run_case redis redis "$REDIS_URL" sqlite "" ;;
            # The scale-out shapes, and the ceiling an in-process session cache could reach there.
            memory-pg) run_case memory-pg memory "" postgres "$PG_SCHEMA_URL" ;;
            pg-pg) run_case pg-pg postgres "$PG_SCHEMA_URL" postgres "$PG_SCHEMA_URL" ;;
            redis-pg) run_case redis-pg redis "$REDIS_URL" postgres "$PG_SCHEMA_URL" ;;
            *) echo "unknown case: $c" >&2; exit 2 ;;
        esac
    done
done
# Best round per case, in first-seen order.
awk -F'\t' '!($1 in best) { order[n++] = $1 } !($1 in best) || $4 > best[$1] { best[$1] = $4; row[$1] = $0 }
    END { for (i = 0; i < n; i++) print row[order[i]] }' "$RESULTS" >"$RESULTS.best"
mv "$RESULTS.best" "$RESULTS"

# ---- Redis sizing ---------------------------------------------------------------------------
log "Redis sizing: one session's keys, then many sessions for $SIZING_USERS users"
dir="$WORK/sizing"
port="$(free_port)"
mkdir -p "$dir"
write_config "$dir" "$port" redis "$REDIS_URL" sqlite "" sgsize:
add_user "$dir" sizing_one
start_gateway "$dir" "$port"
login_cookie "$port" sizing_one >/dev/null
# The keys of exactly one session (rate-limit counters excluded).
mapfile -t KEYS < <("${RCLI[@]}" --scan --pattern 'sgsize:*' | grep -v '^sgsize:rl:' | sort)
ONE_TOTAL=0
ONE_ROWS=""
for k in "${KEYS[@]}"; do
    bytes="$("${RCLI[@]}" memory usage "$k" samples 0)"
    ONE_TOTAL=$((ONE_TOTAL + bytes))
    kind="$(printf '%s' "$k" | sed -E 's/^sgsize:\{u:[0-9]+\}:s:.*/record `{u:U}:s:ID`/; s/^sgsize:\{u:[0-9]+\}:idx$/user index `{u:U}:idx`/; s/^sgsize:t:.*/token pointer `t:HASH`/; s/^sgsize:i:.*/id pointer `i:ID`/')"
    ONE_ROWS+="| $kind | $("${RCLI[@]}" type "$k") | $bytes |"$'\n'
done
stop_gateway

# Many sessions: users with a handful of sessions each, like real traffic.
for i in $(seq "$SIZING_USERS"); do add_user "$dir" "u$i"; done
start_gateway "$dir" "$port"
cat >"$WORK/login.lua" <<EOF
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Cookie"] = "csrftoken=$CSRF"
wrk.headers["X-CSRFToken"] = "$CSRF"
wrk.headers["User-Agent"] = "$UA"
request = function()
  local body = string.format('{"username":"u%d","password":"$PASSWORD"}', math.random(1, $SIZING_USERS))
  return wrk.format(nil, nil, nil, body)
end
EOF
"${RCLI[@]}" memory purge >/dev/null 2>&1 || true
BEFORE="$("${RCLI[@]}" info memory | awk -F: '/^used_memory:/ { print $2 }' | tr -d '\r')"
KEYS_BEFORE="$("${RCLI[@]}" dbsize)"
wrk -t1 -c4 -d"$SIZING_TIME" -s "$WORK/login.lua" "http://127.0.0.1:$port/api/auth/login" >"$dir/wrk-login.txt"
if grep -q 'Non-2xx' "$dir/wrk-login.txt"; then echo "sizing logins failed:" >&2; cat "$dir/wrk-login.txt" >&2; exit 1; fi
AFTER="$("${RCLI[@]}" info memory | awk -F: '/^used_memory:/ { print $2 }' | tr -d '\r')"
RSS="$("${RCLI[@]}" info memory | awk -F: '/^used_memory_rss:/ { print $2 }' | tr -d '\r')"
SESSIONS="$("${RCLI[@]}" --scan --pattern 'sgsize:{u:*}:s:*' | wc -l)"
SESSIONS=$((SESSIONS - 1)) # sizing_one's
KEYS_AFTER="$("${RCLI[@]}" dbsize)"
stop_gateway
PER_SESSION=$(((AFTER - BEFORE) / SESSIONS))
PER_GB=$((1000000000 / PER_SESSION))

# ---- Report ---------------------------------------------------------------------------------
MEM_RPS="$(awk -F'\t' '$1 == "memory" { print $4 }' "$RESULTS")"
{
    echo "# Session store benchmark: whoami throughput"
    echo
    echo "Generated by \`bench/stores.sh\` on $(date -u +%Y-%m-%d) — $(nproc) CPU(s), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'),"
    echo "$(redis-server --version | awk '{ print $1, $2, $3 }'), $(psql -At "$PG_URL" -c 'SHOW server_version' | cut -d' ' -f1 | sed 's/^/PostgreSQL /'), release build,"
    echo "\`wrk -t$THREADS -c$CONNS -d$DURATION\` on \`GET /api/auth/session\` with one logged-in session cookie, best of"
    echo "$ROUNDS interleaved rounds (load average before the run: $LOAD_BEFORE);"
    echo "gateway, stores and wrk share the machine over loopback, so the numbers are indicative and only"
    echo "the ratios between rows are meant to travel. Each whoami reads the session and the user"
    echo "(the sliding-expiry write happens at most once a minute per session, so none here); the"
    echo "Redis store reads only the session record per lookup (one round trip: each instance caches"
    echo "where a token's record is, an immutable fact); \"memory\" sessions are the ceiling any"
    echo "in-process session cache could reach."
    echo
    echo "| sessions | users | req/s | vs memory | p50 | p99 |"
    echo "|---|---|---:|---:|---:|---:|"
    while IFS=$'\t' read -r label sstore ustore rps p50 p99; do
        ratio="$(python3 -c "print(f'{$rps / $MEM_RPS:.2f}×')")"
        printf '| %s | %s | %.0f | %s | %s | %s |\n' "$sstore" "$ustore" "$rps" "$ratio" "$p50" "$p99"
    done <"$RESULTS"
    echo
    echo "## Redis: bytes per session"
    echo
    echo "One session (\`MEMORY USAGE key SAMPLES 0\`; a browser User-Agent of ${#UA} bytes is stored with it):"
    echo
    echo "| key | type | bytes |"
    echo "|---|---|---:|"
    printf '%s' "$ONE_ROWS"
    echo "| **total** | | **$ONE_TOTAL** |"
    echo
    echo "Many sessions: $SESSIONS sessions created by logins spread over $SIZING_USERS users in $SIZING_TIME"
    echo "(keys $KEYS_BEFORE → $KEYS_AFTER; rate-limit counters included); \`used_memory\` grew by"
    echo "$((AFTER - BEFORE)) bytes: **$PER_SESSION bytes per session**, about **$PER_GB sessions per GB** of"
    echo "\`used_memory\` (\`used_memory_rss\` was $RSS bytes at the end; keep headroom for"
    echo "fragmentation and for \`maxmemory\`, see docs/scale-out.md)."
} >"$OUT"
log "wrote $OUT"
cat "$OUT"
