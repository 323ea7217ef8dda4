"""A real gRPC server and client (grpcio, a .proto compiled at test time, no code from wirelens)
talk over loopback while tcpdump records the packets; then `wirelens call --pcap` must find every
call with its service, method, status, message and message counts, and decode the gzip message.

Needs tcpdump (scripts/test installs it). Under CI=true a missing tcpdump or a capture that cannot
start is a failure, never a skip."""

import importlib
import json
import subprocess
import sys
from concurrent import futures

import grpc  # pinned in requirements.txt
import pytest


PROTO = """
syntax = "proto3";
package livetest;

message Req { string name = 1; int32 n = 2; }
message Rep { string text = 1; int32 seq = 2; repeated int32 nums = 3; }

service Echo {
  rpc Unary(Req) returns (Rep);
  rpc ServerStream(Req) returns (stream Rep);
  rpc ClientStream(stream Req) returns (Rep);
  rpc Bidi(stream Req) returns (stream Rep);
  rpc Fail(Req) returns (Rep);
}
"""

FAIL_MESSAGE = "backend down: try later"
GZIP_NAME = "compress-me-" + "z" * 200


@pytest.fixture(scope="module")
def proto_modules(tmp_path_factory):
    """Compiles the .proto with grpc_tools.protoc into a temp dir; returns (pb2, pb2_grpc, descriptor set path)."""
    out = tmp_path_factory.mktemp("proto")
    (out / "livetest.proto").write_text(PROTO)
    desc = out / "livetest.desc"
    subprocess.run(
        [sys.executable, "-m", "grpc_tools.protoc", f"-I{out}", f"--python_out={out}", f"--grpc_python_out={out}",
         f"--descriptor_set_out={desc}", "--include_imports", str(out / "livetest.proto")],
        check=True,
    )
    sys.path.insert(0, str(out))
    try:
        pb2 = importlib.import_module("livetest_pb2")
        pb2_grpc = importlib.import_module("livetest_pb2_grpc")
    finally:
        sys.path.remove(str(out))
    return pb2, pb2_grpc, desc


@pytest.fixture(scope="module")
def capture(proto_modules, tmp_path_factory, live):
    """Runs the server, records the calls with tcpdump, returns (pcap path, descriptor set path)."""
    pb2, pb2_grpc, desc = proto_modules

    class Echo(pb2_grpc.EchoServicer):
        def Unary(self, request, context):
            return pb2.Rep(text="hello " + request.name, seq=request.n, nums=[1, 2, 3])

        def ServerStream(self, request, context):
            for i in range(request.n):
                yield pb2.Rep(text=f"part {i}", seq=i)

        def ClientStream(self, request_iterator, context):
            reqs = list(request_iterator)
            return pb2.Rep(text=",".join(r.name for r in reqs), seq=len(reqs))

        def Bidi(self, request_iterator, context):
            for r in request_iterator:
                yield pb2.Rep(text="echo " + r.name, seq=r.n)

        def Fail(self, request, context):
            context.abort(grpc.StatusCode.UNAVAILABLE, FAIL_MESSAGE)

    port = live.port()
    pcap = tmp_path_factory.mktemp("pcap") / "grpc-live.pcap"
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    pb2_grpc.add_EchoServicer_to_server(Echo(), server)
    server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    try:
        # The shared recorder: marker connections make the recording exact under load, and a
        # kernel drop fails the test.
        with live.record(pcap, f"tcp port {port}", port):
            with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
                stub = pb2_grpc.EchoStub(channel)
                assert stub.Unary(pb2.Req(name="alice", n=7), timeout=10).text == "hello alice"
                assert len(list(stub.ServerStream(pb2.Req(name="s", n=3), timeout=10))) == 3
                assert stub.ClientStream(iter([pb2.Req(name=f"c{i}") for i in range(4)]), timeout=10).seq == 4
                assert len(list(stub.Bidi(iter([pb2.Req(name=f"b{i}", n=i) for i in range(2)]), timeout=10))) == 2
                with pytest.raises(grpc.RpcError) as failed:
                    stub.Fail(pb2.Req(name="x"), timeout=10)
                assert failed.value.code() == grpc.StatusCode.UNAVAILABLE
                rep = stub.Unary(pb2.Req(name=GZIP_NAME, n=42), timeout=10, compression=grpc.Compression.Gzip)
                assert rep.seq == 42
    finally:
        server.stop(grace=1).wait()
    return pcap, desc


