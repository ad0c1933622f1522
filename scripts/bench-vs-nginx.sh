#!/usr/bin/env bash
# Runs srsd, nginx-rtmp and the bare writer (`srsd bench floor`) side by side on this machine
# and writes docs/bench.md (the issue-12 table, every figure from this run) and
# docs/bench.svg (players vs CPU and RSS).
#
#   scripts/bench-vs-nginx.sh                 # 250, 500, 1000 players, 20 s a run (~6 min)
#   SWEEP="1000" DUR=25 scripts/bench-vs-nginx.sh
#   HLS_N=500 ...                            # HLS viewers of the HLS comparison (0: none)
#   REPS=3 ...                               # at the top player count, the bare writer and
#                                            # srsd at 350 ms run this many times, alternating;
#                                            # the ratios are the medians of each round's
#   WORKERS=0 ...                            # runtime threads of srsd and the bare writer
#                                            # (1, the default: one thread, as nginx-rtmp's
#                                            # one process and SRS; 0: one per core)
#
# Needs: a release build (cargo build --release, or SRSD=path), ffmpeg (to make the test
# stream once), nginx with libnginx-mod-rtmp, python3 (table and plot). Everything listens
# on 127.0.0.1. One stream, ~575 kbps H.264+AAC (testsrc2 640x360 25 fps, 500k + 64k AAC,
# 2 s GOP), published by `srsd publish --loop` to each server; players are `srsd bench`
# (RTMP players or HTTP-FLV viewers), run on the same machine. CPU is utime+stime of the
# server process over the steady window (2 s after the last connect to the end), RSS is
# VmRSS; see `srsd bench --help`.
set -euo pipefail

cd "$(dirname "$0")/.."
SRSD=${SRSD:-target/release/srsd}
SWEEP=${SWEEP:-"250 500 1000"}
DUR=${DUR:-20}
AFTER=${AFTER:-20}
RTMP_PORT=${RTMP_PORT:-19350}
HTTP_PORT=${HTTP_PORT:-18080}
NGINX_PORT=${NGINX_PORT:-19351}
NGINX_HTTP_PORT=${NGINX_HTTP_PORT:-18081}
HLS_N=${HLS_N:-500}
WORKERS=${WORKERS:-1}
REPS=${REPS:-3}
FLOOR_PORT=${FLOOR_PORT:-18090}
NGINX_MODULE=${NGINX_MODULE:-/usr/lib/nginx/modules/ngx_rtmp_module.so}
OUT=${OUT:-docs}
WORK=$(mktemp -d /tmp/srsd-bench.XXXXXX)
RESULTS=$WORK/results.txt
PIDS=()

cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
}
trap cleanup EXIT

[ -x "$SRSD" ] || { echo "no $SRSD: cargo build --release first (or SRSD=...)" >&2; exit 1; }
ulimit -n 20000 2>/dev/null || ulimit -n 4096

echo "== making the test stream"
ffmpeg -hide_banner -loglevel error -y \
    -f lavfi -i testsrc2=size=640x360:rate=25 -f lavfi -i sine=frequency=440:sample_rate=44100 \
    -t 30 -c:v libx264 -preset veryfast -b:v 500k -maxrate 500k -bufsize 1000k -g 50 \
    -pix_fmt yuv420p -c:a aac -b:a 64k -ac 2 -f flv "$WORK/stream.flv"

srsd_conf() { # MW [hls] [MW_MSGS]
    cat > "$WORK/srsd-$1.toml" <<EOF
listen = ["127.0.0.1:$RTMP_PORT"]
max_connections = 20000
chunk_size = 60000
pid = "$WORK/srsd-$1.pid"
workers = $WORKERS
[log]
tank = "console"
level = "warn"
[http_api]
enabled = false
[http_server]
enabled = true
listen = "127.0.0.1:$HTTP_PORT"
dir = "$WORK"
[vhost."__defaultVhost__".play]
mw_latency = $1
mw_msgs = ${3:-8}
[vhost."__defaultVhost__".http_remux]
enabled = true
mount = "[vhost]/[app]/[stream].flv"
[vhost."__defaultVhost__".hls]
enabled = ${2:-false}
storage = "memory"
fragment = 2
window = 10
EOF
}

