#!/usr/bin/env python3
"""Builds the fuzz corpora from real captures (needs tshark and editcap).

    capture-core/fuzz/make-corpus.py [PCAP_DIR] [CORPUS_DIR]
    capture-core/fuzz/make-corpus.py --seeds [PCAP_DIR]

PCAP_DIR defaults to /work/shared/pcaps, CORPUS_DIR to capture-core/fuzz/corpus (git-ignored).
`--seeds` instead writes the small committed set, capture-core/fuzz/seeds/<target>/, from a few
small captures plus hand-made inputs (VLAN tag, IP fragments, chunked gzip, pipelining, ...);
minimised crash inputs are added there by hand as `regression-*`.
- pcap_file: every *.pcap / *.pcapng, copied unchanged;
- decode_packet: single frames and runs of frames (input format in fuzz_targets/decode_packet.rs),
  Ethernet frames also re-wrapped in the other link types;
- http1_parser: the TCP conversations, client and server writes (fuzz_targets/http1_parser.rs);
- redis_resp, amqp_wire, tls_handshake, dns_message (with --seeds): sessions from the redis,
  amqp, tls and dns captures (see protocol_seeds);
- protobuf, tcp_segments (with --seeds): gRPC messages and TCP segment sequences (see
  protobuf_seeds, tcp_segment_seeds); `--seeds PCAP_DIR --only-new` writes only these two.
"""
import glob
import hashlib
import os
import shutil
import struct
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
SEEDS = sys.argv[1:2] == ["--seeds"]
ARGS = sys.argv[2:] if SEEDS else sys.argv[1:]
PCAPS = ARGS[0] if ARGS else "/work/shared/pcaps"
OUT = os.path.join(HERE, "seeds") if SEEDS else (ARGS[1] if len(ARGS) > 1 else os.path.join(HERE, "corpus"))
DELIM = b"\xff\xfe\xfd\xfc"
# LINKTYPE -> index in common::LINKS
LINKS = {1: 0, 113: 1, 276: 2, 0: 3, 101: 4, 12: 4, 14: 4, 108: 5, 228: 6, 229: 7}
FRAMES_PER_FILE = 24
RUN_FRAMES = 48
STREAMS_PER_FILE = 12
SIDE_CAP = 4 << 10
# Larger inputs make libFuzzer default to a large -max_len and slow every run.
MAX_INPUT = 16 << 10


def write(target, data, name=None):
    d = os.path.join(OUT, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name or hashlib.sha1(data).hexdigest()), "wb") as f:
        f.write(data)


def frames(path):
    """(linktype, [frame bytes]) of a capture, through editcap -F pcap."""
    with tempfile.NamedTemporaryFile(suffix=".pcap") as tmp:
        r = subprocess.run(["editcap", "-F", "pcap", path, tmp.name], capture_output=True)
        if r.returncode != 0:
            return None, []
        b = open(tmp.name, "rb").read()
    if len(b) < 24:
        return None, []
    magic = b[:4]
    end = "<" if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
    link = struct.unpack(end + "I", b[20:24])[0] & 0xFFFF
    out, at = [], 24
    while at + 16 <= len(b):
        incl = struct.unpack(end + "I", b[at + 8 : at + 12])[0]
        out.append(b[at + 16 : at + 16 + incl])
        at += 16 + incl
    return link, out


def rewrap(frame):
    """An Ethernet frame's IP packet under every other link type: [(link index, frame)]."""
    if len(frame) < 15:
        return []
    et = struct.unpack(">H", frame[12:14])[0]
    if et not in (0x0800, 0x86DD):
        return []
    ip = frame[14:]
    v6 = et == 0x86DD
    sll = struct.pack(">HHH8sH", 0, 1, 6, frame[6:12] + b"\0\0", et) + ip
    sll2 = struct.pack(">HHIHBB8s", et, 0, 2, 1, 0, 6, frame[6:12] + b"\0\0") + ip
    null = struct.pack("<I", 30 if v6 else 2) + ip
    loop = struct.pack(">I", 24 if v6 else 2) + ip
    return [(1, sll), (2, sll2), (3, null), (4, ip), (5, loop), (7 if v6 else 6, ip)]


def follow(path, stream):
    """Client and server writes of one TCP stream, in order: [(is_server, bytes)]."""
    r = subprocess.run(
        ["tshark", "-r", path, "-q", "-z", f"follow,tcp,raw,{stream}"],
        capture_output=True,
        text=True,
    )
    writes, started = [], False
    for line in r.stdout.splitlines():
        if line.startswith("Node 1:"):
            started = True
            continue
        if not started or line.startswith("====") or not line.strip():
            continue
        server = line.startswith("\t")
        try:
            data = bytes.fromhex(line.strip())
        except ValueError:
            continue
        if writes and writes[-1][0] == server:
            writes[-1] = (server, writes[-1][1] + data)
        else:
            writes.append((server, data))
    return writes


