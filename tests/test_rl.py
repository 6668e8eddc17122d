"""The slow loop end to end: `metaclaw serve` in `rl` (and `auto`) mode, the
real `openai` client, the fake Tinker service (`fake_tinker.py`, its
sampler scripted to answer with chosen token ids) and a fake judge.

The model folder is written here: a tiny byte-level BPE `tokenizer.json`
built with the `tokenizers` package (ChatML / Qwen3 markup as added tokens)
and a small Qwen3-style chat template of our own. Nothing is downloaded.

Flow (`rl`): main turns are answered by the policy (a tool call, plain text,
whole and streamed) → the judge scores the finished sessions → a batch of 2
is full → forward-backward / optim-step / sampler save (+ a checkpoint, as
`rl.save_every` is 1) → the new sampler answers new sessions while a session
that started before the swap keeps version 0. `auto`: a full batch does not
train outside a window; `schedule train-now` opens one and the step runs; a
pause while a step's request runs on the service ends the step at the next
safe point and its batch outlives a restart. The client's sampling settings
(temperature, top-p/k, seed, stop strings, max tokens) reach the sampler;
`n` above 1 is refused.
"""

from __future__ import annotations

import json
import sqlite3
import struct
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable

import pytest

from fake_tinker import FakeTinker
from harness import Collector, ProxyServer, uid, wait_until

BASE_MODEL = "Qwen/Qwen3-4B-Instruct-2507"
TINKER_KEY = "tml-rl-e2e-key-0123456789"
JUDGE_KEY = "sk-judge-rl-0123456789abcdef"
STEP_DEADLINE = 60.0  # a hang guard for background work (judging, a step), not a threshold

TOOL_ARGS = {"city": "Paris"}
TOOLS = [{"type": "function", "function": {
    "name": "get_weather", "description": "Current weather of a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]

# --------------------------------------------------------------------------- the model folder

QWEN_SPLIT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
              r"|\s*[\r\n]+|\s+(?!\S)|\s+")
SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
MARKUP = ["<think>", "</think>", "<tool_call>", "</tool_call>", "<tool_response>", "</tool_response>"]

# A Qwen3-style ChatML template written for these tests: tools in the system
# turn, assistant tool calls as <tool_call> JSON, tool results folded into a
# user turn of <tool_response>s, an empty think block when thinking is off.
CHAT_TEMPLATE = r"""{%- if tools %}
{{- '<|im_start|>system\n' }}
{%- if messages[0].role == 'system' %}{{- messages[0].content + '\n\n' }}{%- endif %}
{{- '# Tools\n\nYou may call functions. Signatures within <tools></tools>:\n<tools>' }}
{%- for tool in tools %}{{- '\n' + (tool | tojson) }}{%- endfor %}
{{- '\n</tools>\n\nReturn each call as <tool_call>\n{"name": <name>, "arguments": <args>}\n</tool_call><|im_end|>\n' }}
{%- elif messages[0].role == 'system' %}
{{- '<|im_start|>system\n' + messages[0].content + '<|im_end|>\n' }}
{%- endif %}
{%- for message in messages %}
{%- if message.content is string %}{%- set content = message.content %}{%- else %}{%- set content = '' %}{%- endif %}
{%- if message.role == 'user' or (message.role == 'system' and not loop.first) %}
{{- '<|im_start|>' + message.role + '\n' + content + '<|im_end|>\n' }}
{%- elif message.role == 'assistant' %}
{{- '<|im_start|>assistant\n' + content }}
{%- for call in message.tool_calls or [] %}
{%- if call.function %}{%- set call = call.function %}{%- endif %}
{{- ('\n' if content or not loop.first else '') + '<tool_call>\n{"name": "' + call.name + '", "arguments": ' }}
{%- if call.arguments is string %}{{- call.arguments }}{%- else %}{{- call.arguments | tojson }}{%- endif %}
{{- '}\n</tool_call>' }}
{%- endfor %}
{{- '<|im_end|>\n' }}
{%- elif message.role == 'tool' %}
{%- if loop.first or messages[loop.index0 - 1].role != 'tool' %}{{- '<|im_start|>user' }}{%- endif %}
{{- '\n<tool_response>\n' + content + '\n</tool_response>' }}
{%- if loop.last or messages[loop.index0 + 1].role != 'tool' %}{{- '<|im_end|>\n' }}{%- endif %}
{%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
{{- '<|im_start|>assistant\n' }}
{%- if enable_thinking is defined and enable_thinking is false %}{{- '<think>\n\n</think>\n\n' }}{%- endif %}
{%- endif %}
"""


def _byte_char(b: int) -> str:
    """GPT-2's byte -> printable character table (byte-level BPE)."""
    def printable(x: int) -> bool:
        return 0x21 <= x <= 0x7E or 0xA1 <= x <= 0xAC or 0xAE <= x <= 0xFF
    if printable(b):
        return chr(b)
    return chr(256 + sum(1 for x in range(b) if not printable(x)))


def build_tokenizer():
    """A Qwen-like byte-level BPE: every byte is a token (0-255), three
    merges, then the ChatML specials and the tool/think markup."""
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

    vocab = {_byte_char(b): b for b in range(256)}
    vocab.update({"he": 256, "ll": 257, "hell": 258})
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[("h", "e"), ("l", "l"), ("he", "ll")]))
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(QWEN_SPLIT), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in SPECIAL])
    tok.add_tokens([AddedToken(t, special=False, normalized=False) for t in MARKUP])
    return tok


