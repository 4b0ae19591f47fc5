#!/usr/bin/env python3
"""Runs EZKL end to end on one ONNX model and prints one JSON line of measurements.

Used by `cargo bench -p hibana-zkml --bench zkml` for its EZKL column; the interpreter is the
virtualenv made by `scripts/ezkl-setup.sh` (ezkl 23.0.5 from PyPI).

    python ezkl_run.py MODEL.onnx CALIBRATION.json INPUT.json WORK_DIR [--srs-dir DIR]
        [--runs N] [--calibration-samples N] [--scales 8] [--max-logrows 15] [--keep-softmax]

CALIBRATION.json and INPUT.json are in hibana-zkml's format ({"inputs": [[...], ...]} and
{"input": [...]}); they are rewritten as EZKL data files ({"input_data": [[...]]}) in WORK_DIR.

Steps: gen_settings, calibrate_settings, compile_circuit, gen_srs, setup (vk, pk), gen_witness,
prove, verify. Each step runs in a child process of this script, so its peak resident memory is
that child's own (read with os.wait4), and its time is measured inside the child around the EZKL
call alone (interpreter start-up and `import ezkl` are not counted).

What the proof binds, chosen to match hibana-zkml's default (private-input) proof:
  - input_visibility = "hashed": the input stays private and the proof exposes its Poseidon hash
    as a public value. hibana-zkml's private mode does the same (a Poseidon commitment to a salt
    and the quantised input is the public value), so both circuits hash the input in-circuit.
    ("private" would bind nothing about the input and do less work; "public" would reveal it.)
  - output_visibility = "public": the output is a public value, as in hibana-zkml.
  - param_visibility = "fixed": the weights are fixed columns of the verifying key, as in
    hibana-zkml, where every verifier derives the key from the committed model.
calibrate_settings runs with target "resources", input and parameter scale 8 (--scales) and
max_logrows 15 (--max-logrows):
  - Scale 8 (8 fractional bits) is the precision hibana-zkml quantises activations to (its
    largest activation scale is 8 bits). Left to choose, EZKL picked scales 11 to 13, which cost
    nothing for Gemm/Conv/Relu here but blow up the sigmoid lookup: the logistic regression took
    logrows 17, a 1.5 GB proving key and 105 s to prove at scale 11, and a 0.96 GB key and 63 s
    at scale 13 under the cap, against logrows 15 with one lookup table at scale 8.
  - Logrows 15 is what the EZKL figures recorded in the issue used; uncapped, "resources" picks
    16 for the MNIST MLP. If calibration finds nothing under the cap it is run again without one
    (max_logrows is then null in the output).

A final Softmax is removed before EZKL sees the model (unless --keep-softmax): hibana-zkml
accepts Softmax only as the last node and proves the logits before it (softmax does not change
the argmax), so without it both tools prove the same computation. Kept, EZKL proves an exp
lookup and a division as well: on the 16-32-32-4 MLP that took logrows 19, a 7.4 GB proving key
and more than 16 GB of memory while proving, on this 23 GB machine.

The SRS is generated locally with gen_srs (get_srs would download it) into --srs-dir (default
WORK_DIR), named kzg<logrows>.srs and reused when present; its time is reported apart from setup,
because in deployment it comes from a ceremony rather than being generated per model.

Output (one JSON line): model, softmax_removed, max_logrows, logrows, input_scale, param_scale,
num_rows, the visibilities, and for each step <step>_s (seconds) and <step>_peak_mib.
  - prove_s and verify_s (medians over --runs) are EZKL's own timings with the key in memory (its
    "proof took" and "verify took" log lines), which is what hibana-zkml's figures measure.
  - prove_call_s and verify_call_s are the whole calls, which also read the key and the SRS from
    disk (for verify, loading the key rebuilds the circuit's constraint system).
  - proof_bytes (the proof alone; proof_file_bytes is the JSON file around it), vk_bytes,
    pk_bytes, compiled_bytes, srs_bytes.
  - peak_mib: the largest peak of setup, gen_witness, prove and verify, the pipeline a prover
    runs once the SRS exists.
  - outputs: the proof's public output, dequantised, as a sanity check.
On failure: {"error": "..."} and exit status 1.
"""