nginx_conf() {
    mkdir -p "$WORK/nginx"
    cat > "$WORK/nginx/nginx.conf" <<EOF
daemon off;
master_process off;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/error.log warn;
load_module $NGINX_MODULE;
worker_rlimit_nofile 20000;
events { worker_connections 20000; }
rtmp { server { listen 127.0.0.1:$NGINX_PORT; chunk_size 60000; application live { live on;
    hls on; hls_path $WORK/nginx/hls; hls_fragment 2s; hls_playlist_length 10s; } } }
http {
    sendfile on; tcp_nopush on; access_log off;
    types { application/vnd.apple.mpegurl m3u8; video/mp2t ts; }
    server { listen 127.0.0.1:$NGINX_HTTP_PORT;
        location /live/ { alias $WORK/nginx/hls/; add_header Cache-Control no-cache; } }
}
EOF
}

wait_port() { # PORT
    for _ in $(seq 50); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.1
    done
    echo "nothing listens on $1" >&2
    return 1
}

SERVER=0
PUBLISHER=0
start() { # KIND MW [hls] [MW_MSGS]
    case $1 in
    srsd)
        srsd_conf "$2" "${3:-false}" "${4:-8}"
        "$SRSD" -c "$WORK/srsd-$2.toml" > "$WORK/srsd.log" 2>&1 &
        SERVER=$!
        wait_port "$RTMP_PORT"
        "$SRSD" publish "$WORK/stream.flv" "rtmp://127.0.0.1:$RTMP_PORT/live/s" --loop \
            > "$WORK/publish.log" 2>&1 &
        PUBLISHER=$!
        ;;
    nginx)
        nginx_conf
        nginx -c "$WORK/nginx/nginx.conf" -p "$WORK/nginx" -e "$WORK/nginx/error.log" &
        SERVER=$!
        wait_port "$NGINX_PORT"
        "$SRSD" publish "$WORK/stream.flv" "rtmp://127.0.0.1:$NGINX_PORT/live/s" --loop \
            > "$WORK/publish.log" 2>&1 &
        PUBLISHER=$!
        ;;
    floor)
        "$SRSD" bench floor "$WORK/stream.flv" --listen "127.0.0.1:$FLOOR_PORT" --mw "$2" \
            --workers "$WORKERS" \
            > "$WORK/floor.log" 2>&1 &
        SERVER=$!
        wait_port "$FLOOR_PORT"
        PUBLISHER=0
        ;;
    esac
    PIDS=("$SERVER" "$PUBLISHER")
    sleep 3 # the GOP cache fills
    if [ "${3:-false}" = true ]; then sleep 9; fi # a window of HLS segments (2 s each)
}

stop() {
    [ "$PUBLISHER" != 0 ] && kill "$PUBLISHER" 2>/dev/null || true
    kill "$SERVER" 2>/dev/null || true
    wait 2>/dev/null || true
    PIDS=()
}

