"""A tiny local stand-in for the Hugging Face Hub upload API, for tests that must not touch the network.

Only what ``HfApi.create_repo`` and ``HfApi.upload_folder`` (huggingface_hub 1.x, legacy non-Xet path) call is
implemented, with the request and response shapes of the real Hub:

========  ==================================================  ===============================================
POST      /api/repos/create                                   create a repo (409 if it exists)
POST      /api/validate-yaml                                  README.md metadata check (always valid)
POST      /api/{type}s/{repo_id}/preupload/{revision}         "regular" or "lfs" per file (see ``upload_mode``)
POST      /[{type}s/]{repo_id}.git/info/lfs/objects/batch     LFS batch API: hands out upload + verify URLs
PUT       /_fake_lfs/{repo}/{oid}                             the object upload (its sha256 is checked)
POST      /_fake_lfs/{repo}/verify                            the LFS verify step
POST      /api/{type}s/{repo_id}/commit/{revision}            NDJSON commit: header / file / lfsFile / deleted*
GET       /api/{type}s/{repo_id}[/revision/{revision}]        minimal repo info
========  ==================================================  ===============================================

Everything else is answered 404 (and recorded, see ``FakeHub.unhandled``). Errors are 4xx, never 5xx, so the
client does not retry with back-off. The client must not use Xet storage: ``hf_xet`` being installed is enough
for huggingface_hub to upload through Xet whatever the server says, so run it with ``HF_HUB_DISABLE_XET=1``.

The HTTP side is in ``hub_http.py``: ``fake_hub()`` serves a ``FakeHub`` on 127.0.0.1 only, on a free port, until
the context exits.
"""

from __future__ import annotations

import base64
import dataclasses
import fnmatch
import hashlib
import json
import re
import threading
from typing import Any
import urllib.parse

REGULAR_MAX_SIZE = 10 * 1024 * 1024  # the Hub stores files of 10 MiB or more with LFS
# Patterns of the default .gitattributes of a new model repo on the Hub (the ones that matter for model files).
LFS_PATTERNS = (
    "*.7z",
    "*.arrow",
    "*.bin",
    "*.bz2",
    "*.ckpt",
    "*.ftz",
    "*.gz",
    "*.h5",
    "*.joblib",
    "*.lfs.*",
    "*.mlmodel",
    "*.model",
    "*.msgpack",
    "*.npy",
    "*.npz",
    "*.onnx",
    "*.ot",
    "*.parquet",
    "*.pb",
    "*.pickle",
    "*.pkl",
    "*.pt",
    "*.pth",
    "*.rar",
    "*.safetensors",
    "*.tar.*",
    "*.tar",
    "*.tflite",
    "*.tgz",
    "*.wasm",
    "*.xz",
    "*.zip",
    "*.zst",
    "*tfevents*",
)
MAX_BODY = 256 * 1024 * 1024  # refuse anything bigger: this is a test server
SOCKET_TIMEOUT_S = 30
REPO_TYPES = ("model", "dataset", "space")


def upload_mode(path: str, size: int, sample: bytes) -> str:
    """How the fake Hub wants a file: "lfs" as the real Hub decides it, else "regular".

    LFS when the name matches an LFS pattern of the default ``.gitattributes`` (``*.bin``, ``*.safetensors``, ...),
    when the file is 10 MiB or larger, or when its first 512 bytes look binary (hold a NUL byte).
    """
    name = path.rsplit("/", 1)[-1]
    if any(fnmatch.fnmatchcase(name, pattern) for pattern in LFS_PATTERNS):
        return "lfs"
    if size >= REGULAR_MAX_SIZE or b"\x00" in sample:
        return "lfs"
    return "regular"


def git_blob_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\x00" % len(data) + data).hexdigest()


