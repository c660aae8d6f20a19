"""push_to_hub / save_pretrained(push_to_hub=True) against a local fake Hub, with the real huggingface_hub client.

huggingface_hub reads ``HF_ENDPOINT`` once, when it is imported (this process imported it long ago), so each push
runs in a fresh Python process whose environment points the client at the fake Hub (see ``hub_server.py``) and
disables Xet storage, so that the regular / LFS upload path is the one taken.
"""

from __future__ import annotations

import hashlib
import json
import os
import pathlib
import queue
import subprocess
import sys
import threading

import pytest

from hub_http import fake_hub
from optimum_wc import OVModelForCausalLM
from tiny_models import build_tiny_model

pytestmark = pytest.mark.slow  # exports, saves and uploads to a local Hub stand-in

REPO = pathlib.Path(__file__).resolve().parents[2]
TOKEN = "fake-token"
COMMIT_MESSAGE = "Upload model compressed with optimum-wc"
NOTES = "Pushed by tests/hf/test_hub.py.\n"

# The child process: reads one JSON step per line on stdin, loads the saved model and pushes it as the step says,
# then prints what the call returned (or the error) on one line of stdout.
WORKER = r"""
import json, sys, traceback
from optimum_wc import OVModelForCausalLM

for line in sys.stdin:
    step = json.loads(line)
    try:
        model = OVModelForCausalLM.from_pretrained(step["folder"], compile=False)
        kwargs = step["kwargs"]
        if step["action"] == "push_to_hub":
            result = model.push_to_hub(step["folder"], step["repository_id"], **kwargs)
        else:
            target = kwargs.pop("save_directory")
            result = model.save_pretrained(target, push_to_hub=True, repository_id=step["repository_id"], **kwargs)
        answer = {"result": result, "type": type(result).__name__}
    except Exception:
        answer = {"error": traceback.format_exc()}
    print("PUSH-RESULT " + json.dumps(answer), flush=True)
"""
STEP_TIMEOUT_S = 120


class Pusher:
    """One long-lived child process whose huggingface_hub talks to ``hub`` (importing optimum-wc takes seconds)."""

    def __init__(self, hub, log: pathlib.Path):
        env = {
            k: v
            for k, v in os.environ.items()
            if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_TOKEN", "HUGGING_FACE_HUB_TOKEN")
            and not k.lower().endswith("_proxy")
        }
        env.update(
            HF_ENDPOINT=hub.url,  # read by huggingface_hub when it is imported
            HF_HUB_DISABLE_XET="1",  # with hf_xet installed, the client would upload through Xet whatever the Hub says
            HF_HUB_DISABLE_TELEMETRY="1",
            HF_HUB_DISABLE_PROGRESS_BARS="1",
            NO_PROXY="127.0.0.1,localhost",
            PYTHONUNBUFFERED="1",
            PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")])),
        )
        self.log = log
        self._stderr = open(log, "wb")
        self.process = subprocess.Popen(
            [sys.executable, "-c", WORKER],
            cwd=REPO,
            env=env,
            text=True,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
        )
        self.lines: queue.Queue = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.put(line)
        self.lines.put(None)  # end of output: the child is gone

    def __call__(self, action: str, folder: pathlib.Path, repository_id: str, **kwargs) -> str:
        """Runs ``action`` in the child; returns what it returned (a ``str`` is expected)."""
        kwargs.setdefault("token", TOKEN)
        step = {"action": action, "folder": str(folder), "repository_id": repository_id, "kwargs": kwargs}
        self.process.stdin.write(json.dumps(step) + "\n")
        self.process.stdin.flush()
        while True:
            try:
                line = self.lines.get(timeout=STEP_TIMEOUT_S)
            except queue.Empty:
                pytest.fail(f"no answer from the push child in {STEP_TIMEOUT_S} s:\n{self._tail()}")
            if line is None:
                pytest.fail(f"the push child died:\n{self._tail()}")
            if line.startswith("PUSH-RESULT "):
                break
        answer = json.loads(line[len("PUSH-RESULT ") :])
        assert "error" not in answer, f"{action} failed in the child:\n{answer.get('error')}\n{self._tail()}"
        assert answer["type"] == "str"
        return answer["result"]

    def _tail(self) -> str:
        self._stderr.flush()
        return self.log.read_text(errors="replace")[-6000:]

    def close(self) -> None:
        try:
            self.process.stdin.close()
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=30)
        finally:
            self._stderr.close()