import argparse
import asyncio
import inspect
import json
import logging
import os
import shutil
import statistics
import subprocess
import sys
import time


def ezkl_call(name, kwargs):
    """Calls ezkl.<name>(**kwargs), awaiting the result when the binding returns an awaitable.

    Some ezkl 23.x functions return futures that need a running event loop when they are
    called, so the call itself happens inside the loop. Returns (seconds, result).
    """
    import ezkl

    function = getattr(ezkl, name)

    async def call():
        start = time.perf_counter()
        result = function(**kwargs)
        if inspect.isawaitable(result):
            result = await result
        return time.perf_counter() - start, result

    return asyncio.run(call())


class LogCapture(logging.Handler):
    """Keeps EZKL's INFO messages (its Rust log, forwarded to Python's logging)."""

    def __init__(self):
        super().__init__(logging.INFO)
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


def ezkl_took(messages, prefix):
    """Seconds from EZKL's "<prefix> S.M" message, or None.

    EZKL formats these as whole seconds, a dot and the milliseconds without zero padding
    ("verify took 0.5" is 5 ms), so the two parts are read as integers.
    """
    for message in messages:
        if message.startswith(prefix):
            secs, _, millis = message[len(prefix) :].strip().partition(".")
            try:
                return int(secs) + int(millis or 0) / 1000.0
            except ValueError:
                return None
    return None


def child_main(name, kwargs_json):
    """Child process: one EZKL step; prints {"seconds", "result", "core_seconds"} as JSON.

    core_seconds is EZKL's own timing of the proof or verification, once the key is loaded
    ("proof took", "verify took"); seconds is the whole call.
    """
    capture = LogCapture()
    logger = logging.getLogger("ezkl")
    logger.setLevel(logging.INFO)
    logger.addHandler(capture)
    logger.propagate = False
    seconds, result = ezkl_call(name, json.loads(kwargs_json))
    if name == "gen_witness":
        result = None  # the witness is on disk; the dict is large
    elif not isinstance(result, (bool, int, float, str, type(None))):
        result = str(result)
    core = {"prove": "proof took", "verify": "verify took"}.get(name)
    core_seconds = ezkl_took(capture.messages, core) if core else None
    print(json.dumps({"seconds": seconds, "result": result, "core_seconds": core_seconds}))


