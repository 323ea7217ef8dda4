"""`export_har` writes HTTP Archive 1.2 files that validate against the HAR 1.2 schema
(tests/har/har-1.2.schema.json, written from the specification): over the demo (HTTP/1.x, HTTP/2,
gRPC, credentials to redact, binary bodies) and over real captures, a TLS one decrypted with its
key log among them. Timings add up to `time`, base64 bodies decode, credentials are redacted."""

import base64
import copy
import json
import os
import pathlib
import subprocess

import jsonschema
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
SCHEMA = json.loads((ROOT / "tests/har/har-1.2.schema.json").read_text())
PCAPS = pathlib.Path(os.environ.get("WIRELENS_PCAPS", ROOT.parent / "shared/pcaps"))
SECRET_HEADERS = {"authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key"}


def export(wirelens_bin, tmp_path, sources, args):
    out = subprocess.run([wirelens_bin, "call", *sources, "--export-dir", str(tmp_path), "export_har", json.dumps(args)],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    path = pathlib.Path(result["path"])
    assert path.parent == tmp_path and path.suffix == ".har"
    assert oct(path.stat().st_mode & 0o777) == oct(0o600), "exports hold captured traffic: owner only"
    return result, json.loads(path.read_text())


def check(har):
    jsonschema.Draft202012Validator(SCHEMA, format_checker=jsonschema.FormatChecker()).validate(har)
    assert har["log"]["version"] == "1.2" and har["log"]["creator"]["name"] == "wirelens"
    for e in har["log"]["entries"]:
        t = e["timings"]
        total = sum(v for k, v in t.items() if k in ("blocked", "dns", "connect", "send", "wait", "receive", "ssl")
                    and v != -1)
        assert abs(e["time"] - total) < 0.01, e
        content = e["response"]["content"]
        if content.get("encoding") == "base64":
            assert len(base64.b64decode(content["text"], validate=True)) == content["size"]
        for side in ("request", "response"):
            for h in e[side]["headers"]:
                if h["name"].lower() in SECRET_HEADERS:
                    assert "[redacted len=" in h["value"], h
            for c in e[side]["cookies"]:
                assert c["value"].startswith("[redacted len="), c


def test_schema_rejects_what_the_spec_forbids():
    """The schema is not a rubber stamp: required fields, types and unknown fields are checked."""
    v = jsonschema.Draft202012Validator(SCHEMA)
    entry = {"startedDateTime": "2026-01-15T10:00:00.000069Z", "time": 1.0,
             "request": {"method": "GET", "url": "http://a/", "httpVersion": "HTTP/1.1", "cookies": [],
                         "headers": [], "queryString": [], "headersSize": 10, "bodySize": 0},
             "response": {"status": 200, "statusText": "OK", "httpVersion": "HTTP/1.1", "cookies": [], "headers": [],
                          "content": {"size": 0, "mimeType": ""}, "redirectURL": "", "headersSize": 10,
                          "bodySize": 0},
             "cache": {}, "timings": {"send": 0, "wait": 1, "receive": 0}}
    good = {"log": {"version": "1.2", "creator": {"name": "x", "version": "1"}, "entries": [entry]}}
    v.validate(good)
    for breaks in [
        lambda h: h["log"]["entries"][0].pop("cache"),
        lambda h: h["log"]["entries"][0]["timings"].update(wait=-1),
        lambda h: h["log"]["entries"][0]["request"].update(url="/relative"),
        lambda h: h["log"]["entries"][0]["response"].update(status="200"),
        lambda h: h["log"]["entries"][0].update(extra=1),
        lambda h: h["log"]["entries"][0]["request"].update(postData={"mimeType": "x", "text": "a", "params": []}),
        lambda h: h["log"].update(version="2.0"),
    ]:
        bad = copy.deepcopy(good)
        breaks(bad)
        assert not v.is_valid(bad), bad
    custom = copy.deepcopy(good)
    custom["log"]["entries"][0]["_custom"] = {"any": "thing"}
    v.validate(custom)


def test_demo_archive_validates(wirelens_bin, tmp_path):
    result, har = export(wirelens_bin, tmp_path, ["--demo"], {})
    check(har)
    entries = har["log"]["entries"]
    assert result["entries"] == len(entries) > 100
    # The demo speaks HTTP/1.0, HTTP/1.1 and gRPC (plain HTTP/2 comes from the real captures).
    assert {e["_protocol"] for e in entries} == {"http/1.0", "http/1.1", "grpc"}
    grpc = [e for e in entries if e["_protocol"] == "grpc"]
    assert all(e["_grpc"]["service"] and e["request"]["httpVersion"] == "HTTP/2.0" for e in grpc)
    assert result["bodies_base64"] > 0, "gRPC bodies are binary"
    # The filter and the limit apply; errors only, newest kept.
    result, har = export(wirelens_bin, tmp_path, ["--demo"], {"filter": "http && status >= 500", "limit": 3})
    check(har)
    assert result["entries_matched"] > 3 and result["entries"] == 3
    assert all(e["response"]["status"] >= 500 for e in har["log"]["entries"])


@pytest.mark.parametrize("capture,keylog", [
    ("http/wireshark_http-chunked-gzip.pcap", None),
    ("http/zeek_http_100-continue.pcap", None),
    ("http/zeek_http_pipelined-requests.pcap", None),
    ("http2/suricata_http2-range.pcap", None),
    ("grpc/packt_grpc-bidi-streaming.pcapng", None),
    ("http2/hotplace_http2-over-tls13.pcapng", "http2/hotplace_http2-over-tls13.keylog"),
])
def test_real_captures_validate(wirelens_bin, tmp_path, capture, keylog):
    if not (PCAPS / capture).is_file():
        if os.environ.get("CI") == "true":
            pytest.fail(f"{PCAPS / capture} is missing")
        pytest.skip(f"{PCAPS / capture} is missing")
    sources = ["--pcap", str(PCAPS / capture)] + (["--keylog", str(PCAPS / keylog)] if keylog else [])
    result, har = export(wirelens_bin, tmp_path, sources, {"filter": "http"})
    check(har)
    assert result["entries"] == len(har["log"]["entries"]) > 0
    if keylog:
        assert all(e["request"]["url"].startswith("https://") for e in har["log"]["entries"])
    if "gzip" in capture:
        decoded = [e for e in har["log"]["entries"] if e["response"]["content"].get("compression")]
        assert decoded and all(e["response"]["content"]["size"] > e["response"]["bodySize"] for e in decoded)
