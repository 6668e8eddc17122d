"""The PRM judge end to end: the real openai client makes a turn through
`metaclaw serve`, the user's correction follows, and a local fake judge
(OpenAI wire format, scripted replies including a 500 and an unparseable
score) scores the first turn in the background; `metaclaw sessions show
--json` then shows its score, votes and reason."""

from __future__ import annotations

import itertools
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from harness import uid, wait_until

JUDGE_KEY = "sk-judge-test-0123456789abcdef"


class FakeJudge:
    """Answers /v1/chat/completions with scripted replies, in turn."""

    def __init__(self, script: list[tuple[int, str]]):
        self.script = itertools.cycle(script)
        self.lock = threading.Lock()
        self.prompts: list[str] = []
        self.auth: list[str] = []
        judge = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format, *args):  # noqa: A002 - silence
                pass

            def do_POST(self):  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with judge.lock:
                    judge.prompts.append(body["messages"][-1]["content"])
                    judge.auth.append(self.headers.get("Authorization", ""))
                    status, text = next(judge.script)
                if status == 200:
                    data = json.dumps({"id": "j1", "object": "chat.completion", "created": 1,
                                       "model": body["model"],
                                       "choices": [{"index": 0, "finish_reason": "stop",
                                                    "message": {"role": "assistant", "content": text}}]})
                else:
                    data = text
                raw = data.encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def __enter__(self) -> "FakeJudge":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture()
def judge():
    script = [
        (200, "The user had to correct the time zone offset.\nScore: -1"),
        (500, '{"error": {"message": "judge overloaded"}}'),
        (200, "Looks fine to me.\nScore: great"),
    ]
    with FakeJudge(script) as j:
        yield j


def test_a_corrected_turn_is_scored_with_its_votes_and_reason(proxies, judge):
    srv = proxies.start("openai", {
        # The model first: enabling PRM without one is refused.
        "prm.model": "judge-model",
        "prm.enabled": True,
        "prm.base_url": judge.base_url,
        "prm.api_key": JUDGE_KEY,
        "prm.votes": 3,
        "prm.timeout_secs": 5,
    }, name="prm")
    assert srv.mc.config_get("prm.api_key") != JUDGE_KEY, "the judge key must show masked"

    sid, m = f"prm-{uid()}", uid()
    client = srv.openai()
    history = [{"role": "user", "content": f"List my meetings for Monday {m}"}]
    first = client.chat.completions.create(model="fake-gpt-4o", max_tokens=64, messages=history,
                                           extra_headers={"X-Session-Id": sid})
    history += [{"role": "assistant", "content": first.choices[0].message.content},
                {"role": "user", "content": "no, the dates must include the +08:00 offset"}]
    client.chat.completions.create(model="fake-gpt-4o", max_tokens=64, messages=history,
                                   extra_headers={"X-Session-Id": sid})

    def scored():
        for detail in srv.mc.sessions_with(m):
            turns = detail["turns"]
            if turns and turns[0].get("score") is not None:
                return turns[0]
        return None

    turn = wait_until(scored, 30, 0.3, "the first turn to be scored")
    # Three votes: one -1, a 500 and an unparseable score. The failed votes
    # are failures (not zeros); the successful one decides.
    assert turn["score"] == -1
    assert turn["judge_state"] == "scored"
    votes = turn["votes"]
    assert len(votes) == 3
    assert all(("score" in v) != ("failure" in v) for v in votes), votes
    assert [v["score"] for v in votes if "score" in v] == [-1]
    failures = " | ".join(v["failure"] for v in votes if "failure" in v)
    assert "HTTP 500" in failures and '"great"' in failures, failures
    assert turn["judge_reason"] == "The user had to correct the time zone offset."

    # The judge read the user's correction as the next message, and got its own key.
    prompt = next(p for p in judge.prompts if f"Monday {m}" in p and "## The user's next message" in p)
    assert "no, the dates must include the +08:00 offset" in prompt.split("## The user's next message")[1]
    assert all(a == f"Bearer {JUDGE_KEY}" for a in judge.auth)

    # The table view shows the score too.
    session_id = srv.mc.sessions_with(m)[0]["session"]["id"]
    table = srv.mc.run("sessions", "show", session_id).stdout
    assert "SCORE" in table and "-1" in table, table
