#!/usr/bin/env bash
# End-to-end checks of the built `ingot` binary: every malformed fixture exits non-zero with a JSON
# error naming the expected code and byte offset; the real model and the folder fixture inspect
# cleanly; a bad --tensors regex is a usage error. Prints "N passed, N failed".
set -uo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
ingot="${INGOT:-$root/.build/debug/ingot}"
python3 - "$ingot" <<'PY'
import json, subprocess, sys
ingot = sys.argv[1]
passed = failed = 0
def check(ok, what):
    global passed, failed
    if ok: passed += 1
    else:
        failed += 1
        print("FAIL:", what)
expected = json.load(open("fixtures/malformed/expected.json"))
for name, e in sorted(expected.items()):
    p = subprocess.run([ingot, "inspect", "--json", "fixtures/malformed/" + name], capture_output=True, text=True)
    try:
        err = json.loads(p.stdout)["error"]
    except Exception:
        check(False, f"{name}: no JSON error (exit {p.returncode})")
        continue
    check(p.returncode != 0 and err["code"] == e["code"] and err.get("offset") == e["offset"]
          and e["field"] in err["field"] and p.stderr.startswith("error: "), f"{name}: {err}")
for path in [".cache/models/SmolLM2-135M-Instruct.Q4_1.gguf", "fixtures/safetensors/sharded",
             "fixtures/safetensors/all-dtypes.safetensors", "fixtures/gguf/gguf-py-all-types.gguf"]:
    p = subprocess.run([ingot, "inspect", "--json", path], capture_output=True, text=True)
    ok = p.returncode == 0
    if ok:
        doc = json.loads(p.stdout)
        ok = len(doc["tensors"]) == doc["totals"]["tensorCount"] > 0
    check(ok, f"inspect {path} (exit {p.returncode}) {p.stderr[:200]}")
p = subprocess.run([ingot, "inspect", "--tensors", "blk\\.0\\.", "--json", ".cache/models/SmolLM2-135M-Instruct.Q4_1.gguf"],
                   capture_output=True, text=True)
check(p.returncode == 0 and len(json.loads(p.stdout)["tensors"]) == 9, "--tensors filter selects block 0's 9 tensors")
p = subprocess.run([ingot, "inspect", "--tensors", "(", "fixtures/gguf/gguf-py-all-types.gguf"], capture_output=True, text=True)
check(p.returncode != 0 and "regular expression" in p.stderr, "bad regex is a usage error")
p = subprocess.run([ingot, "inspect", "/nonexistent/model.gguf"], capture_output=True, text=True)
check(p.returncode != 0 and "cannot open" in p.stderr, "missing file")
print(f"cli: {passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
PY
