# Shared by the benchmark scripts (sourced after they set $here): the provisioned test host's
# facts, OUT (where the JSON goes, default benchmarks/out), TBX (the tbx under test); hf runs
# hyperfine side by side, row prints markdown.
. "${TBX_TEST_ENV:-/run/tbx-ci/env}"
OUT=${OUT:-$here/out}
TBX=${TBX:-$(command -v tbx)}
mkdir -p "$OUT"
command -v hyperfine >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -q hyperfine >/dev/null

hf() { # name runs [hyperfine args...] -> $OUT/name.json
    # ROUNDS rounds (default 3) of runs/ROUNDS each, every other round in the opposite command
    # order, pooled: on a noisy machine a slow minute then weighs on every command alike.
    local name=$1 runs=$2 rounds=${ROUNDS:-3} r i
    shift 2
    local cmds=() opts=()
    while [ $# -gt 0 ]; do
        case "$1" in
            --prepare|--setup|--cleanup) opts+=("$1" "$2"); shift 2 ;;
            *) cmds+=("$1"); shift ;;
        esac
    done
    local per=$(( (runs + rounds - 1) / rounds ))
    [ "$per" -ge 2 ] || per=2
    for r in $(seq 1 "$rounds"); do
        local order=("${cmds[@]}")
        if [ $((r % 2)) = 0 ]; then
            order=(); for ((i=${#cmds[@]}-1; i>=0; i--)); do order+=("${cmds[i]}"); done
        fi
        hyperfine -N --style none --runs "$per" --warmup 1 "${opts[@]}" --export-json "$OUT/$name.r$r.json" \
            "${order[@]}" >/dev/null 2>&1 ||
            hyperfine --style none --runs "$per" --warmup 1 "${opts[@]}" --export-json "$OUT/$name.r$r.json" \
                "${order[@]}" >/dev/null
    done
    python3 - "$OUT/$name.json" "$rounds" "${cmds[@]}" <<'PY'
import json, os, statistics, sys
out, rounds, cmds = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
pooled = {c: [] for c in cmds}
for r in range(1, rounds + 1):
    path = out[:-len(".json")] + f".r{r}.json"
    for res in json.load(open(path))["results"]:
        pooled[res["command"]] += res["times"]
    os.remove(path)
results = [{"command": c, "times": t, "median": statistics.median(t), "mean": statistics.mean(t),
            "min": min(t), "max": max(t)} for c, t in pooled.items()]
json.dump({"rounds": rounds, "results": results}, open(out, "w"), indent=1)
PY
}
row() { # name goal-text baseline-index(0-based) -> appends markdown rows (one per command)
    python3 - "$OUT/$1.json" "$2" "${3:-}" <<'EOF'
import json, statistics, sys
data = json.load(open(sys.argv[1]))["results"]
goal, base = sys.argv[2], sys.argv[3]
b = statistics.median(data[int(base)]["times"]) if base != "" else None
for i, r in enumerate(data):
    med = statistics.median(r["times"])
    ratio = "" if b is None or i == int(base) else f"{med / b:.2f}x"
    print(f"| `{r['command'].replace('|', '/')}` | {min(r['times'])*1000:.0f} | {med*1000:.0f} | {ratio} | {goal if i == 0 else ''} |")
EOF
}

