#!/usr/bin/python3
"""Builds docs/benchmarks.md from the result directories written by
docs-benchmarks.sh (every figure is read from results.json).
Usage: make-benchmarks-md.py RESULTS_DIR [PLOTS_DIR] > docs/benchmarks.md
With PLOTS_DIR (docs/benchmarks-data), the SVG plots are copied there as
<test>-latency-cdf.svg / <test>-throughput.svg and linked from the page."""
import json
import os
import platform
import shutil
import statistics
import sys

AB = [("put", "put, 10 connections x 100 clients"),
      ("range-l", "range (linearizable), 10 x 100, 10k prefilled keys"),
      ("txn", "txn (compare + put), 10 x 100"),
      ("put-1c", "put, 1 connection x 1 client"),
      ("watch", "watch: 1000 watchers on 10 keys over 10 streams, puts at 500/s; "
                "events/s and put -> event latency")]


def fmt(v, digits=3):
    if v is None:
        return "n/a"
    if abs(v) >= 1000:
        return f"{v:.0f}"
    return f"{v:.{digits}g}"


def med(j, label, metric):
    s = j["summary"].get(label, {}).get(metric)
    return (s["median"], s["ci95_mean"]) if s else (None, None)


PLOTS = None


def plots(d, name):
    if PLOTS is None:
        return []
    os.makedirs(PLOTS, exist_ok=True)
    for kind in ("latency-cdf", "throughput"):
        shutil.copy(os.path.join(d, name, kind + ".svg"), os.path.join(PLOTS, f"{name}-{kind}.svg"))
    rel = os.path.basename(PLOTS.rstrip("/"))
    return [f"Plots: [latency by percentile]({rel}/{name}-latency-cdf.svg), "
            f"[throughput per repetition]({rel}/{name}-throughput.svg).", ""]


def ab_section(d, name, title):
    j = json.load(open(os.path.join(d, name, "results.json")))
    a, b = (t["label"] for t in j["targets"])
    out = [f"### {title}", "", "```", j["command"], "```", ""]
    out += [f"| metric | {a} median [CI95] | {b} median [CI95] | B/A [CI95], p |", "|---|---|---|---|"]
    comps = {c["metric"]: c for c in j["comparisons"]}
    unit = "event" if j["workload"] == "watch" else "request"
    names = {"throughput": unit + "s/s", "p50_ms": "p50 ms", "p99_ms": "p99 ms", "p999_ms": "p99.9 ms",
             "cpu_us_per_op": f"server CPU us/{unit}"}
    for m, label in names.items():
        ma, ca = med(j, a, m)
        mb, cb = med(j, b, m)
        c = comps.get(m)
        ratio = (f"{c['ratio_b_over_a']:.2f}x [{c['ratio_ci95'][0]:.2f}-{c['ratio_ci95'][1]:.2f}], "
                 f"p {c['p_value_log_welch']:.2g}") if c else "n/a"
        ci = lambda m_, c_: f"{fmt(m_)} [{fmt(c_[0])}-{fmt(c_[1])}]" if c_ else "n/a"
        out.append(f"| {label} | {ci(ma, ca)} | {ci(mb, cb)} | {ratio} |")
    # (results written before the verdict said "CPU/event" for watch runs)
    out += ["", "Verdicts:", ""] + [f"* {v.replace('CPU/request', 'CPU/' + unit)}"
                                    for v in j["verdicts"]]
    reps = {a: [], b: []}
    for r in j["repetitions"]:
        reps[r["target"]].append(fmt(r["throughput"]))
    out += ["", f"Per repetition {unit}s/s (A B A B ...): {a} {', '.join(reps[a])}; "
            f"{b} {', '.join(reps[b])}. Peak RSS: " +
            ", ".join(f"{t['label']} {t['peak_rss_bytes'] / 2**20:.0f} MiB" for t in j["targets"]) +
            f". Load average before/after: {j['loadavg1_before']:.1f} / {j['loadavg1_after']:.1f}.", ""]
    return out + plots(d, name)


def engines_section(d):
    j = json.load(open(os.path.join(d, "engines", "results.json")))
    out = ["## Embedded engines (`tidemark bench engines`)", "", "```", j["command"], "```", "",
           f"Workload `{j['config']['mix']}`, {j['config']['key_space']} keys prefilled, "
           f"values {j['config']['value_size']} B, {j['config']['clients']} thread, "
           f"{j['config']['reps']} interleaved repetitions of {j['config']['duration_s']} s; "
           f"data under {os.path.dirname(j['config']['dir'])} (ext4). Load average before/after: "
           f"{j['loadavg1_before']:.1f} / {j['loadavg1_after']:.1f}.", "",
           "| engine | ops/s median [CI95] | p50 ms | p99 ms | p99.9 ms | process CPU us/op | on-disk MiB | write amp | peak RSS MiB |",
           "|---|---|---|---|---|---|---|---|---|"]
    for t in j["targets"]:
        label = t["label"]
        reps = [r for r in j["repetitions"] if r["target"] == label]
        if not reps:
            continue
        s = j["summary"][label]
        m = lambda k: statistics.median(r[k] for r in reps)
        tp = s["throughput"]
        out.append(f"| {label} | {fmt(tp['median'])} [{fmt(tp['ci95_mean'][0])}-{fmt(tp['ci95_mean'][1])}] | "
                   f"{fmt(s['p50_ms']['median'])} | {fmt(s['p99_ms']['median'])} | "
                   f"{fmt(s['p999_ms']['median'])} | {fmt(s['cpu_us_per_op']['median'])} | "
                   f"{fmt(m('disk_bytes') / 2**20)} | {fmt(m('write_amplification'))} | "
                   f"{fmt(m('peak_rss_bytes') / 2**20)} |")
    if j["problems"]:
        out += [""] + [f"* problem: {p}" for p in j["problems"]]
    return out + [""] + plots(d, "engines")


def main():
    global PLOTS
    d = sys.argv[1]
    PLOTS = sys.argv[2] if len(sys.argv) > 2 else None
    out = ["# Benchmarks", "",
           "Produced by `src/bench/scripts/docs-benchmarks.sh OUT` (servers, commands) and "
           "`src/bench/scripts/make-benchmarks-md.py OUT > docs/benchmarks.md` (this page); every "
           "figure below is read from the `results.json` files. Method and statistics: "
           "docs/design/bench.md.", "",
           f"Machine: {os.cpu_count()} cores, {platform.machine()}, Linux {platform.release()}. "
           "**The machine was shared with other engineers' C++ builds while these ran** (load "
           "averages are given per test): absolute figures are low and noisy; only the side-by-side "
           "ratios of one session mean anything, and even they need repetition (see the CIs).", "",
           "## tidemark vs etcd 3.4.23 (`tidemark bench ab`, A = etcd, B = tidemark)", "",
           "Both servers fresh, on loopback, running for the whole session, one loaded at a time; "
           "keys 8 B, values 256 B, uniform over 100k keys unless stated.", ""]
    for name, title in AB:
        if os.path.exists(os.path.join(d, name, "results.json")):
            out += ab_section(d, name, title)
    if os.path.exists(os.path.join(d, "engines", "results.json")):
        out += engines_section(d)
    # Hand-written interpretation of the figures (update it with the numbers).
    extra = os.path.join(os.path.dirname(os.path.abspath(__file__)), "benchmarks-notes.md")
    if os.path.exists(extra):
        out += [open(extra).read()]
    print("\n".join(out))


if __name__ == "__main__":
    main()
