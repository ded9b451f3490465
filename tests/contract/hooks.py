"""Schemathesis hooks for tests/contract/run-schemathesis.sh.

Authentication: the fuzzer may revoke any token it can see (`GET /api/v1/tokens` lists them
and `DELETE /api/v1/tokens/{id}` is fuzzed like every other operation), its own included. So
its bearer token is minted on the host with `trustbox token create --data-dir DIR`, which
writes through the store and needs no API token at all, and a 401 makes schemathesis drop the
token, mint a fresh one and replay the request (`retry_on=[401]`). Nothing the fuzzer does
through the API can take that ability away.
"""

import os
import subprocess
import time

import schemathesis

TRUSTBOX_BIN = os.environ["TRUSTBOX_BIN"]
DATA_DIR = os.environ["TRUSTBOX_CONTRACT_DATA_DIR"]
LOG = os.environ.get("TRUSTBOX_CONTRACT_HOOK_LOG", os.devnull)


def mint() -> str:
    """A fresh token with every scope of the default tenant, written through the store.

    The store is busy with the fuzzer's own writes, so a failed attempt is retried a few
    times before the failure (and the CLI's stderr, also in the hook log) is reported.
    """
    command = [
        TRUSTBOX_BIN, "token", "create", "--data-dir", DATA_DIR,
        "--tenant", "default", "--scopes", "admin", "--name", "schemathesis",
    ]
    last = None
    for attempt in range(5):
        out = subprocess.run(command, capture_output=True, text=True, timeout=60)
        lines = out.stdout.strip().splitlines()
        if out.returncode == 0 and lines and lines[-1].startswith("tbx_"):
            return lines[-1]
        last = f"exit {out.returncode}: {out.stderr.strip()}"
        with open(LOG, "a", encoding="utf-8") as log:
            log.write(f"token create attempt {attempt + 1} failed: {last}\n")
        time.sleep(0.2 * (attempt + 1))
    raise RuntimeError(f"trustbox token create failed: {last}")


@schemathesis.auth(refresh_interval=3600, retry_on=[401])
class HostMintedToken:
    """Bearer token for every request, re-minted when the server answers 401."""

    def get(self, case, context):
        return mint()

    def set(self, case, data, context):
        case.headers = case.headers or {}
        case.headers["Authorization"] = f"Bearer {data}"


_JOBS: dict = {"ids": [], "at": 0.0}


def job_ids() -> list:
    """Ids of the server's background jobs (read at most every two seconds)."""
    if time.time() - _JOBS["at"] > 2:
        import json
        import ssl
        import urllib.request

        ctx = ssl.create_default_context(cafile=os.path.join(DATA_DIR, "ca", "root.pem"))
        req = urllib.request.Request(
            f"{os.environ['TRUSTBOX_CONTRACT_URL']}/api/v1/jobs?limit=100",
            headers={"Authorization": f"Bearer {mint()}"},
        )
        try:
            with urllib.request.urlopen(req, context=ctx, timeout=30) as resp:
                _JOBS["ids"] = [j["id"] for j in json.load(resp)["items"]]
        except OSError as e:
            with open(LOG, "a", encoding="utf-8") as log:
                log.write(f"listing jobs failed: {e}\n")
        _JOBS["at"] = time.time()
    return _JOBS["ids"]


def _path_is_negative(case) -> bool:
    """Whether the case's path parameters were generated to be invalid."""
    meta = getattr(case, "meta", None)
    for location, component in (getattr(meta, "components", None) or {}).items():
        if "path" in str(location).lower():
            mode = getattr(component, "mode", None)
            return "negative" in str(mode).lower()
    return False


@schemathesis.hook
def before_call(context, case, kwargs):
    """Jobs are made by the server, never by a request: every positive `POST
    /jobs/{id}/cancel` (in every phase) names a job that exists, so the operation is tested
    past its 404 (a finished job answers 409, a waiting one is cancelled). Negative cases
    keep their malformed ids; unknown ids are covered by tests/interop/tests/isolation.rs."""
    import zlib

    if case.operation.path != "/api/v1/jobs/{id}/cancel" or _path_is_negative(case):
        return
    params = case.path_parameters or {}
    ids = job_ids()
    if ids:
        pick = zlib.crc32(str(params.get("id")).encode())
        case.path_parameters = {**params, "id": ids[pick % len(ids)]}