def run_step(name, **kwargs):
    """Runs one EZKL step in a child process; returns (seconds, result, peak MiB).

    For prove and verify, result is EZKL's own timing with the key loaded (None if absent).
    """
    process = subprocess.Popen(
        [sys.executable, os.path.abspath(__file__), "--step", name, json.dumps(kwargs)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    # Read the pipes before waiting so a chatty child cannot block on a full pipe.
    stdout, stderr = process.stdout.read(), process.stderr.read()
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        tail = stderr.decode(errors="replace").strip().splitlines()[-5:]
        raise RuntimeError(f"ezkl {name} failed (status {process.returncode}): {' | '.join(tail)}")
    report = json.loads(stdout.decode().strip().splitlines()[-1])
    if report["result"] is False:
        raise RuntimeError(f"ezkl {name} returned False")
    result = report["core_seconds"] if name in ("prove", "verify") else report["result"]
    return report["seconds"], result, usage.ru_maxrss / 1024.0  # ru_maxrss is KiB


def input_shape(model_path):
    """(values in the model's first input, names of its symbolic dimensions), batch size 1."""
    import onnx

    graph = onnx.load(model_path).graph
    initialisers = {t.name for t in graph.initializer}
    first = next(i for i in graph.input if i.name not in initialisers)
    size, symbols = 1, []
    for dim in first.type.tensor_type.shape.dim:
        if dim.dim_value > 0:
            size *= dim.dim_value
        elif dim.dim_param:
            symbols.append(dim.dim_param)
    return size, symbols


def strip_softmax(model_path, out_path):
    """Writes the model without a final Softmax node; returns whether there was one."""
    import onnx

    model = onnx.load(model_path)
    graph = model.graph
    last = graph.node[-1] if graph.node else None
    if (
        last is None
        or last.op_type != "Softmax"
        or len(graph.output) != 1
        or graph.output[0].name != last.output[0]
    ):
        return False
    graph.output[0].name = last.input[0]  # same shape: softmax is element-wise in shape
    graph.node.remove(last)
    onnx.save(model, out_path)
    return True


def write_data(path, samples):
    """Writes samples as an EZKL data file: one flat list for the model's single input."""
    flat = [float(v) for sample in samples for v in sample]
    with open(path, "w") as f:
        json.dump({"input_data": [flat]}, f)


def measure(args):
    work = os.path.abspath(args.work_dir)
    srs_dir = os.path.abspath(args.srs_dir or work)
    os.makedirs(work, exist_ok=True)
    os.makedirs(srs_dir, exist_ok=True)
    model = os.path.abspath(args.model)
    path = lambda name: os.path.join(work, name)  # noqa: E731
    softmax_removed = False
    if not args.keep_softmax and strip_softmax(model, path("model.onnx")):
        model, softmax_removed = path("model.onnx"), True

    with open(args.calibration) as f:
        calibration = json.load(f)["inputs"][: args.calibration_samples]
    with open(args.input) as f:
        sample = json.load(f)["input"]
    size, symbols = input_shape(model)
    if any(len(s) != size for s in calibration + [sample]):
        raise RuntimeError(f"the data does not match the model's input of {size} values")
    write_data(path("calibration.json"), calibration)
    write_data(path("input.json"), [sample])

    out = {"model": os.path.basename(args.model), "softmax_removed": softmax_removed}
    import ezkl

    run_args = ezkl.PyRunArgs()
    run_args.input_visibility = "hashed"
    run_args.output_visibility = "public"
    run_args.param_visibility = "fixed"
    # Symbolic dimensions (our models' batch dimension is named "batch") are fixed at 1.
    run_args.variables = [(symbol, 1) for symbol in symbols] or [("batch_size", 1)]

    start = time.perf_counter()
    if not ezkl.gen_settings(model, path("settings.json"), py_run_args=run_args):
        raise RuntimeError("ezkl gen_settings returned False")
    out["gen_settings_s"] = time.perf_counter() - start
    shutil.copyfile(path("settings.json"), path("settings.initial.json"))

    scales = [int(v) for v in args.scales.split(",")]
    calibrate = dict(
        data=path("calibration.json"),
        model=model,
        settings=path("settings.json"),
        target="resources",
    )
    try:
        out["calibrate_s"], _, out["calibrate_peak_mib"] = run_step(
            "calibrate_settings", **calibrate, scales=scales, max_logrows=args.max_logrows
        )
        out["max_logrows"] = args.max_logrows
    except RuntimeError:
        shutil.copyfile(path("settings.initial.json"), path("settings.json"))
        out["calibrate_s"], _, out["calibrate_peak_mib"] = run_step(
            "calibrate_settings", **calibrate, scales=scales
        )
        out["max_logrows"] = None
    with open(path("settings.json")) as f:
        settings = json.load(f)
    run_args_out = settings["run_args"]
    logrows = run_args_out["logrows"]
    out.update(
        logrows=logrows,
        input_scale=run_args_out.get("input_scale"),
        param_scale=run_args_out.get("param_scale"),
        num_rows=settings.get("num_rows"),
        input_visibility=str(run_args_out.get("input_visibility")),
        output_visibility=str(run_args_out.get("output_visibility")),
        param_visibility=str(run_args_out.get("param_visibility")),
    )

    out["compile_s"], _, out["compile_peak_mib"] = run_step(
        "compile_circuit",
        model=model,
        compiled_circuit=path("model.compiled"),
        settings_path=path("settings.json"),
    )

    srs = os.path.join(srs_dir, f"kzg{logrows}.srs")
    if os.path.exists(srs):
        out["srs_s"], out["srs_peak_mib"], out["srs_reused"] = 0.0, 0.0, True
    else:
        out["srs_s"], _, out["srs_peak_mib"] = run_step("gen_srs", srs_path=srs + ".tmp", logrows=logrows)
        os.replace(srs + ".tmp", srs)
        out["srs_reused"] = False

    out["setup_s"], _, out["setup_peak_mib"] = run_step(
        "setup",
        model=path("model.compiled"),
        vk_path=path("vk.key"),
        pk_path=path("pk.key"),
        srs_path=srs,
    )
    out["witness_s"], _, out["witness_peak_mib"] = run_step(
        "gen_witness",
        data=path("input.json"),
        model=path("model.compiled"),
        output=path("witness.json"),
        vk_path=path("vk.key"),
        srs_path=srs,
    )

    proves, verifies, prove_peaks, verify_peaks = [], [], [], []
    prove_cores, verify_cores = [], []
    for _ in range(args.runs):
        seconds, core, peak = run_step(
            "prove",
            witness=path("witness.json"),
            model=path("model.compiled"),
            pk_path=path("pk.key"),
            proof_path=path("proof.json"),
            srs_path=srs,
        )
        proves.append(seconds)
        prove_cores.append(core if core is not None else seconds)
        prove_peaks.append(peak)
        seconds, core, peak = run_step(
            "verify",
            proof_path=path("proof.json"),
            settings_path=path("settings.json"),
            vk_path=path("vk.key"),
            srs_path=srs,
        )
        verifies.append(seconds)
        verify_cores.append(core if core is not None else seconds)
        verify_peaks.append(peak)
    out["prove_s"] = statistics.median(prove_cores)
    out["verify_s"] = statistics.median(verify_cores)
    out["prove_call_s"] = statistics.median(proves)
    out["verify_call_s"] = statistics.median(verifies)
    out["prove_peak_mib"] = max(prove_peaks)
    out["verify_peak_mib"] = max(verify_peaks)
    out["runs"] = args.runs

    with open(path("proof.json")) as f:
        proof = json.load(f)
    # The proof file is JSON around the proof bytes; the size that matters is the bytes.
    raw = proof.get("proof")
    if isinstance(raw, list):
        out["proof_bytes"] = len(raw)
    elif isinstance(raw, str):
        out["proof_bytes"] = len(bytes.fromhex(raw.removeprefix("0x")))
    out["proof_file_bytes"] = os.path.getsize(path("proof.json"))
    try:
        pretty = proof.get("pretty_public_inputs") or {}
        out["outputs"] = [float(v) for v in (pretty.get("rescaled_outputs") or [[]])[0]]
    except (TypeError, ValueError):
        pass
    out["vk_bytes"] = os.path.getsize(path("vk.key"))
    out["pk_bytes"] = os.path.getsize(path("pk.key"))
    out["compiled_bytes"] = os.path.getsize(path("model.compiled"))
    out["srs_bytes"] = os.path.getsize(srs)
    out["peak_mib"] = max(
        out["setup_peak_mib"], out["witness_peak_mib"], out["prove_peak_mib"], out["verify_peak_mib"]
    )
    out["ezkl_version"] = getattr(ezkl, "__version__", None)
    return out


def main():
    if len(sys.argv) == 4 and sys.argv[1] == "--step":
        child_main(sys.argv[2], sys.argv[3])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("calibration")
    parser.add_argument("input")
    parser.add_argument("work_dir")
    parser.add_argument("--srs-dir", help="where kzg<logrows>.srs is kept (default WORK_DIR)")
    parser.add_argument("--runs", type=int, default=1, help="prove/verify runs (median)")
    parser.add_argument(
        "--calibration-samples", type=int, default=20, help="calibration samples passed to EZKL"
    )
    parser.add_argument(
        "--scales", default="8", help="input/parameter scales calibration may try (comma list)"
    )
    parser.add_argument(
        "--max-logrows", type=int, default=15, help="largest logrows calibration may pick"
    )
    parser.add_argument(
        "--keep-softmax", action="store_true", help="prove a final Softmax too (see above)"
    )
    args = parser.parse_args()
    try:
        out = measure(args)
    except Exception as e:  # one JSON line either way, so the bench can show the reason
        print(json.dumps({"error": f"{type(e).__name__}: {e}"}))
        sys.exit(1)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