def conversation_input(writes, flags=4 << 3):
    c = [d for s, d in writes if not s]
    s = [d for s, d in writes if s]
    cs, ss = DELIM.join(c)[:SIDE_CAP], DELIM.join(s)[:SIDE_CAP]
    # default flags: handshake, client FIN, MSS 1448 (index 4); coding: the message's own header.
    return bytes([flags, 0]) + struct.pack(">H", len(cs)) + cs + ss


def tcp_streams(path):
    r = subprocess.run(
        ["tshark", "-r", path, "-T", "fields", "-e", "tcp.stream", "-Y", "tcp.len > 0"],
        capture_output=True,
        text=True,
    )
    return sorted({int(x) for x in r.stdout.split() if x.isdigit()})


# The committed seeds: small captures covering pcap and pcapng, Ethernet, SLL, NULL and raw IP,
# IPv6, handshakes, resets, retransmissions and the HTTP/1 cases of the shared set.
SEED_PCAPS = [
    "tcp/deepflow_server-reset.pcap",
    "tcp/zeek_tcp_syn-then-stuff-then-rst.pcap",
    "tcp/deepflow_syn-retrans.pcap",
    "redis/zeek_redis_auth.pcap",
    "http2/ndpi_http2.pcapng",
    "grpc/packt_grpc-server-streaming.pcapng",
    "http/zeek_http_get.pcap",
    "http/arkime_v6-http.pcap",
    "tls/wireshark_tls12-dsb.pcapng",
    "http2/suricata_http2-range.pcap",
    "http/packetbeat_http_minitwit.pcap",
]
SEED_CONVERSATIONS = [
    ("http/zeek_http_get.pcap", 1),
    ("http/arkime_v6-http.pcap", 1),
    ("http/wireshark_http-chunked-gzip.pcap", 1),
    ("http/zeek_http_100-continue.pcap", 1),
    ("http/zeek_http_pipelined-requests.pcap", 1),
    ("http/packetbeat_http_minitwit.pcap", 4),
    ("http2/suricata_http2-range.pcap", 2),
]