class Model:
    """The model folder handed to `rl.tokenizer`, and its tokenizer here."""

    def __init__(self, folder: Path):
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.tok = build_tokenizer()
        self.tok.save(str(folder / "tokenizer.json"))
        (folder / "tokenizer_config.json").write_text(json.dumps({
            "add_prefix_space": False, "bos_token": None,
            "eos_token": {"__type": "AddedToken", "content": "<|im_end|>", "lstrip": False, "normalized": False,
                          "rstrip": False, "single_word": False},
            "pad_token": "<|endoftext|>", "unk_token": None, "model_max_length": 131072,
            "tokenizer_class": "Qwen2Tokenizer", "chat_template": CHAT_TEMPLATE}), "utf-8")
        self.im_end = self.tok.token_to_id("<|im_end|>")
        self.im_start = self.tok.token_to_id("<|im_start|>")
        assert (self.im_start, self.im_end) == (260, 261)
        assert self.tok.token_to_id("<tool_call>") == 264

    def ids(self, text: str) -> list[int]:
        return self.tok.encode(text, add_special_tokens=False).ids

    def text(self, ids: list[int]) -> str:
        return self.tok.decode(ids, skip_special_tokens=False)


def last_user_message(prompt: str) -> str:
    parts = prompt.split("<|im_start|>user\n")
    return parts[-1].split("<|im_end|>")[0] if len(parts) > 1 else ""


def policy_script(model: Model) -> Callable[[list[int], Any], tuple[list[int], list[float]]]:
    """The scripted policy: a get_weather tool call when the user asks about
    the weather, else a plain reply naming the policy version that sampled it."""
    def answer(prompt_ids: list[int], sampler: Any) -> tuple[list[int], list[float]]:
        asked = last_user_message(model.text(prompt_ids))
        if "weather" in asked:
            reply = "<tool_call>\n" + json.dumps({"name": "get_weather", "arguments": TOOL_ARGS}) + "\n</tool_call>"
        else:
            reply = f"Plain answer from policy v{sampler.version}."
        ids = model.ids(reply) + [model.im_end]
        return ids, [round(-0.125 * (1 + i % 4), 6) for i in range(len(ids))]
    return answer


# --------------------------------------------------------------------------- the judge