def call(bin_path, pcap, tool, args, extra=()):
    out = subprocess.run(
        [bin_path, "call", "--pcap", str(pcap), *extra, tool, json.dumps(args)],
        check=True, capture_output=True, text=True, timeout=60,
    )
    return json.loads(out.stdout)


FIELDS = ["id", "protocol", "method", "path", "status", "grpc_service", "grpc_method", "grpc_status",
          "grpc_message", "grpc_request_messages", "grpc_response_messages"]


def grpc_entries(bin_path, pcap, extra=()):
    res = call(bin_path, pcap, "list_entries",
               {"filter": "grpc", "fields": FIELDS, "limit": 1000, "order": "asc"}, extra)
    return res["entries"]


def test_every_live_grpc_call_is_found(wirelens_bin, capture):
    pcap, _ = capture
    entries = grpc_entries(wirelens_bin, pcap)
    by_method = {}
    for e in entries:
        assert e["protocol"] == "grpc"
        assert e["method"] == "POST"
        assert e["status"] == 200
        assert e["grpc_service"] == "livetest.Echo"
        assert e["path"] == f"/livetest.Echo/{e['grpc_method']}"
        by_method.setdefault(e["grpc_method"], []).append(e)
    assert sorted((m, len(v)) for m, v in by_method.items()) == [
        ("Bidi", 1), ("ClientStream", 1), ("Fail", 1), ("ServerStream", 1), ("Unary", 2)]

    def counts(e):
        return (e["grpc_status"], e["grpc_request_messages"], e["grpc_response_messages"])

    assert [counts(e) for e in by_method["Unary"]] == [(0, 1, 1), (0, 1, 1)]
    assert counts(by_method["ServerStream"][0]) == (0, 1, 3)
    assert counts(by_method["ClientStream"][0]) == (0, 4, 1)
    assert counts(by_method["Bidi"][0]) == (0, 2, 2)
    fail = by_method["Fail"][0]
    assert counts(fail) == (14, 1, 0)
    assert fail["grpc_message"] == FAIL_MESSAGE
    for m, v in by_method.items():
        if m != "Fail":
            assert all(e["grpc_message"] in (None, "") for e in v), v

    failing = call(wirelens_bin, pcap, "list_entries", {"filter": "grpc_status != 0", "fields": ["grpc_method"]})
    assert [e["grpc_method"] for e in failing["entries"]] == ["Fail"]


def _gzip_entry(bin_path, pcap, extra=()):
    unary = [e for e in grpc_entries(bin_path, pcap, extra) if e["grpc_method"] == "Unary"]
    assert len(unary) == 2
    return unary[1]


def test_gzip_message_is_decoded_without_schema(wirelens_bin, capture):
    pcap, _ = capture
    entry = _gzip_entry(wirelens_bin, pcap)
    payload = call(wirelens_bin, pcap, "get_payload", {"id": entry["id"]})
    req = payload["request"]
    assert any(h["name"] == "grpc-encoding" and h["value"] == "gzip" for h in req["headers"])
    [message] = req["body_json"]
    assert message["compressed"] is True
    # Schemaless: field numbers as keys; field 1 is the name, field 2 the number.
    text = json.dumps(message["protobuf"])
    assert GZIP_NAME in text
    assert "42" in text


def test_descriptor_set_names_the_fields(wirelens_bin, capture):
    pcap, desc = capture
    extra = ["--proto-descriptor", str(desc)]
    entry = _gzip_entry(wirelens_bin, pcap, extra)
    payload = call(wirelens_bin, pcap, "get_payload", {"id": entry["id"]}, extra)
    [req] = payload["request"]["body_json"]
    assert req["compressed"] is True
    assert req["type"] == "livetest.Req"
    assert req["message"] == {"name": GZIP_NAME, "n": 42}
    [rep] = payload["response"]["body_json"]
    assert rep["type"] == "livetest.Rep"
    assert rep["message"] == {"text": "hello " + GZIP_NAME, "seq": 42, "nums": [1, 2, 3]}

    streamed = [e for e in grpc_entries(wirelens_bin, pcap, extra) if e["grpc_method"] == "ServerStream"][0]
    reps = call(wirelens_bin, pcap, "get_payload", {"id": streamed["id"], "part": "response"}, extra)
    assert [m["message"] for m in reps["response"]["body_json"]] == [
        {"text": f"part {i}", **({"seq": i} if i else {})} for i in range(3)]