# run LABEL KIND MW MODE N [AFTER] [MW_MSGS]: one bench run, its key=value results appended.
run() {
    local label=$1 kind=$2 mw=$3 mode=$4 n=$5 after=${6:-0} msgs=${7:-8} url
    case $kind/$mode in
    srsd/play) url=rtmp://127.0.0.1:$RTMP_PORT/live/s ;;
    srsd/flv) url=http://127.0.0.1:$HTTP_PORT/live/s.flv ;;
    srsd/hls) url=http://127.0.0.1:$HTTP_PORT/live/s.m3u8 ;;
    nginx/hls) url=http://127.0.0.1:$NGINX_HTTP_PORT/live/s.m3u8 ;;
    nginx/play) url=rtmp://127.0.0.1:$NGINX_PORT/live/s ;;
    floor/flv) url=http://127.0.0.1:$FLOOR_PORT/live/s.flv ;;
    esac
    start "$kind" "$mw" "$([ "$mode" = hls ] && echo true || echo false)" "$msgs"
    echo "== $label n=$n: srsd bench $mode $url -n $n --duration $DUR --pid $SERVER --after $after"
    local log=$WORK/$label-$n.txt
    "$SRSD" bench "$mode" "$url" -n "$n" --duration "$DUR" --pid "$SERVER" --after "$after" \
        | grep -v ' t=' | tee "$log"
    stop
    {
        printf 'label=%s n=%s ' "$label" "$n"
        grep -h '^\[bench\] \(server\|first_media_ms\|summary\):' "$log" \
            | sed 's/^\[bench\] [a-z_]*: //' | tr '\n' ' '
        echo
    } >> "$RESULTS"
}

MAX=$(echo "$SWEEP" | tr ' ' '\n' | sort -n | tail -1)
for n in $SWEEP; do
    run floor-350 floor 350 flv "$n"
    if [ "$n" = "$MAX" ]; then
        run srsd-350-rtmp srsd 350 play "$n" "$AFTER"
    else
        run srsd-350-rtmp srsd 350 play "$n"
    fi
    run srsd-350-flv srsd 350 flv "$n"
    run srsd-0-rtmp srsd 0 play "$n"
    run srsd-0m0-rtmp srsd 0 play "$n" 0 0
    run nginx-rtmp nginx 0 play "$n"
done
# The machine is shared and one run's CPU moves by a fifth: at the top count, more rounds of
# the bare writer and srsd at 350 ms, each round alternating them.
for r in $(seq 2 "$REPS"); do
    run "floor-350-r$r" floor 350 flv "$MAX"
    run "srsd-350-rtmp-r$r" srsd 350 play "$MAX"
    run "srsd-350-flv-r$r" srsd 350 flv "$MAX"
done
if [ "$HLS_N" != 0 ]; then
    # HLS viewers: srsd serves segments from memory (hls.storage = "memory"), nginx-rtmp
    # writes files that nginx's http module serves with sendfile. Both servers also mux the
    # stream into TS, as they must.
    run srsd-hls srsd 350 hls "$HLS_N"
    run nginx-hls nginx 0 hls "$HLS_N"
fi

mkdir -p "$OUT"
python3 - "$RESULTS" "$OUT" "$MAX" "$DUR" "$AFTER" "$SRSD" "$HLS_N" "$WORKERS" "$REPS" <<'PY'
import sys, html, re, statistics
results, out, top, dur, after, srsd, hls_n, workers, reps = sys.argv[1:10]
reps = max(1, int(reps))
shape = {"0": "one worker thread per core", "1": "one thread (tokio's current-thread runtime)"}.get(workers, f"{workers} worker threads")
hls_n = int(hls_n)
top = int(top)
rows = []
for line in open(results):
    d = {}
    for kv in line.split():
        if "=" in kv:
            k, v = kv.split("=", 1)
            d[k] = v
    rows.append(d)

def get(label, n, key, default=None):
    for r in rows:
        if r.get("label") == label and int(r.get("n", 0)) == n and key in r:
            return float(r[key])
    return default

def fmt(x, spec="{:.1f}"):
    return "—" if x is None else spec.format(x)

def ratio(a, b):
    return None if a is None or not b else a / b

