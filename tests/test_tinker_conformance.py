"""Conformance of the Rust Tinker client (metaclaw-tinker) with the official
Python SDK (`tinker`), both run against the local fake service in
`fake_tinker.py`.

The same flow — create LoRA → forward-backward → optim-step → hot-swap
sampler → sample → save state → named sampler weights → sample from them →
load state → finish — runs once with the SDK and once with the Rust example
binary `flow`; the fake records every request, and the two recordings must
match request by request (paths, order, the headers that matter, decoded
bodies with ids normalised). Fault cases check that both clients survive
the same injected faults.

Both clients run as subprocesses: the SDK via this file (`python
test_tinker_conformance.py sdk-flow`), the Rust client via the example binary,
built by the `flow_bin` fixture (`cargo build -p metaclaw-tinker --example
flow`) unless METACLAW_TINKER_FLOW names a prebuilt one.
"""

from __future__ import annotations

import json
import os
import re
import struct
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fake_tinker import (FakeTinker, decode_message, encode_forward_backward_output,  # noqa: E402
                         encode_sample_response)

REPO = Path(__file__).resolve().parent.parent
BASE_MODEL = "Qwen/Qwen3-4B-Instruct-2507"
FLOW_TIMEOUT = 120  # seconds for one whole flow subprocess (a hang guard, not a check)

# Requests only the SDK sends, on timers or for features the Rust client
# does not use: feature flags for cancellation, telemetry, and heartbeats
# (timed; the Rust heartbeat is tested under virtual time in Rust).
SDK_ONLY_PATHS = {"client/dynamic_config", "telemetry", "session_heartbeat"}

# The identical inputs both flows send (next-token shift: model reads
# tokens[:-1] and is scored on tokens[1:]).
DATUMS = [
    {"tokens": [1, 2, 3, 4, 5], "logprobs": [0.0, 0.0, -0.1, -0.2], "advantages": [0.0, 0.0, 0.5, 0.5]},
    {"tokens": [7, 8, 9], "logprobs": [0.0, -1.5], "advantages": [0.0, -0.25]},
]
PROMPT = [11, 12, 13]
NAMED_PROMPT = [21, 22]


# --------------------------------------------------------------------------- the SDK side

def sdk_flow() -> dict:
    """The flow with the official SDK (run in a subprocess: the SDK keeps
    background threads and a heartbeat loop)."""
    import tinker
    from tinker import types

    sc = tinker.ServiceClient()
    tc = sc.create_lora_training_client(base_model=BASE_MODEL, rank=8).result()
    data = [types.Datum(model_input=types.ModelInput.from_ints(d["tokens"][:-1]),
                        loss_fn_inputs={"target_tokens": d["tokens"][1:], "logprobs": d["logprobs"],
                                        "advantages": d["advantages"]})
            for d in DATUMS]
    fwd = tc.forward_backward(data, "importance_sampling")
    opt = tc.optim_step(types.AdamParams(learning_rate=1e-4))
    fwd_r, opt_r = fwd.result(), opt.result()
    sampler = tc.save_weights_and_get_sampling_client().result()
    params = types.SamplingParams(max_tokens=3, temperature=0.7, top_k=50, top_p=0.95, seed=7, stop=["</s>"])
    samples = sampler.sample(types.ModelInput.from_ints(PROMPT), num_samples=2, sampling_params=params).result()
    checkpoint = tc.save_state("step_0001").result()
    sampler_path = tc.save_weights_for_sampler("final").result()
    named = sc.create_sampling_client(model_path=sampler_path.path).result()
    named_samples = named.sample(types.ModelInput.from_ints(NAMED_PROMPT), num_samples=1,
                                 sampling_params=types.SamplingParams(max_tokens=2)).result()
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # load_state is deprecated but is what MetaClaw uses
        tc.load_state(checkpoint.path).result()
    sc.close("success").result()

    def seqs(resp):
        return [{"tokens": list(s.tokens), "logprobs": list(s.logprobs), "stop_reason": s.stop_reason,
                 "sequence_id": s.sequence_id} for s in resp.sequences]

    return {
        "forward_backward": {"metrics": dict(fwd_r.metrics),
                             "logprobs": [o["logprobs"].tolist() for o in fwd_r.loss_fn_outputs]},
        "optim_step": {"metrics": dict(opt_r.metrics or {})},
        "samples": seqs(samples),
        "checkpoint": checkpoint.path,
        "sampler_path": sampler_path.path,
        "named_samples": seqs(named_samples),
    }