@pytest.fixture(scope="module")
def hub():
    with fake_hub() as server:
        yield server


@pytest.fixture(scope="module")
def push(hub, tmp_path_factory):
    pusher = Pusher(hub, tmp_path_factory.mktemp("push-child") / "stderr.log")
    yield pusher
    pusher.close()


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> pathlib.Path:
    """A tiny GPT-2, exported and compressed to int8 by optimum-wc, saved, plus a file in a subfolder."""
    root = tmp_path_factory.mktemp("hub")
    build_tiny_model("gpt2").save_pretrained(root / "checkpoint")
    model = OVModelForCausalLM.from_pretrained(root / "checkpoint", export=True, load_in_8bit=True, compile=False)
    folder = root / "saved"
    model.save_pretrained(folder)
    (folder / "extra").mkdir()
    (folder / "extra" / "notes.txt").write_text(NOTES)
    return folder


def _files(folder: pathlib.Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


class Activity:
    """What the fake Hub saw from ``start`` on (the hub is shared by the tests of this module; they run in turn)."""

    def __init__(self, hub, start: tuple[int, int, int, int]):
        self.requests = hub.requests[start[0] :]
        self.commits = hub.commits[start[1] :]
        self.lfs_uploads = hub.lfs_uploads[start[2] :]
        self.lfs_verified = hub.lfs_verified[start[3] :]


def _mark(hub) -> tuple[int, int, int, int]:
    return len(hub.requests), len(hub.commits), len(hub.lfs_uploads), len(hub.lfs_verified)


def _check_requests(hub, activity: Activity) -> None:
    """Only endpoints the fake Hub knows were called, all went well, and every Hub API call carried the token."""
    assert hub.unhandled == []
    assert [(r.method, r.path, r.status) for r in activity.requests if r.status >= 400 and r.status != 409] == []
    for request in activity.requests:
        if request.method == "PUT":  # the LFS object upload goes to a pre-signed URL, without the token
            assert request.path.startswith("/_fake_lfs/")
        else:
            assert request.headers.get("authorization") == f"Bearer {TOKEN}", (request.method, request.path)


def test_push_to_hub_uploads_the_saved_folder_as_is_in_one_commit(hub, push, saved):
    local = _files(saved)
    assert {
        "openvino_model.xml",
        "openvino_model.bin",
        "openvino_config.json",
        "config.json",
        "README.md",
        "extra/notes.txt",
    } <= set(local)
    start = _mark(hub)
    url = push("push_to_hub", saved, "user/tiny-int8")
    seen = Activity(hub, start)

    created = [r.json() for r in seen.requests if r.path == "/api/repos/create"]
    assert created == [{"name": "tiny-int8", "organization": "user"}]  # private=None: the Hub's default visibility
    remote = hub.repos["user/tiny-int8"]
    assert sorted(remote) == sorted(local)  # same relative paths, subfolder included
    for path, data in local.items():
        assert remote[path] == data, path
    assert remote["extra/notes.txt"] == NOTES.encode()
    assert b"optimum-wc" in remote["README.md"]
    assert json.loads(remote["openvino_config.json"])["dtype"] == "int8_asym"

    [commit] = seen.commits  # a single commit with the documented message
    assert (commit.repo_id, commit.revision, commit.summary) == ("user/tiny-int8", "main", COMMIT_MESSAGE)
    assert url == f"{hub.url}/user/tiny-int8/commit/{commit.oid}"
    # The weights went through the LFS batch API, PUT and verify; the text files were sent inline in the commit.
    weights = ("user/tiny-int8", hashlib.sha256(local["openvino_model.bin"]).hexdigest())
    assert "openvino_model.bin" in commit.lfs and weights in seen.lfs_uploads and weights in seen.lfs_verified
    assert {"openvino_model.xml", "openvino_config.json", "config.json", "README.md", "extra/notes.txt"} <= set(
        commit.regular
    )
    assert sorted(commit.regular + commit.lfs) == sorted(local) and commit.deleted == []
    _check_requests(hub, seen)


def test_push_to_an_existing_repo_commits_only_what_changed(hub, push, saved, tmp_path):
    changed = tmp_path / "changed"
    for path, data in _files(saved).items():
        (changed / path).parent.mkdir(parents=True, exist_ok=True)
        (changed / path).write_bytes(data)
    (changed / "extra" / "notes.txt").write_text(NOTES + "second push\n")
    start = _mark(hub)
    first = push("push_to_hub", saved, "user/tiny-int8-twice", private=True)
    second = push("push_to_hub", changed, "user/tiny-int8-twice", private=True)
    again = push("push_to_hub", changed, "user/tiny-int8-twice")  # nothing changed: no commit, the head's URL
    seen = Activity(hub, start)

    creates = [r for r in seen.requests if r.path == "/api/repos/create"]
    assert [r.status for r in creates] == [200, 409, 409]  # exist_ok: later pushes reuse the repo
    assert creates[0].json() == {"name": "tiny-int8-twice", "organization": "user", "visibility": "private"}
    assert hub.repos["user/tiny-int8-twice"] == _files(changed)
    first_commit, second_commit = seen.commits
    assert sorted(first_commit.regular + first_commit.lfs) == sorted(_files(saved))
    assert second_commit.regular + second_commit.lfs == ["extra/notes.txt"]  # unchanged files are not sent again
    assert first == f"{hub.url}/user/tiny-int8-twice/commit/{first_commit.oid}"
    assert second == f"{hub.url}/user/tiny-int8-twice/commit/{second_commit.oid}" and first != second
    assert again == second
    assert len(seen.lfs_uploads) == len(set(seen.lfs_uploads))  # the weights were not uploaded twice
    _check_requests(hub, seen)


def test_save_pretrained_with_push_to_hub(hub, push, saved, tmp_path):
    target = tmp_path / "resaved"
    start = _mark(hub)
    url = push("save_pretrained", saved, "org/tiny-int8-resaved", save_directory=str(target))
    seen = Activity(hub, start)

    local = _files(target)
    assert {"openvino_model.xml", "openvino_model.bin", "openvino_config.json", "README.md"} <= set(local)
    assert "extra/notes.txt" not in local  # save_pretrained writes a fresh folder
    assert hub.repos["org/tiny-int8-resaved"] == local
    [commit] = seen.commits
    assert commit.summary == COMMIT_MESSAGE and url == f"{hub.url}/org/tiny-int8-resaved/commit/{commit.oid}"
    assert "openvino_model.bin" in commit.lfs
    _check_requests(hub, seen)


def test_a_network_failure_is_our_error_naming_the_repository(saved, tmp_path):
    """A Hub that cannot be reached raised httpx's ConnectError from deep inside huggingface_hub."""
    import socket

    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    script = f"""
import optimum_wc
from optimum_wc import OVModelForCausalLM
try:
    OVModelForCausalLM.push_to_hub(None, {str(saved)!r}, "me/unreachable", token="hf_test")
except optimum_wc.HubUploadError as exc:
    print("CAUGHT", exc)
"""
    env = {
        **os.environ,
        "HF_ENDPOINT": f"http://127.0.0.1:{port}",
        "HF_HUB_DISABLE_XET": "1",
        "NO_PROXY": "127.0.0.1",
        "PYTHONPATH": str(REPO),
    }
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
    assert "CAUGHT" in done.stdout, done.stderr[-3000:]
    assert "'me/unreachable'" in done.stdout and "saved folder is unchanged" in done.stdout
