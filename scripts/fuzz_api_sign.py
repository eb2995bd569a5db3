"""Schemathesis hooks for scripts/fuzz-api.sh: sign every request as obshell's SDK does.

With FUZZ_AGENT_PASSWORD set, each request leaves with an `X-OCS-Agent-Header` (v2:
RSA-PKCS1v1.5 chunks of {auth, ts, uri, keys} under the agent's public key) and its body
AES-128-CBC encrypted with the header's key, the way obshell's `PasswordAuthMethodV2`
signs. Signing happens on the prepared request, after Schemathesis has serialized the
case, so the exact bytes Schemathesis generated are what the agent decrypts, and the
URI signed is the one sent. Without FUZZ_AGENT_PASSWORD (or with it empty) this module
changes nothing.

The agent's public key comes from its public `GET /api/v1/secret` (FUZZ_AGENT_URL).
"""

import base64
import json
import os
import time
from urllib.parse import urlsplit

import requests
from Crypto.Cipher import AES, PKCS1_v1_5
from Crypto.PublicKey import RSA
from Crypto.Random import get_random_bytes
from Crypto.Util.Padding import pad

HEADER = "X-OCS-Agent-Header"
# obshell's SDK: 53-byte chunks for a 512-bit key's PKCS#1 v1.5 blocks.
CHUNK = 53
LIFETIME_SECS = 60

PASSWORD = os.environ.get("FUZZ_AGENT_PASSWORD") or None


def _public_key() -> RSA.RsaKey:
    url = os.environ["FUZZ_AGENT_URL"].rstrip("/") + "/api/v1/secret"
    reply = requests.get(url, timeout=30).json()
    return RSA.import_key(base64.b64decode(reply["data"]["public_key"]))


def _sign(prepared: requests.PreparedRequest, cipher_rsa) -> None:
    key, iv = get_random_bytes(16), get_random_bytes(16)
    body = prepared.body
    if isinstance(body, str):
        body = body.encode("utf-8")
    if body:
        encrypted = AES.new(key, AES.MODE_CBC, iv).encrypt(pad(body, AES.block_size))
        prepared.body = base64.b64encode(encrypted)
        prepared.headers["Content-Length"] = str(len(prepared.body))
    parts = urlsplit(prepared.url)
    uri = parts.path + ("?" + parts.query if parts.query else "")
    auth = json.dumps({
        "auth": PASSWORD,
        "ts": str(int(time.time()) + LIFETIME_SECS),
        "uri": uri,
        "keys": base64.b64encode(key + iv).decode("ascii"),
    }).encode("utf-8")
    chunks = [cipher_rsa.encrypt(auth[i:i + CHUNK]) for i in range(0, len(auth), CHUNK)]
    prepared.headers[HEADER] = base64.b64encode(b"".join(chunks)).decode("ascii")


if PASSWORD is not None:
    _CIPHER = PKCS1_v1_5.new(_public_key())
    _send = requests.adapters.HTTPAdapter.send

    def _signed_send(self, request, *args, **kwargs):
        _sign(request, _CIPHER)
        return _send(self, request, *args, **kwargs)

    requests.adapters.HTTPAdapter.send = _signed_send