n = top
cpu = lambda l: get(l, n, "cpu_pct")
t = []
t.append("| figure | srsd | nginx-rtmp 1.2.2 | bare writer (floor) | target |")
t.append("|---|---|---|---|---|")
t.append(f"| first media after play, p50 / max ms (RTMP, mw_latency 350) | {fmt(get('srsd-350-rtmp', n, 'p50'), '{:.0f}')} / {fmt(get('srsd-350-rtmp', n, 'max'), '{:.0f}')} | {fmt(get('nginx-rtmp', n, 'p50'), '{:.0f}')} / {fmt(get('nginx-rtmp', n, 'max'), '{:.0f}')} | — | ≤ 30 |")
t.append(f"| first media after play, p50 / max ms (HTTP-FLV, mw_latency 350) | {fmt(get('srsd-350-flv', n, 'p50'), '{:.0f}')} / {fmt(get('srsd-350-flv', n, 'max'), '{:.0f}')} | no HTTP-FLV | {fmt(get('floor-350', n, 'p50'), '{:.0f}')} / {fmt(get('floor-350', n, 'max'), '{:.0f}')} | ≤ 30 |")
t.append(f"| RSS per player, KiB ((peak − idle) / {n}, RTMP, mw 350) | {fmt(get('srsd-350-rtmp', n, 'rss_per_player_kib'))} | {fmt(get('nginx-rtmp', n, 'rss_per_player_kib'))} | — | ≤ 8 |")
t.append(f"| RSS per viewer, KiB (HTTP-FLV, mw 350) | {fmt(get('srsd-350-flv', n, 'rss_per_player_kib'))} | — | {fmt(get('floor-350', n, 'rss_per_player_kib'))} | ≤ 8 |")
idle = get('srsd-350-rtmp', n, 'rss_idle_kib')
aft = get('srsd-350-rtmp', n, 'rss_after_kib')
t.append(f"| RSS {after} s after the players left, MiB (idle before them) | {fmt(aft and aft / 1024, '{:.1f}')} (idle {fmt(idle and idle / 1024, '{:.1f}')}) | — | — | ≤ idle + 2 |")
def rounds(label):
    """Each round's srsd/bare-writer CPU ratio at the top count, and their median."""
    rs = []
    for k in range(1, reps + 1):
        sfx = "" if k == 1 else f"-r{k}"
        r = ratio(cpu(label + sfx), cpu("floor-350" + sfx))
        if r is not None:
            rs.append(r)
    if not rs:
        return "—"
    each = ", ".join(f"{r:.2f}" for r in rs)
    return f"{statistics.median(rs):.2f}× (median of {len(rs)} rounds: {each}; round 1 {fmt(cpu(label))}% vs {fmt(cpu('floor-350'))}%)"
t.append(f"| RTMP CPU at 350 ms batching vs the bare writer | {rounds('srsd-350-rtmp')} | — | 1.00 | ≤ 1.25× |")
t.append(f"| HTTP-FLV CPU at 350 ms batching vs the bare writer | {rounds('srsd-350-flv')} | no HTTP-FLV | 1.00 | ≤ 1.25× |")
t.append(f"| RTMP CPU at mw_latency = 0 vs nginx-rtmp (mw_msgs 8, SRS's default: a write per 9 messages) | {fmt(ratio(cpu('srsd-0-rtmp'), cpu('nginx-rtmp')), '{:.2f}×')} ({fmt(cpu('srsd-0-rtmp'))}% vs {fmt(cpu('nginx-rtmp'))}%) | 1.00 | — | ≤ 0.7× |")
t.append(f"| RTMP CPU at mw_latency = 0, mw_msgs = 0 (a write per message, as nginx-rtmp) vs nginx-rtmp | {fmt(ratio(cpu('srsd-0m0-rtmp'), cpu('nginx-rtmp')), '{:.2f}×')} ({fmt(cpu('srsd-0m0-rtmp'))}% vs {fmt(cpu('nginx-rtmp'))}%) | 1.00 | — | — |")
t.append(f"| RTMP CPU at 350 ms vs nginx-rtmp | {fmt(ratio(cpu('srsd-350-rtmp'), cpu('nginx-rtmp')), '{:.2f}×')} | 1.00 | — | ≤ 0.5× |")
if hls_n:
    hc = lambda l: get(l, hls_n, "cpu_pct")
    t.append(f"| CPU, {hls_n} HLS viewers (srsd from memory; nginx-rtmp files, nginx sendfile) | {fmt(ratio(hc('srsd-hls'), hc('nginx-hls')), '{:.2f}×')} ({fmt(hc('srsd-hls'))}% vs {fmt(hc('nginx-hls'))}%) | 1.00 | — | measured (was 3.6×) |")

