#!/usr/bin/env python3
"""Generates fixed test vectors for obshell's "API hybrid encryption", independently of
the Rust server code (pycryptodome only), as a client such as obshell-sdk-python would
build them.

    pip install pycryptodome
    python3 gen_vectors.py > vectors.json

The output is committed as data, so CI needs no Python. RSA PKCS#1 v1.5 encryption
and the AES key/IV are random, so every run produces different (equally valid) bytes.

Each case: a request (method, uri, headers, body) plus the clock the server must use
(`now`) and the expected outcome: "ok" or the expected errCode.
"""

import base64
import json

from Crypto.Cipher import AES, PKCS1_v1_5
from Crypto.PublicKey import RSA
from Crypto.Random import get_random_bytes
from Crypto.Util.asn1 import DerSequence
from Crypto.Util.Padding import pad

PASSWORD = "Vector-Pa55word!"
NOW = 1_700_000_000
EXPIRY = NOW + 100

key = RSA.generate(2048)
# PKCS#1 RSAPublicKey ::= SEQUENCE { modulus, publicExponent } (export_key would give SPKI).
public_b64 = base64.b64encode(DerSequence([key.n, key.e]).encode()).decode()
private_pem = key.export_key(format="PEM", pkcs=1).decode()
cipher_rsa = PKCS1_v1_5.new(key.publickey())
chunk = key.size_in_bytes() - 11


def rsa_chunked(plain: bytes) -> str:
    out = b""
    for i in range(0, len(plain), chunk):
        out += cipher_rsa.encrypt(plain[i:i + chunk])
    return base64.b64encode(out).decode()


def aes_body(aes_key: bytes, iv: bytes, plain: bytes) -> str:
    return base64.b64encode(AES.new(aes_key, AES.MODE_CBC, iv).encrypt(pad(plain, 16))).decode()


def v2(uri: str, password=PASSWORD, ts=EXPIRY, key_names=("auth", "ts", "uri", "keys"), body=None):
    aes_key, iv = get_random_bytes(16), get_random_bytes(16)
    names = dict(zip(("auth", "ts", "uri", "keys"), key_names))
    header = {
        names["auth"]: password,
        names["ts"]: str(ts),
        names["uri"]: uri,
        names["keys"]: base64.b64encode(aes_key + iv).decode(),
    }
    encrypted_body = aes_body(aes_key, iv, body.encode()) if body is not None else ""
    return rsa_chunked(json.dumps(header).encode()), encrypted_body


def v1(password=PASSWORD, ts=EXPIRY):
    return rsa_chunked(json.dumps({"password": password, "ts": ts}).encode())


cases = []


def case(name, method, uri, expect, headers, body="", plain_body=None):
    cases.append({
        "name": name,
        "method": method,
        "uri": uri,
        "headers": headers,
        "body": body,
        "plain_body": plain_body,
        "expect": expect,
    })


LONG = "/api/v1/tenants/overview?pad=" + "x" * 400

h, b = v2("/api/v1/tenants/overview")
case("v2 ok, no body", "GET", "/api/v1/tenants/overview", "ok", {"X-OCS-Header": h})

h, b = v2("/api/v1/unit/config", body='{"name":"vec_unit","memory_size":"2G","max_cpu":1}')
case("v2 ok, encrypted body", "POST", "/api/v1/unit/config", "ok", {"X-OCS-Header": h}, b,
     '{"name":"vec_unit","memory_size":"2G","max_cpu":1}')

h, b = v2(LONG)
case("v2 ok, header spans several RSA blocks", "GET", LONG, "ok", {"X-OCS-Header": h})

h, b = v2("/api/v1/tenants/overview", key_names=("Auth", "TS", "Uri", "KEYS"))
case("v2 ok, keys matched case-insensitively", "GET", "/api/v1/tenants/overview", "ok",
     {"X-OCS-Header": h})

h, b = v2("/api/v1/tenants/overview", password="wrong")
case("v2 wrong password", "GET", "/api/v1/tenants/overview",
     "Security.Authentication.IncorrectOceanbasePassword", {"X-OCS-Header": h})

h, b = v2("/api/v1/tenants/overview", ts=NOW - 1)
case("v2 expired", "GET", "/api/v1/tenants/overview", "Security.Authentication.Expired",
     {"X-OCS-Header": h})

h, b = v2("/api/v1/tenants/overview?x=1")
case("v2 uri mismatch (query differs)", "GET", "/api/v1/tenants/overview",
     "Security.Authentication.Header.UriMismatch", {"X-OCS-Header": h})

h, b = v2("/api/v1/tenants/overview")
raw = bytearray(base64.b64decode(h))
raw[10] ^= 0xFF
case("v2 tampered header", "GET", "/api/v1/tenants/overview",
     "Security.Authentication.Header.DecryptFailed", {"X-OCS-Header": base64.b64encode(bytes(raw)).decode()})

other = PKCS1_v1_5.new(RSA.generate(2048).publickey())
foreign = base64.b64encode(other.encrypt(json.dumps({"auth": PASSWORD, "ts": str(EXPIRY), "uri": "/api/v1/tenants/overview", "keys": base64.b64encode(bytes(32)).decode()}).encode())).decode()
case("v2 encrypted for another key", "GET", "/api/v1/tenants/overview",
     "Security.Authentication.Header.DecryptFailed", {"X-OCS-Header": foreign})

case("v2 not base64", "GET", "/api/v1/tenants/overview",
     "Security.Authentication.Header.DecryptFailed", {"X-OCS-Header": "%%% not base64 %%%"})

h, b = v2("/api/v1/unit/config", body='{"name":"vec_unit2","memory_size":"2G","max_cpu":1}')
raw = bytearray(base64.b64decode(b))
raw[-1] ^= 0x01  # breaks the PKCS#7 padding of the last block
case("v2 tampered body", "POST", "/api/v1/unit/config",
     "Common.Unauthorized", {"X-OCS-Header": h}, base64.b64encode(bytes(raw)).decode())

case("missing header", "GET", "/api/v1/tenants/overview", "Security.Authentication.Unauthorized", {})

# obshell dropped v1 ("X-OCS-Auth"): a v1 header is no header at all, however valid.
case("v1 ok", "GET", "/api/v1/tenants/overview", "Security.Authentication.Unauthorized",
     {"X-OCS-Auth": v1()})
case("v1 wrong password", "GET", "/api/v1/tenants/overview",
     "Security.Authentication.Unauthorized", {"X-OCS-Auth": v1(password="nope")})
case("v1 expired", "GET", "/api/v1/tenants/overview", "Security.Authentication.Unauthorized",
     {"X-OCS-Auth": v1(ts=NOW - 5)})

print(json.dumps({
    "generator": "gen_vectors.py (pycryptodome)",
    "password": PASSWORD,
    "now": NOW,
    "private_key_pkcs1_pem": private_pem,
    "public_key_pkcs1_der_base64": public_b64,
    "cases": cases,
}, indent=2))