def handmade_http():
    import gzip

    body = gzip.compress(b"hello, chunked gzip world\n" * 20, mtime=0)
    chunks = b"".join(b"%x;ext=1\r\n%s\r\n" % (len(body[i : i + 100]), body[i : i + 100]) for i in range(0, len(body), 100))
    resp = (
        b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Encoding: gzip\r\n"
        b"Transfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n" + chunks + b"0\r\nX-Sum: 1\r\n\r\n"
    )
    yield "chunked-gzip-trailers", [(False, b"GET /z HTTP/1.1\r\nHost: a\r\nAccept-Encoding: gzip\r\n\r\n"), (True, resp)]
    yield "pipelined-head-304-continue", [
        (False, b"HEAD /h HTTP/1.1\r\nHost: a\r\n\r\nGET /c HTTP/1.1\r\nHost: a\r\nIf-None-Match: x\r\n\r\n"),
        (True, b"HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\nHTTP/1.1 304 Not Modified\r\nETag: x\r\n\r\n"),
        (False, b"POST /p HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n"),
        (True, b"HTTP/1.1 100 Continue\r\n\r\n"),
        (False, b"abcde"),
        (True, b"HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok"),
    ]
    yield "http10-close-delimited", [
        (False, b"GET / HTTP/1.0\r\n\r\n"),
        (True, b"HTTP/1.0 200 OK\r\nContent-Type: text/html\r\n\r\n<html>until close</html>"),
    ]
    yield "upgrade-websocket", [
        (False, b"GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"),
        (True, b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n\x81\x05hello"),
    ]


def handmade_frames(eth):
    """A VLAN-tagged copy and a two-fragment split of an Ethernet/IPv4 frame."""
    out = []
    if len(eth) > 34 and eth[12:14] == b"\x08\x00":
        out.append(("vlan-qinq", bytes([0]) + eth[:12] + b"\x88\xa8\x00\x0a\x81\x00\x00\x14" + eth[12:]))
        ip = eth[14:]
        ihl = (ip[0] & 15) * 4
        total = struct.unpack(">H", ip[2:4])[0]
        payload = ip[ihl:total]
        if len(payload) > 16:
            cut = (len(payload) // 2) & ~7
            frags = []
            for off, part, more in ((0, payload[:cut], 1), (cut, payload[cut:], 0)):
                h = bytearray(ip[:ihl])
                h[2:4] = struct.pack(">H", ihl + len(part))
                h[6:8] = struct.pack(">H", (more << 13) | (off // 8))
                frags.append(eth[:14] + bytes(h) + part)
            # second fragment first: reassembly out of order
            out.append(("ipv4-fragments", bytes([0]) + frags[1] + DELIM + frags[0]))
    return out


def seeds():
    for rel in SEED_PCAPS:
        p = os.path.join(PCAPS, rel)
        name = rel.replace("/", "_")
        write("pcap_file", open(p, "rb").read(), name)
        link, fs = frames(p)
        if link not in LINKS:
            continue
        data = [f for f in fs if len(f) > 66] or fs
        write("decode_packet", bytes([LINKS[link]]) + data[0], name + ".frame")
        if rel == "http/zeek_http_get.pcap":
            for i, g in rewrap(data[0]):
                write("decode_packet", bytes([i]) + g, f"{name}.frame.link{i}")
            for n, d in handmade_frames(data[0]):
                write("decode_packet", d, f"{name}.{n}")
            write("decode_packet", bytes([LINKS[link] | 2 << 3]) + DELIM.join(fs), name + ".run")
        if rel == "http/arkime_v6-http.pcap":
            run = DELIM.join(f for f in fs if len(f) < 2000)[: 8 << 10]
            write("decode_packet", bytes([LINKS[link] | 4 << 3]) + run, name + ".run")
    for rel, n in SEED_CONVERSATIONS:
        p = os.path.join(PCAPS, rel)
        for st in tcp_streams(p)[:n]:
            w = follow(p, st)
            if w:
                write("http1_parser", conversation_input(w), f"{rel.replace('/', '_')}.stream{st}")
    for name, w in handmade_http():
        write("http1_parser", conversation_input(w), name)
        # the same with 7-byte segments, no handshake, a packet swapped and the server's RST
        write("http1_parser", conversation_input(w, 0x40 | 1 << 3 | 2 << 1 | 1), name + ".mss7-swap-rst")


def payloads(path, proto):
    """Per stream: the first sender's bytes, the other side's bytes, and every payload in order."""
    field = "tcp.payload" if proto == "tcp" else "udp.payload"
    shown = "tcp.len > 0" if proto == "tcp" else "udp.length > 8"
    out = subprocess.run(
        ["tshark", "-r", path, "-Y", shown, "-T", "fields", "-e", f"{proto}.stream", "-e", "ip.src", "-e",
         "ipv6.src", "-e", f"{proto}.srcport", "-e", field],
        capture_output=True, text=True, check=True).stdout
    streams = {}
    for line in out.splitlines():
        p = line.split("\t")
        if len(p) < 5 or not p[4]:
            continue
        src = (p[1] or p[2], p[3])
        s = streams.setdefault(int(p[0]), {"first": src, "a": b"", "b": b"", "all": []})
        data = bytes.fromhex(p[4].replace(":", ""))
        s["a" if src == s["first"] else "b"] += data
        s["all"].append(data)
    return [streams[k] for k in sorted(streams)]


def protocol_seeds():
    """Redis, AMQP, TLS and DNS sessions from their real captures, in the input formats of
    fuzz_targets/{redis_resp,amqp_wire,tls_handshake,dns_message}.rs: a selector byte (low 4 bits: piece size)
    and the bytes of one side, or the first 2 KB of both sides; DNS over UDP as datagrams joined
    by DELIM."""
    cap = 64 << 10
    for target, proto_dir in (("redis_resp", "redis"), ("amqp_wire", "amqp"), ("tls_handshake", "tls")):
        for p in sorted(glob.glob(os.path.join(PCAPS, proto_dir, "*.pcap*"))):
            stem = os.path.basename(p).split(".")[0]
            for i, s in enumerate(payloads(p, "tcp")[:3]):
                write(target, (bytes([0x0F]) + s["a"])[:cap], f"{stem}-{i}-client")
                if s["b"]:
                    write(target, bytes([0x07]) + s["a"][:2000] + s["b"][:2000], f"{stem}-{i}-both")
    for p in sorted(glob.glob(os.path.join(PCAPS, "dns", "*.pcap*"))):
        stem = os.path.basename(p).split(".")[0]
        msgs = [m for s in payloads(p, "udp") for m in s["all"]][:40]
        if msgs:
            write("dns_message", (bytes([0x0F]) + DELIM.join(msgs))[:cap], f"{stem}-udp")
        for i, s in enumerate(payloads(p, "tcp")[:3]):
            write("dns_message", (bytes([0x0F]) + s["a"] + s["b"])[:cap], f"{stem}-tcp-{i}")


def tshark_rows(path, *args):
    opts = os.path.splitext(path)[0] + ".opts"
    extra = open(opts).read().split() if os.path.exists(opts) else []
    out = subprocess.run(["tshark", "-r", path, *extra, *args], check=True, capture_output=True, text=True).stdout
    return [line.split("\t") for line in out.splitlines()]


def protobuf_seeds():
    """Every distinct gRPC message body of the grpc captures, after the target's depth byte."""
    for p in sorted(glob.glob(os.path.join(PCAPS, "grpc", "*.pcap*"))):
        for (field,) in tshark_rows(p, "-Y", "grpc", "-T", "fields", "-e", "grpc.message_data"):
            for msg in filter(None, field.split(",")):
                write("protobuf", bytes([16]) + bytes.fromhex(msg))


def tcp_segment_seeds():
    """The first 16 segments of every TCP connection of the TCP-carried protocols' captures, in
    fuzz_targets/tcp_segments.rs's records: dir|flags (1), seq (4), ack (4), window (2), time
    step in 100 us (1), payload length (1, at most 255), payload."""
    for d in ("tcp", "http", "http2", "grpc", "redis", "kafka", "amqp", "tls"):
        for p in sorted(glob.glob(os.path.join(PCAPS, d, "*.pcap*"))):
            rows = tshark_rows(p, "-Y", "tcp", "-T", "fields", "-e", "tcp.stream", "-e", "tcp.srcport",
                               "-e", "tcp.flags", "-e", "tcp.seq_raw", "-e", "tcp.ack_raw",
                               "-e", "tcp.window_size_value", "-e", "frame.time_relative", "-e", "tcp.payload")
            streams = {}
            for r in rows:
                if len(r) >= 8 and r[0]:
                    streams.setdefault(r[0], []).append(r)
            for segs in list(streams.values())[:STREAMS_PER_FILE]:
                client_port, last_t, rec = segs[0][1], float(segs[0][6] or 0), bytearray()
                for r in segs[:16]:
                    flags = int(r[2], 16) if r[2] else 0
                    head0 = (0 if r[1] == client_port else 1) | (flags & 0x3E) | (0x80 if flags & 1 else 0)
                    t = float(r[6] or 0)
                    step, last_t = min(255, max(0, round((t - last_t) * 10_000))), t
                    payload = bytes.fromhex(r[7].replace(":", ""))[:255] if r[7] else b""
                    rec += bytes([head0]) + int(r[3] or 0).to_bytes(4, "big") + int(r[4] or 0).to_bytes(4, "big")
                    rec += min(int(r[5] or 0), 65535).to_bytes(2, "big") + bytes([step, len(payload)]) + payload
                write("tcp_segments", bytes(rec))


def main():
    if SEEDS:
        # Files are overwritten by name; hand-added `regression-*` inputs stay.
        if sys.argv[3:4] == ["--only-new"]:
            protobuf_seeds()
            tcp_segment_seeds()
            return
        seeds()
        protocol_seeds()
        protobuf_seeds()
        tcp_segment_seeds()
        report()
        return
    pcaps = sorted(
        os.path.join(dp, f)
        for dp, _, fs in os.walk(PCAPS)
        for f in fs
        if f.endswith((".pcap", ".pcapng"))
    )
    for p in pcaps:
        rel = os.path.relpath(p, PCAPS).replace(os.sep, "_")
        os.makedirs(os.path.join(OUT, "pcap_file"), exist_ok=True)
        shutil.copyfile(p, os.path.join(OUT, "pcap_file", rel))

        link, fs = frames(p)
        if link in LINKS:
            sel = LINKS[link]
            fs = [f for f in fs if len(f) < MAX_INPUT]
            for f in fs[:FRAMES_PER_FILE]:
                write("decode_packet", bytes([sel]) + f)
            for f in fs[:4]:
                if link == 1:
                    for i, g in rewrap(f):
                        write("decode_packet", bytes([i]) + g)
            # a run of frames, 1 ms apart
            run = DELIM.join(fs[:RUN_FRAMES])[:MAX_INPUT]
            write("decode_packet", bytes([sel | 2 << 3]) + run)

        for st in tcp_streams(p)[:STREAMS_PER_FILE]:
            w = follow(p, st)
            if w:
                write("http1_parser", conversation_input(w))
    report()


def report():
    for t in ("pcap_file", "decode_packet", "http1_parser"):
        d = os.path.join(OUT, t)
        print(t, len(os.listdir(d)), "files", sum(os.path.getsize(os.path.join(d, f)) for f in os.listdir(d)), "bytes")


main()