labels = ["floor-350", "srsd-350-rtmp", "srsd-350-flv", "srsd-0-rtmp", "srsd-0m0-rtmp", "nginx-rtmp"]
hls_labels = {"srsd-hls", "nginx-hls"}
names = {"floor-350": "bare writer, 350 ms (HTTP)", "srsd-350-rtmp": "srsd RTMP, mw 350",
         "srsd-350-flv": "srsd HTTP-FLV, mw 350", "srsd-0-rtmp": "srsd RTMP, mw 0",
         "srsd-0m0-rtmp": "srsd RTMP, mw 0, mw_msgs 0",
         "nginx-rtmp": "nginx-rtmp RTMP", "srsd-hls": "srsd HLS (memory)",
         "nginx-hls": "nginx-rtmp HLS (sendfile)"}
raw = ["| run | players | CPU % of a core | Gbit/s | core·s per Gbit | delivered % | max stalled | RSS idle / peak MiB | RSS/player KiB | first media p50/p95/max ms |", "|---|---|---|---|---|---|---|---|---|---|"]
for r in rows:
    g = lambda k: r.get(k, "—")
    mib = lambda k: f"{float(r[k]) / 1024:.1f}" if k in r else "—"
    m = re.fullmatch(r"(.*)-r(\d+)", r["label"])
    name = names.get(r["label"]) or (f"{names.get(m[1], m[1])} (round {m[2]})" if m else r["label"])
    raw.append(f"| {name} | {g('n')} | {g('cpu_pct')} | {g('gbps')} | {g('cpu_per_gbps')} | {g('delivered_pct')} | {g('max_stalled')} | {mib('rss_idle_kib')} / {mib('rss_peak_kib')} | {g('rss_per_player_kib')} | {g('p50')}/{g('p95')}/{g('max')} |")

md = f"""# srsd fan-out benchmark

Written by `scripts/bench-vs-nginx.sh` (one run; every figure below comes from it; the
ratios to the bare writer are medians of {reps} rounds that alternate it and srsd). One
~575 kbps H.264+AAC stream (testsrc2 640x360 25 fps, 2 s GOP), published with `srsd publish
--loop`; players are `srsd bench play` (RTMP) or `srsd bench flv` (HTTP-FLV) on the same
machine, {dur} s a run, ramped 5 ms apart. CPU is the server's utime+stime over the steady
window, in % of one core; RSS is VmRSS (glibc build: about 1.9 MiB of it are shared libc and
libm pages). "Bare writer" is `srsd bench floor`: the same file pre-encoded as FLV tags,
one batch every 350 ms handed to every viewer, one `writev` each, no protocol work: the
physical floor of this job here. srsd (`workers = {workers}`) and the bare writer
(`--workers {workers}`) run on the same runtime: {shape}. nginx-rtmp runs one process
(`master_process off`). HLS:
{hls_n} `srsd bench hls` clients (playlist polled every half target duration, each new
segment fetched once, keep-alive) of the same stream, 2 s segments, a 10 s window; srsd
serves them from memory (`hls.storage = "memory"`), nginx-rtmp writes files that nginx's
http module serves with sendfile.

## Issue 12 figures at {top} players

{chr(10).join(t)}

## Every run

{chr(10).join(raw)}

![players vs CPU and RSS](bench.svg)

The machine is shared: CPU figures move between runs of the same code (RTMP at 350 ms against
the bare writer at 1000 players has measured from 1.3× to 1.6× on one binary in single
runs), hence the rounds. Compare figures of one run.
The musl board build is measured in [bench-musl.md](bench-musl.md).

Binary: `{srsd}` (x86_64 glibc release build unless said otherwise).
"""
open(f"{out}/bench.md", "w").write(md)