@dataclasses.dataclass
class Request:
    """One request the fake Hub received (header names lower-cased)."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    status: int = 0

    def json(self) -> Any:
        return json.loads(self.body)


@dataclasses.dataclass
class Commit:
    repo_id: str
    revision: str
    oid: str
    summary: str
    description: str
    regular: list[str]  # paths sent inline (base64) in the commit
    lfs: list[str]  # paths sent as lfsFile pointers
    deleted: list[str]


class HubError(Exception):
    def __init__(self, status: int, message: str, code: str | None = None):
        super().__init__(message)
        self.status, self.message, self.code = status, message, code


class FakeHub:
    """State of the fake Hub; shared by the request handler threads (guarded by ``lock``)."""

    def __init__(self) -> None:
        self.url = ""
        self.lock = threading.Lock()
        self.repos: dict[str, dict[str, bytes]] = {}  # "model/user/name" is stored as "user/name" for models
        self.repo_settings: dict[str, dict[str, Any]] = {}  # repo_id -> the create payload
        self.heads: dict[str, str | None] = {}  # repo_id -> last commit oid
        self.lfs_objects: dict[str, dict[str, bytes]] = {}  # repo_id -> sha256 hex -> content (LFS storage is per repo)
        self.lfs_uploads: list[tuple[str, str]] = []  # (repo_id, oid) in upload order
        self.lfs_verified: list[tuple[str, str]] = []
        self.commits: list[Commit] = []
        self.requests: list[Request] = []
        self.unhandled: list[Request] = []

    # ----------------------------------------------------------------------------------------------------- helpers
    @staticmethod
    def _key(repo_type: str, repo_id: str) -> str:
        return repo_id if repo_type == "model" else f"{repo_type}s/{repo_id}"

    def _tree(self, repo_type: str, repo_id: str) -> dict[str, bytes]:
        key = self._key(repo_type, repo_id)
        if key not in self.repos:
            raise HubError(404, f"Repository Not Found for url: {self.url}/{key}.", "RepoNotFound")
        return self.repos[key]

    # ---------------------------------------------------------------------------------------------------- handlers
    def handle(self, request: Request) -> tuple[int, dict[str, str], Any]:
        """Routes ``request``; returns (status, extra headers, JSON-able body or raw bytes)."""
        method, path = request.method, request.path
        if method != "PUT" and not request.headers.get("authorization", "").startswith("Bearer "):
            if not (method == "POST" and path == "/api/validate-yaml"):
                raise HubError(401, "Invalid credentials in Authorization header")
        if method == "POST" and path == "/api/repos/create":
            return self._create_repo(request.json())
        if method == "POST" and path == "/api/validate-yaml":
            return 200, {}, {"errors": [], "warnings": []}
        match = re.fullmatch(r"/_fake_lfs/(.+)/([0-9a-f]{64})", path)
        if method == "PUT" and match:
            return self._lfs_put(match.group(1), match.group(2), request.body)
        match = re.fullmatch(r"/_fake_lfs/(.+)/verify", path)
        if method == "POST" and match:
            return self._lfs_verify(match.group(1), request.json())
        match = re.fullmatch(r"/(?:(datasets|spaces)/)?([^/]+/[^/]+)\.git/info/lfs/objects/batch", path)
        if method == "POST" and match:
            repo_type = (match.group(1) or "models")[:-1]
            return self._lfs_batch(repo_type, match.group(2), request.json())
        match = re.fullmatch(r"/api/(models|datasets|spaces)/([^/]+/[^/]+)/(preupload|commit)/([^/]+)", path)
        if method == "POST" and match:
            repo_type, repo_id, action = match.group(1)[:-1], match.group(2), match.group(3)
            revision = urllib.parse.unquote(match.group(4))
            if action == "preupload":
                return self._preupload(repo_type, repo_id, request.json())
            return self._commit(repo_type, repo_id, revision, request.body)
        match = re.fullmatch(r"/api/(models|datasets|spaces)/([^/]+/[^/]+)(?:/revision/([^/]+))?", path)
        if method == "GET" and match:
            return self._repo_info(match.group(1)[:-1], match.group(2))
        with self.lock:
            self.unhandled.append(request)
        raise HubError(404, f"The fake Hub has no {method} {path}", "EntryNotFound")

    def _create_repo(self, payload: dict) -> tuple[int, dict[str, str], Any]:
        name, organization = payload.get("name"), payload.get("organization")
        if not isinstance(name, str) or not re.fullmatch(r"[\w.\-]+", name):
            raise HubError(400, f"Invalid repo name {name!r}")
        repo_type = payload.get("type") or "model"
        if repo_type not in REPO_TYPES:
            raise HubError(400, f"Invalid repo type {repo_type!r}")
        repo_id = f"{organization or 'user'}/{name}"
        key = self._key(repo_type, repo_id)
        url = f"{self.url}/{key}"
        with self.lock:
            if key in self.repos:
                return 409, {}, {"error": "You already created this model repo", "url": url}
            self.repos[key] = {}
            self.lfs_objects[key] = {}
            self.repo_settings[key] = dict(payload)
            self.heads[key] = None
        return 200, {}, {"url": url, "name": repo_id, "id": hashlib.sha1(key.encode()).hexdigest()[:24]}

    def _preupload(self, repo_type: str, repo_id: str, payload: dict) -> tuple[int, dict[str, str], Any]:
        files = payload.get("files")
        if not isinstance(files, list):
            raise HubError(400, "`files` must be a list")
        answer = []
        with self.lock:
            tree = self._tree(repo_type, repo_id)
            for item in files:
                path, size = item["path"], int(item["size"])
                mode = upload_mode(path, size, base64.b64decode(item.get("sample", "")))
                entry: dict[str, Any] = {"path": path, "uploadMode": mode, "shouldIgnore": False}
                if path in tree:  # lets the client skip files that did not change
                    data = tree[path]
                    entry["oid"] = hashlib.sha256(data).hexdigest() if mode == "lfs" else git_blob_sha1(data)
                answer.append(entry)
            head = self.heads[self._key(repo_type, repo_id)]
        return 200, {}, {"files": answer, "commitOid": head}

    def _lfs_batch(self, repo_type: str, repo_id: str, payload: dict) -> tuple[int, dict[str, str], Any]:
        if payload.get("operation") != "upload":
            raise HubError(400, "Only the upload operation is supported")
        if "basic" not in payload.get("transfers", ["basic"]):
            raise HubError(400, "The fake Hub only has the basic transfer")
        objects = []
        with self.lock:
            self._tree(repo_type, repo_id)
            key = self._key(repo_type, repo_id)
            stored = self.lfs_objects[key]
            for obj in payload.get("objects", []):
                oid, size = obj["oid"], obj["size"]
                if not re.fullmatch(r"[0-9a-f]{64}", oid) or not isinstance(size, int):
                    objects.append({"oid": str(oid), "size": int(size), "error": {"code": 422, "message": "bad oid"}})
                elif oid in stored and len(stored[oid]) == size:
                    objects.append({"oid": oid, "size": size})  # already there: no actions, nothing to upload
                else:
                    objects.append(
                        {
                            "oid": oid,
                            "size": size,
                            "authenticated": True,
                            "actions": {
                                "upload": {"href": f"{self.url}/_fake_lfs/{key}/{oid}", "header": {}},
                                "verify": {"href": f"{self.url}/_fake_lfs/{key}/verify", "header": {}},
                            },
                        }
                    )
        return 200, {"Content-Type": "application/vnd.git-lfs+json"}, {"transfer": "basic", "objects": objects}

    def _lfs_put(self, key: str, oid: str, body: bytes) -> tuple[int, dict[str, str], Any]:
        if hashlib.sha256(body).hexdigest() != oid:
            raise HubError(400, f"Uploaded content does not match its oid {oid}")
        with self.lock:
            if key not in self.lfs_objects:
                raise HubError(404, f"No repo {key}")
            self.lfs_objects[key][oid] = body
            self.lfs_uploads.append((key, oid))
        return 200, {"ETag": f'"{hashlib.md5(body).hexdigest()}"'}, b""

    def _lfs_verify(self, key: str, payload: dict) -> tuple[int, dict[str, str], Any]:
        oid, size = payload.get("oid"), payload.get("size")
        with self.lock:
            stored = self.lfs_objects.get(key, {})
            if oid not in stored or len(stored[oid]) != size:
                raise HubError(404, f"LFS object {oid} of size {size} was not uploaded to {key}")
            self.lfs_verified.append((key, oid))
        return 200, {}, {"success": True}

    def _commit(self, repo_type: str, repo_id: str, revision: str, body: bytes) -> tuple[int, dict[str, str], Any]:
        lines = [json.loads(line) for line in body.decode().splitlines() if line.strip()]
        if not lines or lines[0].get("key") != "header":
            raise HubError(400, "The first NDJSON line of a commit must be its header")
        header = lines[0]["value"]
        if not header.get("summary"):
            raise HubError(400, "A commit needs a summary")
        changes: dict[str, bytes] = {}
        deleted: list[str] = []
        regular: list[str] = []
        lfs: list[str] = []
        with self.lock:
            key = self._key(repo_type, repo_id)
            tree = self._tree(repo_type, repo_id)
            if header.get("parentCommit") not in (None, self.heads[key]):
                raise HubError(412, "A commit has happened since. Please refresh and try again.")
            for line in lines[1:]:
                kind, value = line.get("key"), line.get("value", {})
                path = value.get("path", "")
                if not path or path.startswith("/") or ".." in path.split("/") or "\\" in path:
                    raise HubError(400, f"Invalid path {path!r}")
                if kind == "file":
                    if value.get("encoding") != "base64":
                        raise HubError(400, f"Unsupported encoding for {path}")
                    changes[path] = base64.b64decode(value["content"], validate=True)
                    regular.append(path)
                elif kind == "lfsFile":
                    oid = value.get("oid")
                    if value.get("algo") != "sha256" or oid not in self.lfs_objects[key]:
                        raise HubError(422, f"LFS object {oid} for {path} was never uploaded to {key}")
                    if "size" in value and value["size"] != len(self.lfs_objects[key][oid]):
                        raise HubError(422, f"Size mismatch for {path}")
                    changes[path] = self.lfs_objects[key][oid]
                    lfs.append(path)
                elif kind in ("deletedFile", "deletedFolder"):
                    deleted.append(path)
                else:
                    raise HubError(400, f"Unknown commit line {kind!r}")
            for path in deleted:
                prefix = path.rstrip("/") + "/"
                gone = [p for p in tree if p == path or p.startswith(prefix)]
                if not gone:
                    raise HubError(404, f"A file with this name doesn't exist: {path}", "EntryNotFound")
                for p in gone:
                    del tree[p]
            tree.update(changes)
            digest = hashlib.sha1(str(self.heads[key]).encode())
            for path in sorted(tree):
                digest.update(path.encode() + b"\x00" + hashlib.sha256(tree[path]).digest())
            oid = digest.hexdigest()
            self.heads[key] = oid
            self.commits.append(
                Commit(key, revision, oid, header["summary"], header.get("description", ""), regular, lfs, deleted)
            )
        return (
            200,
            {},
            {
                "success": True,
                "commitOid": oid,
                "commitUrl": f"{self.url}/{key}/commit/{oid}",
                "pullRequestUrl": None,
                "hookOutput": "",
            },
        )

    def _repo_info(self, repo_type: str, repo_id: str) -> tuple[int, dict[str, str], Any]:
        with self.lock:
            tree = self._tree(repo_type, repo_id)
            key = self._key(repo_type, repo_id)
            private = self.repo_settings[key].get("visibility") == "private"
            siblings = [{"rfilename": path} for path in sorted(tree)]
            sha = self.heads[key] or "0" * 40
            return 200, {}, {"id": repo_id, "sha": sha, "private": private, "siblings": siblings}