class ScriptedJudge:
    """An OpenAI-format judge: `+1` for turns whose conversation holds
    "GOOD-", `-1` for "BAD-", `0` otherwise."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.prompts: list[str] = []
        judge = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format, *args):  # noqa: A002 - silence
                pass

            def do_POST(self):  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                prompt = body["messages"][-1]["content"]
                with judge.lock:
                    judge.prompts.append(prompt)
                score = "+1" if "GOOD-" in prompt else "-1" if "BAD-" in prompt else "0"
                raw = json.dumps({"id": "j", "object": "chat.completion", "created": 1, "model": body["model"],
                                  "choices": [{"index": 0, "finish_reason": "stop",
                                               "message": {"role": "assistant",
                                                           "content": f"Scripted verdict.\nScore: {score}"}}]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


# --------------------------------------------------------------------------- fixtures

@pytest.fixture()
def tinker():
    f = FakeTinker(api_key=TINKER_KEY).start()
    f.try_again_polls = 0
    yield f
    f.stop()


@pytest.fixture()
def judge():
    j = ScriptedJudge()
    yield j
    j.stop()


@pytest.fixture()
def model(tmp_path):
    return Model(tmp_path / "qwen-like")


def rl_settings(tinker: FakeTinker, judge: ScriptedJudge, model: Model, mode: str) -> dict:
    # dict order is the `config set` order: the mode last (it checks the rl.* settings).
    return {
        "rl.base_url": tinker.base_url,
        "rl.api_key": TINKER_KEY,
        "rl.model": BASE_MODEL,
        "rl.tokenizer": str(model.folder),
        "rl.batch_size": 2,
        "rl.save_every": 1,
        "prm.model": "judge-model",
        "prm.enabled": True,
        "prm.base_url": judge.base_url,
        "prm.api_key": JUDGE_KEY,
        "prm.votes": 1,
        "evolver.enabled": False,
        "curator.enabled": False,
        "mode": mode,
    }


# --------------------------------------------------------------------------- helpers

def ask(client, sid: str, text: str, *, stream: bool, history: list | None = None, done: bool = False) -> dict:
    """One chat turn through the proxy; returns what the client saw:
    {"content", "tool_calls", "finish_reason", "messages"}."""
    messages = list(history or []) + [{"role": "user", "content": text}]
    kw: dict[str, Any] = {"model": "policy", "messages": messages, "tools": TOOLS,
                          "extra_headers": {"X-Session-Id": sid}}
    if done:
        kw["extra_body"] = {"session_done": True}
    if not stream:
        r = client.chat.completions.create(**kw)
        msg = r.choices[0].message
        calls = [(c.function.name, json.loads(c.function.arguments)) for c in (msg.tool_calls or [])]
        out = {"content": msg.content, "tool_calls": calls, "finish_reason": r.choices[0].finish_reason}
        assistant = msg.model_dump(exclude_none=True)
    else:
        col = Collector(client.chat.completions.create(stream=True, **kw))
        col.run()
        assert col.error is None, col.error
        content, calls, finish = "", {}, None
        for chunk in col.items:
            if not chunk.choices:
                continue
            ch = chunk.choices[0]
            if ch.delta.content:
                content += ch.delta.content
            for tc in ch.delta.tool_calls or []:
                c = calls.setdefault(tc.index, {"name": "", "arguments": ""})
                if tc.function and tc.function.name:
                    c["name"] += tc.function.name
                if tc.function and tc.function.arguments:
                    c["arguments"] += tc.function.arguments
            finish = ch.finish_reason or finish
        assert len(col.items) > 1, "a streamed answer came as a single chunk"
        out = {"content": content or None,
               "tool_calls": [(c["name"], json.loads(c["arguments"])) for _, c in sorted(calls.items())],
               "finish_reason": finish}
        assistant = {"role": "assistant", "content": content or None}
    out["messages"] = messages + [assistant]
    return out


def requests_to(tinker: FakeTinker, path: str) -> list:
    with tinker.lock:
        return [r for r in tinker.requests if r.path == path and r.status == 200]


def sampled_versions(tinker: FakeTinker) -> list[tuple[str, int]]:
    """(sampling session, its policy version in the fake) of every asample, in order."""
    with tinker.lock:
        return [(r.body["sampling_session_id"], tinker.samplers[r.body["sampling_session_id"]].version)
                for r in tinker.requests if r.path == "asample" and r.status == 200]


def db_rows(home: Path, sql: str, *args: Any) -> list[tuple]:
    con = sqlite3.connect(f"file:{home / 'metaclaw.db'}?mode=ro", uri=True, timeout=5)
    try:
        return con.execute(sql, args).fetchall()
    finally:
        con.close()


def u32s(blob: bytes) -> list[int]:
    return list(struct.unpack(f"<{len(blob) // 4}I", blob))


def f32s(blob: bytes) -> list[float]:
    return list(struct.unpack(f"<{len(blob) // 4}f", blob))


def session_db_id(srv, sid: str) -> str:
    rows = db_rows(srv.mc.home, "SELECT id FROM sessions WHERE session_key = ?", f"id:{sid}")
    assert len(rows) == 1, rows
    return rows[0][0]


def turn_versions(srv, sid: str) -> list[int]:
    """The stored policy version of each turn of a session, in turn order."""
    return [v for (v,) in db_rows(
        srv.mc.home,
        "SELECT tt.policy_version FROM turns t JOIN turn_tokens tt ON tt.turn_id = t.id "
        "WHERE t.session_id = ? ORDER BY t.turn_index", session_db_id(srv, sid))]


def trained_steps(srv) -> list[dict]:
    return [s for s in srv.mc.json("train", "history", "--json") if s.get("outcome") == "trained"]


# --------------------------------------------------------------------------- tests

def test_rl_sessions_train_a_step_and_new_sessions_get_the_new_policy(proxies, tinker, judge, model):
    tinker.script_samples(policy_script(model))
    srv = proxies.start("openai", rl_settings(tinker, judge, model, "rl"), name="rl")
    client = srv.openai()
    m = uid()

    # A session that starts before the swap and stays open (its turn is not
    # settled, so it is not judged and not in the batch).
    old = f"old-{m}"
    first = ask(client, old, f"Say hello {m}", stream=False)
    assert first["content"] == "Plain answer from policy v0.", first
    assert first["tool_calls"] == [] and first["finish_reason"] == "stop"

    # Two finished sessions: a tool call (whole), a tool call (streamed).
    good = ask(client, f"good-{m}", f"GOOD-{m} what is the weather in Paris?", stream=False, done=True)
    assert good["tool_calls"] == [("get_weather", TOOL_ARGS)], good
    assert good["finish_reason"] == "tool_calls"
    assert not good["content"]
    bad = ask(client, f"bad-{m}", f"BAD-{m} weather in Paris please", stream=True, done=True)
    assert bad["tool_calls"] == [("get_weather", TOOL_ARGS)], bad
    assert bad["finish_reason"] == "tool_calls"
    assert not bad["content"]

    # All three were sampled from the base model's sampler (version 0), one session.
    v0 = sampled_versions(tinker)
    assert len(v0) == 3 and {s for s, _ in v0} == {v0[0][0]} and v0[0][1] == 0, v0
    base_sampler = v0[0][0]
    with tinker.lock:
        assert tinker.samplers[base_sampler].model_path is None
        assert tinker.samplers[base_sampler].base_model == BASE_MODEL

    # The judge scores the two finished sessions; the batch (2) is full; a step runs.
    steps = wait_until(lambda: trained_steps(srv), STEP_DEADLINE, 0.3, "a trained step in `train history`")
    assert len(steps) == 1, steps
    step = steps[0]
    assert step["policy_before"] == 0 and step["policy_after"] == 1, step
    assert step["loss"] == "importance_sampling"
    assert len(step["turn_ids"]) == 2
    assert step["reward_mean"] == 0 and step["reward_std"] == pytest.approx(1.0), step

    # What the service got: forward_backward (2 datums), optim_step, the sampler
    # save, and (save_every 1) the checkpoint and named sampler weights.
    fb = requests_to(tinker, "forward_backward")
    assert len(fb) == 1
    assert fb[0].body["loss_fn"] == "importance_sampling"
    data = fb[0].body["data"]
    assert len(data) == 2
    stored = {tid: tok for tid, *tok in db_rows(
        srv.mc.home, "SELECT turn_id, prompt_tokens, response_tokens, logprobs FROM turn_tokens")}
    advantages_seen = []
    for d in data:
        inputs = [t for c in d["model_input"] for t in c["encoded_text"]]
        target = d["loss_fn_inputs"]["target_tokens"]["dense"]
        lps = d["loss_fn_inputs"]["logprobs"]["dense"]
        adv = d["loss_fn_inputs"]["advantages"]["dense"]
        assert len(inputs) == len(target) == len(lps) == len(adv)
        # The shifted sequence: the model reads tokens[:-1], is scored on tokens[1:].
        assert inputs[1:] == target[:-1]
        decoded = model.text(target)
        assert "<tool_call>" in decoded and "get_weather" in decoded and decoded.endswith("<|im_end|>"), decoded
        # The response tokens carry the sampler's log-probs and one advantage; the prompt none.
        response = model.ids("<tool_call>\n" + json.dumps({"name": "get_weather", "arguments": TOOL_ARGS})
                             + "\n</tool_call>") + [model.im_end]
        n = len(response)
        assert target[-n:] == response
        assert lps[-n:] == pytest.approx([-0.125 * (1 + i % 4) for i in range(n)])
        assert all(a == 0 for a in adv[:-n]) and all(x == 0 for x in lps[:-n])
        assert len(set(adv[-n:])) == 1 and abs(adv[-1]) == pytest.approx(1.0, rel=1e-3)
        advantages_seen.append(adv[-1])
        # The datum is a batch turn's stored prompt + response, with its stored log-probs.
        full = inputs + [target[-1]]
        matches = [tid for tid, (p, r, lp) in stored.items() if u32s(p) + u32s(r) == full]
        assert len(matches) == 1 and matches[0] in step["turn_ids"], (matches, step["turn_ids"])
        assert f32s(stored[matches[0]][2]) == pytest.approx(lps[-n:])
    assert sorted(advantages_seen)[0] < 0 < sorted(advantages_seen)[1], advantages_seen
    assert len(requests_to(tinker, "optim_step")) == 1
    saves = requests_to(tinker, "save_weights_for_sampler")
    assert len(saves) == 2, saves
    assert "sampling_session_seq_id" in saves[0].body
    assert saves[1].body.get("path") == "metaclaw-policy-000001"
    assert [r.body.get("path") for r in requests_to(tinker, "save_weights")] == ["metaclaw-policy-000001"]
    assert tinker.violations == []

    # The new sampler (version 1 in the fake) is on the step; checkpoints listed.
    new_samplers = [s for s in tinker.samplers.values() if s.version == 1]
    assert len(new_samplers) == 1
    new_sampler = new_samplers[0].id
    assert step["sampler_id"] == new_sampler, step
    checkpoints = srv.mc.json("checkpoints", "list", "--json")
    paths = sorted(c["path"] for c in checkpoints)
    assert any(p.endswith("/weights/metaclaw-policy-000001") for p in paths), checkpoints
    assert any(p.endswith("/sampler_weights/metaclaw-policy-000001") for p in paths), checkpoints
    assert all(c["step"] == step["id"] for c in checkpoints), checkpoints

    # The session that started before the swap keeps version 0 (its sampler);
    # a new session gets version 1 (the new sampler), streamed and whole.
    again = ask(client, old, f"And again {m}", stream=True, history=first["messages"])
    assert again["content"] == "Plain answer from policy v0.", again
    fresh = ask(client, f"new-{m}", f"Hello again {m}", stream=False)
    assert fresh["content"] == "Plain answer from policy v1.", fresh
    fresh_tool = ask(client, f"new2-{m}", f"weather in Paris {m}?", stream=True)
    assert fresh_tool["tool_calls"] == [("get_weather", TOOL_ARGS)]
    after = sampled_versions(tinker)[3:]
    assert after == [(base_sampler, 0), (new_sampler, 1), (new_sampler, 1)], after

    # The store agrees: every turn's policy version.
    wait_until(lambda: len(db_rows(srv.mc.home, "SELECT 1 FROM turn_tokens")) == 6, 10, 0.2,
               "six turns with policy tokens")
    assert turn_versions(srv, old) == [0, 0]
    assert turn_versions(srv, f"good-{m}") == [0]
    assert turn_versions(srv, f"bad-{m}") == [0]
    assert turn_versions(srv, f"new-{m}") == [1]
    assert turn_versions(srv, f"new2-{m}") == [1]

    # `train history` / `train status` stay consistent: one step, policy v1.
    status = srv.mc.json("train", "status", "--json")
    assert status["mode"] == "rl" and status["training"] is True, status
    summary = status["summary"]
    assert summary["policy_version"] == 1 and summary["trained_steps"] == 1, summary
    assert summary["failed_steps"] == 0, summary
    # The old session's first turn was settled by its follow-up and judged
    # (0): it starts the next batch (1 of 2), no second step.
    old_first = db_rows(srv.mc.home, "SELECT id FROM turns WHERE session_id = ? AND turn_index = 0",
                        session_db_id(srv, old))[0][0]
    assert old_first not in step["turn_ids"]
    wait_until(lambda: srv.mc.json("train", "status", "--json")["summary"]["pending_turns"] == [old_first],
               10, 0.2, "the old session's first turn in the pending batch")
    assert len(trained_steps(srv)) == 1
    assert len(requests_to(tinker, "forward_backward")) == 1
    assert summary["last_checkpoint"]["path"].endswith("metaclaw-policy-000001"), summary

    # After a restart new sessions are answered by the saved policy (v1),
    # not the base model. The judge is switched off first: the restart ends
    # the open sessions, and scoring them would fill a batch and train v2.
    srv.stop()
    srv.mc.config_set("prm.enabled", False)
    srv.start()
    client = srv.openai()
    restarted = ask(client, f"restarted-{m}", "Say something.", stream=False)
    assert restarted["content"] == "Plain answer from policy v1.", restarted
    wait_until(lambda: turn_versions(srv, f"restarted-{m}") == [1], 10, 0.2,
               "the restarted session's turn stored as policy v1")


def test_auto_mode_steps_only_in_a_window(proxies, tinker, judge, model):
    tinker.script_samples(policy_script(model))
    settings = rl_settings(tinker, judge, model, "auto")
    # No sleep hours, a long idle threshold and no display: no window opens by itself.
    settings = {"scheduler.sleep_start": "", "scheduler.idle_threshold_minutes": 600,
                "scheduler.min_window_minutes": 0, **settings}
    srv = proxies.start("openai", settings, name="auto", env_extra={"DISPLAY": ""})
    client = srv.openai()
    m = uid()
    for i, tag in enumerate(["GOOD", "BAD", "GOOD"]):
        r = ask(client, f"auto-{i}-{m}", f"{tag}-{m} weather in Paris?", stream=bool(i % 2), done=True)
        assert r["tool_calls"] == [("get_weather", TOOL_ARGS)], r

    # Every finished turn is scored: a batch (2) is full.
    def scored():
        rows = db_rows(srv.mc.home, "SELECT score FROM judgements WHERE state = 'scored'")
        return rows if len(rows) == 3 else None
    rows = wait_until(scored, STEP_DEADLINE, 0.3, "three scored turns")
    assert sorted(r[0] for r in rows) == [-1, 1, 1]
    status = srv.mc.json("schedule", "status", "--json")["status"]
    assert status["state"] == "waiting", status
    # Full batches, no window: nothing was sent for training (checked after the
    # trainer had the scoring events and a look at the store).
    wait_until(lambda: db_rows(srv.mc.home, "SELECT count(*) FROM training_pending")[0][0] >= 2, 10, 0.2,
               "the trainer to take a batch as pending")
    assert requests_to(tinker, "forward_backward") == []
    assert requests_to(tinker, "optim_step") == []
    assert trained_steps(srv) == []
    pending = srv.mc.json("train", "status", "--json")["summary"]["pending_turns"]
    assert len(pending) == 2, pending

    # A restart keeps the pending batch, and still no window, no step.
    srv.stop()
    srv = ProxyServer(srv.mc, "auto-restarted", {"DISPLAY": ""}).start()
    proxies.servers.append(srv)
    client = srv.openai()
    assert srv.mc.json("train", "status", "--json")["summary"]["pending_turns"] == pending
    assert srv.mc.json("schedule", "status", "--json")["status"]["state"] == "waiting"
    assert requests_to(tinker, "forward_backward") == []

    out = srv.mc.run("schedule", "train-now").stdout
    assert "training window opened" in out, out
    steps = wait_until(lambda: trained_steps(srv), STEP_DEADLINE, 0.3, "a trained step after train-now")
    assert steps[0]["policy_before"] == 0 and steps[0]["policy_after"] == 1
    assert steps[0]["window_id"], steps[0]
    assert steps[0]["turn_ids"] == pending, (steps[0], pending)
    assert len(requests_to(tinker, "forward_backward")) >= 1
    assert len(requests_to(tinker, "optim_step")) >= 1
    # The window's work is recorded as the trainer's.
    def trainer_work():
        day = srv.mc.json("schedule", "timeline", "--json")
        for window in day["windows"]:
            for work in window["work"]:
                if work["worker"] == "trainer" and work["outcome"] is not None:
                    return window, work
        return None
    window, work = wait_until(trainer_work, STEP_DEADLINE, 0.3, "the trainer's work in the timeline")
    assert window["triggers"] == ["manual"]
    assert window["id"] == steps[0]["window_id"]
    # A new session samples from the new policy.
    fresh = ask(client, f"auto-new-{m}", f"hi {m}", stream=False)
    assert fresh["content"] == "Plain answer from policy v1.", fresh


def auto_settings(tinker: FakeTinker, judge: ScriptedJudge, model: Model) -> dict:
    # No sleep hours, a long idle threshold and no display: no window opens by itself.
    return {"scheduler.sleep_start": "", "scheduler.idle_threshold_minutes": 600,
            "scheduler.min_window_minutes": 0, **rl_settings(tinker, judge, model, "auto")}


def trainer_work(srv) -> list[dict]:
    """The trainer's finished pieces of work in today's timeline, oldest first."""
    day = srv.mc.json("schedule", "timeline", "--json")
    return [work for window in day["windows"] for work in window["work"]
            if work["worker"] == "trainer" and work["outcome"] is not None]


def test_auto_mode_a_pause_mid_step_keeps_the_batch_across_a_restart(proxies, tinker, judge, model):
    tinker.script_samples(policy_script(model))
    srv = proxies.start("openai", auto_settings(tinker, judge, model), name="auto-pause", env_extra={"DISPLAY": ""})
    client = srv.openai()
    m = uid()
    for i, tag in enumerate(["GOOD", "BAD"]):
        r = ask(client, f"pause-{i}-{m}", f"{tag}-{m} weather in Paris?", stream=False, done=True)
        assert r["tool_calls"] == [("get_weather", TOOL_ARGS)], r
    batch = wait_until(lambda: (p := srv.mc.json("train", "status", "--json")["summary"]["pending_turns"])
                       and len(p) == 2 and p, STEP_DEADLINE, 0.3, "a full batch pending")

    # The optimizer step "runs" on the service until released: the step is
    # in flight when the user pauses learning.
    tinker.hold("OptimStep")
    assert "training window opened" in srv.mc.run("schedule", "train-now").stdout
    wait_until(lambda: tinker.held_polls("OptimStep") >= 1, STEP_DEADLINE, 0.1,
               "the step waiting on its optimizer step")
    assert len(requests_to(tinker, "forward_backward")) == 1
    assert "learning paused until" in srv.mc.run("schedule", "pause", "--for", "2h").stdout
    # The request already submitted is awaited; the step stops before the next one.
    tinker.release("OptimStep")
    work = wait_until(lambda: trainer_work(srv), STEP_DEADLINE, 0.3, "the trainer's work to end")
    assert [w["outcome"] for w in work] == ["paused"], work
    assert "paused with 2 turns kept" in (work[0]["summary"] or ""), work
    assert len(requests_to(tinker, "optim_step")) == 1
    assert requests_to(tinker, "save_weights_for_sampler") == [], "the paused step saved a sampler"
    status = srv.mc.json("train", "status", "--json")["summary"]
    assert status["pending_turns"] == batch and status["trained_steps"] == 0, status
    assert srv.mc.json("schedule", "status", "--json")["status"]["state"] == "waiting"

    # A restart keeps the batch (the service's half-done step is not reused).
    srv.stop()
    srv = ProxyServer(srv.mc, "auto-pause-restarted", {"DISPLAY": ""}).start()
    proxies.servers.append(srv)
    assert srv.mc.json("train", "status", "--json")["summary"]["pending_turns"] == batch
    assert trained_steps(srv) == []

    # The next window trains that very batch, from the start, on a new connection.
    srv.mc.run("schedule", "resume")
    srv.mc.run("schedule", "train-now")
    steps = wait_until(lambda: trained_steps(srv), STEP_DEADLINE, 0.3, "the kept batch trained")
    assert len(steps) == 1 and steps[0]["turn_ids"] == batch, (steps, batch)
    assert (steps[0]["policy_before"], steps[0]["policy_after"]) == (0, 1)
    assert len(requests_to(tinker, "create_session")) >= 2
    assert len(requests_to(tinker, "forward_backward")) == 2
    assert len(requests_to(tinker, "optim_step")) == 2
    assert srv.mc.json("train", "status", "--json")["summary"]["pending_turns"] == []
    assert tinker.violations == []


def test_the_clients_sampling_settings_reach_the_sampler(proxies, tinker, judge, model):
    import openai

    answer = "It is sunny in Paris. END of the answer"
    tinker.script_samples(lambda prompt, sampler: model.ids(answer) + [model.im_end])
    settings = rl_settings(tinker, judge, model, "rl")
    settings["prm.enabled"] = False
    srv = proxies.start("openai", settings, name="rl-params")
    client = srv.openai()
    r = client.chat.completions.create(
        model="policy", messages=[{"role": "user", "content": "Weather?"}], temperature=0.25, top_p=0.5,
        seed=11, max_tokens=40, stop=["END"], extra_body={"top_k": 7}, extra_headers={"X-Session-Id": uid()})
    assert r.choices[0].message.content == "It is sunny in Paris. ", r
    assert r.choices[0].finish_reason == "stop"
    params = requests_to(tinker, "asample")[-1].body["sampling_params"]
    assert params == {"max_tokens": 40, "seed": 11, "stop": ["END", "<|im_end|>"],
                      "temperature": 0.25, "top_k": 7, "top_p": 0.5}, params

    # Streamed, without settings: the model's stop token ids and the defaults.
    col = Collector(client.chat.completions.create(
        model="policy", messages=[{"role": "user", "content": "Again?"}], stream=True,
        extra_headers={"X-Session-Id": uid()}))
    col.run()
    assert col.error is None, col.error
    text = "".join(c.choices[0].delta.content or "" for c in col.items if c.choices)
    assert text == answer, text
    params = requests_to(tinker, "asample")[-1].body["sampling_params"]
    assert params["stop"] == [model.im_end], params
    assert (params["temperature"], params["top_p"], params["top_k"]) == (1.0, 1.0, -1), params

    # Several choices cannot come from one sample: a clear 400, nothing sampled.
    before = len(requests_to(tinker, "asample"))
    with pytest.raises(openai.BadRequestError) as refused:
        client.chat.completions.create(model="policy", messages=[{"role": "user", "content": "Two?"}], n=2,
                                       extra_headers={"X-Session-Id": uid()})
    assert "n: is 2, but the policy being trained answers with one sample per request" in str(refused.value)
    assert len(requests_to(tinker, "asample")) == before
