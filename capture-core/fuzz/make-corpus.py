#!/usr/bin/env python3
"""Builds the fuzz corpora from real captures (needs tshark and editcap).

    capture-core/fuzz/make-corpus.py [PCAP_DIR] [CORPUS_DIR]

PCAP_DIR defaults to /work/shared/pcaps, CORPUS_DIR to capture-core/fuzz/corpus (git-ignored).
- pcap_file: every *.pcap / *.pcapng, copied unchanged;
- decode_packet: single frames and runs of frames (input format in fuzz_targets/decode_packet.rs),
  Ethernet frames also re-wrapped in the other link types;
- http1_parser: the TCP conversations, client and server writes (fuzz_targets/http1_parser.rs).
"""
import hashlib
import os
import shutil
import struct
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
PCAPS = sys.argv[1] if len(sys.argv) > 1 else "/work/shared/pcaps"
OUT = sys.argv[2] if len(sys.argv) > 2 else os.path.join(HERE, "corpus")
DELIM = b"\xff\xfe\xfd\xfc"
# LINKTYPE -> index in common::LINKS
LINKS = {1: 0, 113: 1, 276: 2, 0: 3, 101: 4, 12: 4, 14: 4, 108: 5, 228: 6, 229: 7}
FRAMES_PER_FILE = 24
RUN_FRAMES = 48
STREAMS_PER_FILE = 12
SIDE_CAP = 4 << 10
# Larger inputs make libFuzzer default to a large -max_len and slow every run.
MAX_INPUT = 16 << 10


def write(target, data):
    d = os.path.join(OUT, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, hashlib.sha1(data).hexdigest()), "wb") as f:
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


def conversation_input(writes):
    c = [d for s, d in writes if not s]
    s = [d for s, d in writes if s]
    cs, ss = DELIM.join(c)[:SIDE_CAP], DELIM.join(s)[:SIDE_CAP]
    # flags: handshake, client FIN, MSS 1448 (index 4); coding: the message's own header.
    return bytes([4 << 3, 0]) + struct.pack(">H", len(cs)) + cs + ss


def main():
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

        r = subprocess.run(
            ["tshark", "-r", p, "-T", "fields", "-e", "tcp.stream", "-Y", "tcp.len > 0"],
            capture_output=True,
            text=True,
        )
        streams = sorted({int(x) for x in r.stdout.split() if x.isdigit()})
        for st in streams[:STREAMS_PER_FILE]:
            w = follow(p, st)
            if w:
                write("http1_parser", conversation_input(w))
    for t in ("pcap_file", "decode_packet", "http1_parser"):
        d = os.path.join(OUT, t)
        print(t, len(os.listdir(d)), "files", sum(os.path.getsize(os.path.join(d, f)) for f in os.listdir(d)), "bytes")


main()