def _env(fake: FakeTinker, key: str | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TINKER_")}
    env.update(TINKER_BASE_URL=fake.base_url, TINKER_API_KEY=key or fake.api_key, TINKER_TELEMETRY="0",
               HF_HUB_OFFLINE="1", RUST_LOG="warn")
    return env


def run_sdk(fake: FakeTinker, key: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(Path(__file__).resolve()), "sdk-flow"], env=_env(fake, key),
                          capture_output=True, text=True, timeout=FLOW_TIMEOUT)


def run_rust(flow_bin: Path, fake: FakeTinker, key: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([str(flow_bin)], env=_env(fake, key), capture_output=True, text=True,
                          timeout=FLOW_TIMEOUT)


def output(proc: subprocess.CompletedProcess) -> dict:
    assert proc.returncode == 0, f"flow failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
    return json.loads(proc.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------- fixtures

@pytest.fixture(scope="session")
def flow_bin() -> Path:
    prebuilt = os.environ.get("METACLAW_TINKER_FLOW")
    if prebuilt:
        return Path(prebuilt)
    proc = subprocess.run(["cargo", "build", "-q", "-p", "metaclaw-tinker", "--example", "flow",
                           "--message-format=json"], cwd=REPO, capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.fail(f"cannot build the flow example:\n{proc.stderr[-4000:]}")
    for line in proc.stdout.splitlines():
        msg = json.loads(line)
        if msg.get("reason") == "compiler-artifact" and msg.get("target", {}).get("name") == "flow" \
                and msg.get("executable"):
            return Path(msg["executable"])
    pytest.fail("cargo did not report the flow executable")


@pytest.fixture()
def tinker_fake():
    fake = FakeTinker().start()
    yield fake
    fake.stop()


@pytest.fixture(scope="module")
def both_flows(flow_bin):
    """Runs the SDK flow and the Rust flow, each against its own fake."""
    fakes = {"sdk": FakeTinker().start(), "rust": FakeTinker().start()}
    try:
        outputs = {"sdk": output(run_sdk(fakes["sdk"])), "rust": output(run_rust(flow_bin, fakes["rust"]))}
        yield fakes, outputs
    finally:
        for f in fakes.values():
            f.stop()


# --------------------------------------------------------------------------- normalisation

_ID_PATTERNS = [
    (re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"), "<session>"),
    (re.compile(r"\breq-\d+\b"), "<request>"),
    (re.compile(r"\bsampler-\d+\b"), "<sampler>"),
    (re.compile(r"\bseq-\d+\b"), "<sequence>"),
]


def normalise(value: Any) -> Any:
    """Replaces the fake's generated ids so two runs compare equal."""
    text = json.dumps(value)
    for pattern, placeholder in _ID_PATTERNS:
        text = pattern.sub(placeholder, text)
    return json.loads(text)


def header_view(rec) -> dict:
    """The headers that matter to the service (not User-Agent, X-Stainless-*,
    x-sdk-*, timing values or the idempotency key's value)."""
    h = rec.headers
    return {
        "content-type": h.get("content-type") if rec.method != "GET" else None,
        "accept": h.get("accept"),
        "x-api-key": h.get("x-api-key"),
        "x-idempotency-key": "x-idempotency-key" in h if rec.method != "GET" else None,
        "x-tinker-request-type": h.get("x-tinker-request-type"),
        "x-tinker-request-iteration": h.get("x-tinker-request-iteration"),
        "x-tinker-create-promise-roundtrip-time": "x-tinker-create-promise-roundtrip-time" in h,
        "x-tinker-sampling-backpressure": h.get("x-tinker-sampling-backpressure"),
    }


def calls(fake: FakeTinker) -> list[dict]:
    """Every request except the polls and the SDK-only ones, in order."""
    return [normalise({"method": r.method, "path": r.path, "status": r.status, "headers": header_view(r),
                       "format": r.body_format, "body": r.body})
            for r in fake.requests if r.path not in SDK_ONLY_PATHS and r.path != "retrieve_future"]


def polls(fake: FakeTinker) -> Counter:
    """The polls as a multiset (their interleaving with other calls is
    concurrency, not protocol)."""
    return Counter(json.dumps(normalise({"headers": header_view(r), "body": r.body, "status": r.status}),
                              sort_keys=True)
                   for r in fake.requests if r.path == "retrieve_future")


def shape(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: shape(v) for k, v in sorted(value.items())}
    if isinstance(value, list):
        return [shape(value[0])] if value else []
    return type(value).__name__


# --------------------------------------------------------------------------- the fake itself

def test_fake_protobuf_codec_matches_hand_written_bytes():
    # ForwardBackwardRequest: model "m", seq 2, one datum reading [5] with target_tokens int64 [6].
    tensor = bytes.fromhex("0a08" "0600000000000000" "1802" "220101")
    entry = bytes.fromhex("0a0d") + b"target_tokens" + bytes.fromhex("120f") + tensor
    chunk = bytes.fromhex("0a06" "0a04" "05000000")  # Chunk{encoded_text: {tokens: int32 LE [5]}}
    datum = bytes.fromhex("0a08") + chunk + bytes.fromhex("1220") + entry
    raw = (bytes.fromhex("0a01") + b"m" + bytes.fromhex("1002") + bytes.fromhex("1a2c") + datum
           + bytes.fromhex("2205") + b"cispo")
    decoded = decode_message("ForwardBackwardRequest", raw)
    assert decoded["model_id"] == "m" and decoded["seq_id"] == 2 and decoded["loss_fn"] == "cispo"
    t = decoded["data"][0]["loss_fn_inputs"]["target_tokens"]
    assert t["dtype"] == 2 and t["shape"] == [1] and struct.unpack("<q", t["dense"]) == (6,)
    assert decoded["data"][0]["model_input"][0]["encoded_text"]["tokens"] == bytes.fromhex("05000000")

    # SampleResponse: one sequence, stop=length, tokens [9], logprobs [-1.0].
    assert encode_sample_response([([9], [-1.0], "length")]) == bytes.fromhex(
        "0a0e" "0801" "1204" "09000000" "1a04" "000080bf")
    # ForwardBackwardOutput: "ArrayRecord", one datum logprobs [-2.0], metrics {"l:sum": 1.0}.
    out = encode_forward_backward_output([[-2.0]], {"l:sum": 1.0})
    batched = bytes.fromhex("0a04" "000000c0" "1210" "0000000000000000" "0400000000000000" "1801")
    entry = bytes.fromhex("0a08") + b"logprobs" + bytes.fromhex("121a") + batched
    record = bytes.fromhex("1226") + entry + bytes.fromhex("1801")
    metric = bytes.fromhex("0a05") + b"l:sum" + bytes.fromhex("11") + struct.pack("<d", 1.0)
    assert out == bytes.fromhex("0a0b") + b"ArrayRecord" + bytes.fromhex("122a") + record \
        + bytes.fromhex("1a10") + metric


def _post(fake: FakeTinker, path: str, body: dict) -> tuple[int, dict]:
    import urllib.error
    import urllib.request
    req = urllib.request.Request(f"{fake.base_url}/api/v1/{path}", data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json", "X-API-Key": fake.api_key})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def _result(fake: FakeTinker, request_id: str) -> dict:
    while True:
        status, body = _post(fake, "retrieve_future", {"request_id": request_id, "allow_metadata_only": False})
        assert status == 200
        if body.get("type") != "try_again":
            return body


def test_fake_checks_training_seq_order(tinker_fake):
    f = tinker_fake
    _, session = _post(f, "create_session", {"tags": [], "user_metadata": {}, "sdk_version": "0.38.0",
                                             "type": "create_session"})
    _, fut = _post(f, "create_model", {"session_id": session["session_id"], "model_seq_id": 0, "base_model": "b",
                                       "lora_config": {"rank": 4}, "optimizer_config": {"type": "adamw"}})
    model_id = _result(f, fut["request_id"])["model_id"]
    adam = {"learning_rate": 1e-4, "beta1": 0.9, "beta2": 0.95, "eps": 1e-12, "weight_decay": 0.0,
            "grad_clip_norm": 0.0}
    step = {"model_id": model_id, "type": "optim_step", "adam_params": adam}
    # seq 2 before seq 1: the future fails as a user error and the fake notes it.
    _, skipped = _post(f, "optim_step", {**step, "seq_id": 2})
    assert _result(f, skipped["request_id"]) == {
        "error": f"optim_step: seq_id 2 out of order for model {model_id} (expected 1)", "category": "user"}
    assert len(f.violations) == 1
    # In order it works, and a resent submission (same seq_id and body) is the same request.
    _, first = _post(f, "optim_step", {**step, "seq_id": 1})
    _, again = _post(f, "optim_step", {**step, "seq_id": 1})
    assert first["request_id"] == again["request_id"]
    assert _result(f, first["request_id"])["metrics"] == {"step:max": 1.0}
    # Bad inputs become a user error of the future, not an HTTP error.
    _, bad = _post(f, "optim_step", {**step, "seq_id": 2, "adam_params": {**adam, "eps": "x"}})
    assert _result(f, bad["request_id"])["category"] == "user"
    assert len(f.violations) == 1
    # Unknown futures are 404, a dropped session is 410.
    assert _post(f, "retrieve_future", {"request_id": "req-999"})[0] == 404
    f.drop_session()
    assert _post(f, "session_heartbeat", {"session_id": session["session_id"], "type": "session_heartbeat"})[0] \
        == 410


# --------------------------------------------------------------------------- the happy path

def test_sdk_flow_succeeds(both_flows):
    fakes, outputs = both_flows
    sdk = outputs["sdk"]
    assert fakes["sdk"].violations == []
    assert [len(lp) for lp in sdk["forward_backward"]["logprobs"]] == [4, 2]
    assert len(sdk["samples"]) == 2 and all(len(s["tokens"]) == 3 for s in sdk["samples"])
    assert sdk["checkpoint"].endswith("/weights/step_0001")
    assert sdk["sampler_path"].endswith("/sampler_weights/final")


def test_rust_flow_succeeds_with_the_same_results(both_flows):
    fakes, outputs = both_flows
    assert fakes["rust"].violations == []
    sdk, rust = normalise(outputs["sdk"]), normalise(outputs["rust"])
    # The fake computes the loss and log-probs from the request, so equal
    # numbers mean equal datums on the wire.
    assert rust["forward_backward"] == sdk["forward_backward"]
    assert rust["optim_step"] == sdk["optim_step"]
    assert rust["samples"] == sdk["samples"]
    assert rust["named_samples"] == sdk["named_samples"]
    assert rust["checkpoint"] == sdk["checkpoint"]
    assert rust["sampler_path"] == sdk["sampler_path"]
    assert rust["base_model"] == BASE_MODEL == rust["named_sampler_base_model"]


def test_identical_request_paths_and_order(both_flows):
    fakes, _ = both_flows
    sdk, rust = calls(fakes["sdk"]), calls(fakes["rust"])
    assert [(c["method"], c["path"]) for c in rust] == [(c["method"], c["path"]) for c in sdk]
    assert [c["path"] for c in rust][:4] == ["client/config", "create_session", "create_model", "get_info"]


def test_identical_headers_and_bodies(both_flows):
    fakes, _ = both_flows
    sdk, rust = calls(fakes["sdk"]), calls(fakes["rust"])
    for s, r in zip(sdk, rust, strict=True):
        assert r["headers"] == s["headers"], f"{r['path']} headers differ"
        assert r["format"] == s["format"], f"{r['path']} body format differs"
        assert shape(r["body"]) == shape(s["body"]), f"{r['path']} body shape differs"
        assert r["body"] == s["body"], f"{r['path']} body differs"
        assert r["status"] == s["status"] == 200


def test_identical_polls(both_flows):
    fakes, _ = both_flows
    assert polls(fakes["rust"]) == polls(fakes["sdk"])
    # Every future was polled through a try_again first (iteration 0 then 1).
    iterations = Counter(r.headers.get("x-tinker-request-iteration")
                         for r in fakes["rust"].requests if r.path == "retrieve_future")
    assert iterations["0"] == iterations["1"] > 0


def test_training_seq_ids_run_1_to_n(both_flows):
    fakes, _ = both_flows
    for fake in fakes.values():
        seqs = [r.body["seq_id"] for r in fake.requests
                if r.path in ("forward_backward", "optim_step", "save_weights", "save_weights_for_sampler",
                              "load_weights")]
        assert seqs == list(range(1, len(seqs) + 1))


def test_the_key_is_never_recorded(both_flows):
    fakes, _ = both_flows
    for fake in fakes.values():
        dump = json.dumps([r.headers for r in fake.requests])
        assert fake.api_key not in dump
        assert {r.headers["x-api-key"] for r in fake.requests} == {"<api-key>"}


# --------------------------------------------------------------------------- faults, both clients

CLIENTS = ["sdk", "rust"]


def run(client: str, flow_bin: Path, fake: FakeTinker, key: str | None = None) -> subprocess.CompletedProcess:
    return run_sdk(fake, key) if client == "sdk" else run_rust(flow_bin, fake, key)


@pytest.mark.parametrize("client", CLIENTS)
def test_transient_faults_are_retried(client, flow_bin, tinker_fake):
    f = tinker_fake
    f.fail("optim_step", 500)
    f.fail("create_model", 503)
    f.fail("asample", 429, retry_after="0.2")
    f.try_again_polls = 2
    f.metadata_first = True
    out = output(run(client, flow_bin, f))
    assert len(out["samples"]) == 2
    assert f.violations == []
    optim = [r for r in f.requests if r.path == "optim_step"]
    assert [r.status for r in optim] == [500, 200]
    assert optim[0].body == optim[1].body  # the same seq_id, resent
    assert [r.status for r in f.requests if r.path == "create_model"] == [503, 200]
    first_asample = [r for r in f.requests if r.path == "asample"][:2]
    assert [r.status for r in first_asample] == [429, 200]
    assert first_asample[0].body["seq_id"] == first_asample[1].body["seq_id"] == 0
    # The metadata-only answer was followed by a poll that disallows it.
    assert any(r.path == "retrieve_future" and r.body["allow_metadata_only"] is False for r in f.requests)
    if client == "rust":  # one idempotency key for the retries of one call
        assert optim[0].headers["x-idempotency-key"] == optim[1].headers["x-idempotency-key"]


@pytest.mark.parametrize("client", CLIENTS)
def test_expired_sample_is_resubmitted_with_a_new_seq_id(client, flow_bin, tinker_fake):
    tinker_fake.expire("Sample")
    out = output(run(client, flow_bin, tinker_fake))
    assert len(out["samples"]) == 2
    first_sampler = [r for r in tinker_fake.requests if r.path == "asample"][:2]
    assert [r.body["seq_id"] for r in first_sampler] == [0, 1]
    assert first_sampler[0].body["sampling_session_id"] == first_sampler[1].body["sampling_session_id"]
    assert any(r.path == "retrieve_future" and r.status == 410 for r in tinker_fake.requests)


def test_rust_reports_an_expired_training_future(flow_bin, tinker_fake):
    tinker_fake.expire("OptimStep")
    proc = run_rust(flow_bin, tinker_fake)
    assert proc.returncode == 1
    assert "[tinker.future_expired]" in proc.stderr and "expired on the server (410)" in proc.stderr


@pytest.mark.parametrize("client", CLIENTS)
def test_dropped_session_fails_clearly(client, flow_bin, tinker_fake):
    tinker_fake.session_timeout = 0.0  # the session ends as soon as it starts
    proc = run(client, flow_bin, tinker_fake)
    assert proc.returncode != 0
    assert [r.status for r in tinker_fake.requests if r.path == "create_model"][-1] == 410
    if client == "rust":
        assert "[tinker.session_gone]" in proc.stderr
        assert "the Tinker session is gone on the server (410)" in proc.stderr


@pytest.mark.parametrize("client", CLIENTS)
def test_wrong_key_is_rejected_without_leaking(client, flow_bin, tinker_fake):
    wrong = "tml-wrong-key-do-not-print-me"
    proc = run(client, flow_bin, tinker_fake, key=wrong)
    assert proc.returncode != 0
    assert tinker_fake.requests[0].path == "client/config" and tinker_fake.requests[0].status == 401
    assert {r.headers["x-api-key"] for r in tinker_fake.requests} == {"<wrong>"}
    if client == "rust":
        assert "[tinker.unauthorized]" in proc.stderr and "API key was rejected (401)" in proc.stderr
        assert wrong not in proc.stderr + proc.stdout
        assert len(tinker_fake.requests) == 1  # a 401 is not retried


@pytest.mark.parametrize("client", CLIENTS)
def test_jwt_exchange(client, flow_bin, tinker_fake):
    tinker_fake.jwt_auth = True
    output(run(client, flow_bin, tinker_fake))
    paths = [r.path for r in tinker_fake.requests]
    assert paths[:2] == ["client/config", "auth/token"]
    assert tinker_fake.requests[1].headers["x-api-key"] == "<api-key>"
    later = [r.headers["x-api-key"] for r in tinker_fake.requests[2:] if r.path not in SDK_ONLY_PATHS]
    assert later and set(later) == {"<jwt>"}


if __name__ == "__main__":
    if sys.argv[1:] == ["sdk-flow"]:
        print(json.dumps(sdk_flow()))
    else:
        sys.exit("usage: test_tinker_conformance.py sdk-flow")
