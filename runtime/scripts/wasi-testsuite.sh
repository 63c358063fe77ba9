#!/bin/sh
# Runs the WASI preview 1 tests of WebAssembly/wasi-testsuite (branch
# prod/testsuite-base: prebuilt .wasm + .json specs) with kiln's runtime
# (runtime/examples/wasi-run.rs) and prints the pass rate. Local only: the suite is not
# vendored. Usage:
#   runtime/scripts/wasi-testsuite.sh /path/to/wasi-testsuite-checkout
# (a checkout of the prod/testsuite-base branch; its tests/*/testsuite/wasm32-wasip1).
set -eu
suite=${1:?usage: $0 WASI_TESTSUITE_CHECKOUT}
here=$(cd "$(dirname "$0")/.." && pwd)
cargo build -q --release -p kiln-runtime --example wasi-run --manifest-path "$here/Cargo.toml"
runner=$(cargo metadata -q --format-version 1 --manifest-path "$here/Cargo.toml" \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/release/examples/wasi-run
exec python3 - "$suite" "$runner" <<'PY'
import json, os, subprocess, sys, glob, shutil, tempfile
suite, runner = sys.argv[1], sys.argv[2]
passed, failed = 0, []
for d in sorted(glob.glob(os.path.join(suite, "tests", "*", "testsuite", "wasm32-wasip1"))):
    for f in glob.glob(os.path.join(d, "**", "*.cleanup"), recursive=True):
        shutil.rmtree(f, ignore_errors=True) if os.path.isdir(f) else os.remove(f)
    for wasm in sorted(glob.glob(os.path.join(d, "*.wasm"))):
        spec = {"args": [], "env": {}, "exit_code": 0}
        js = wasm[:-5] + ".json"
        if os.path.exists(js):
            with open(js) as fh:
                spec.update(json.load(fh))
        if "operations" in spec:
            run = next((o for o in spec["operations"] if o.get("type") == "run"), {})
            wait = next((o for o in spec["operations"] if o.get("type") == "wait"), {})
            spec.update({k: run[k] for k in ("args", "env", "root") if k in run})
            spec["exit_code"] = wait.get("exit_code", 0)
            reads = [o for o in spec["operations"] if o.get("type") == "read"]
            spec["stdout"] = "".join(o.get("payload", "") for o in reads if o.get("id", "stdout") == "stdout") or None
        cmd = [runner]
        for k, v in spec.get("env", {}).items():
            cmd += ["--env", f"{k}={v}"]
        if spec.get("root"):
            cmd += ["--root", os.path.join(d, spec["root"])]
        cmd += [wasm] + spec.get("args", [])
        try:
            r = subprocess.run(cmd, capture_output=True, timeout=60)
        except subprocess.TimeoutExpired:
            failed.append((wasm, "timeout")); continue
        ok = r.returncode == spec.get("exit_code", 0)
        want = spec.get("stdout")
        if ok and want is not None and r.stdout.decode(errors="replace") != want:
            ok = False
        name = os.path.relpath(wasm, suite)
        if ok:
            passed += 1
        else:
            failed.append((name, f"exit {r.returncode} (want {spec.get('exit_code', 0)}) {r.stderr.decode(errors='replace')[-300:].strip()}"))
total = passed + len(failed)
for n, why in failed:
    print(f"FAIL {n}: {why}")
print(f"wasi-testsuite p1: {passed}/{total} passed")
PY
