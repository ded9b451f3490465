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