# SVG: two panels, players on x; CPU % (left), RSS MiB (right).
colors = {"floor-350": "#888888", "srsd-350-rtmp": "#1f77b4", "srsd-350-flv": "#2ca02c",
          "srsd-0-rtmp": "#9467bd", "srsd-0m0-rtmp": "#ff7f0e", "nginx-rtmp": "#d62728"}
W, H, pad = 900, 380, 55
pw = (W - 3 * pad) / 2
ph = H - 2 * pad - 40
ns = sorted({int(r["n"]) for r in rows})
def series(label, key, scale=1.0):
    pts = []
    for x in ns:
        v = get(label, x, key)
        if v is not None:
            pts.append((x, v * scale))
    return pts
def panel(x0, title, key, unit, scale=1.0):
    ys = [v for l in labels for _, v in series(l, key, scale)] or [1]
    ymax = max(ys) * 1.15 or 1
    xmax = max(ns) * 1.05
    s = [f'<text x="{x0 + pw / 2}" y="{pad - 20}" text-anchor="middle" font-size="14">{html.escape(title)}</text>',
         f'<rect x="{x0}" y="{pad}" width="{pw}" height="{ph}" fill="none" stroke="#333"/>']
    for i in range(5):
        yv = ymax * i / 4
        y = pad + ph - ph * i / 4
        s.append(f'<text x="{x0 - 6}" y="{y + 4}" text-anchor="end" font-size="11">{yv:.1f}</text>')
        s.append(f'<line x1="{x0}" x2="{x0 + pw}" y1="{y}" y2="{y}" stroke="#ddd"/>')
    for x in ns:
        px = x0 + pw * x / xmax
        s.append(f'<text x="{px}" y="{pad + ph + 16}" text-anchor="middle" font-size="11">{x}</text>')
    s.append(f'<text x="{x0 + pw / 2}" y="{pad + ph + 34}" text-anchor="middle" font-size="12">players</text>')
    s.append(f'<text x="{x0 - 42}" y="{pad + ph / 2}" text-anchor="middle" font-size="12" transform="rotate(-90 {x0 - 42} {pad + ph / 2})">{html.escape(unit)}</text>')
    for l in labels:
        pts = series(l, key, scale)
        if not pts:
            continue
        xy = " ".join(f"{x0 + pw * x / xmax:.1f},{pad + ph - ph * v / ymax:.1f}" for x, v in pts)
        s.append(f'<polyline points="{xy}" fill="none" stroke="{colors[l]}" stroke-width="2"/>')
        for x, v in pts:
            s.append(f'<circle cx="{x0 + pw * x / xmax:.1f}" cy="{pad + ph - ph * v / ymax:.1f}" r="3" fill="{colors[l]}"/>')
    return s
body = panel(pad + 10, "server CPU", "cpu_pct", "% of one core")
body += panel(2 * pad + pw + 10, "server RSS (peak)", "rss_peak_kib", "MiB", 1 / 1024)
ly = H - 18
lx = pad
for l in labels:
    body.append(f'<rect x="{lx}" y="{ly - 9}" width="12" height="4" fill="{colors[l]}"/>')
    body.append(f'<text x="{lx + 16}" y="{ly - 4}" font-size="11">{html.escape(names[l])}</text>')
    lx += 170
svg = f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif"><rect width="100%" height="100%" fill="white"/>{"".join(body)}</svg>\n'
open(f"{out}/bench.svg", "w").write(svg)
print(f"wrote {out}/bench.md and {out}/bench.svg")
PY
echo "raw results: $RESULTS"
