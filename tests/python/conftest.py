"""Shared fixtures: the wirelens binary under test, and the `live` toolbox of the live suites."""

import contextlib
import json
import os
import random
import shutil
import signal
import socket
import struct
import subprocess
import time

import pytest


@pytest.fixture(scope="session")
def wirelens_bin() -> str:
    path = os.environ.get("WIRELENS_BIN") or shutil.which("wirelens")
    if not path or not os.path.exists(path):
        # Never skip silently: a missing binary is a failure.
        pytest.fail("WIRELENS_BIN is not set and no `wirelens` is on PATH; run through scripts/test")
    return path


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


# --- Live tests: real servers and clients on loopback, recorded with tcpdump -------------------
#
# The `live` fixture gives the live suites (test_*_live.py) one toolbox: find a prerequisite
# (a failure under CI=true, a skip otherwise), pick a free high port, start a server in its own
# process group and kill it at the end, record loopback traffic with tcpdump, and run
# `wirelens call --pcap`. Traffic only ever goes to 127.0.0.1.


def unavailable(reason: str):
    """A missing prerequisite: a failure under CI=true, never a silent skip there."""
    if os.environ.get("CI") == "true":
        pytest.fail(reason)
    pytest.skip(reason)


def _tcp_ports(pcap) -> set:
    """The TCP source ports of the IPv4 packets in a pcap file (classic format, as tcpdump -w
    writes it; a record still being written is ignored)."""
    try:
        with open(pcap, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return set()
    if len(data) < 24:
        return set()
    order = "<" if data[:4] in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
    link = struct.unpack(order + "I", data[20:24])[0] & 0xFFFF
    l2 = {1: 14, 113: 16, 276: 20, 0: 4, 101: 0}.get(link)
    if l2 is None:
        return set()
    ports, off = set(), 24
    while off + 16 <= len(data):
        incl = struct.unpack(order + "I", data[off + 8:off + 12])[0]
        pkt = data[off + 16:off + 16 + incl]
        off += 16 + incl
        if len(pkt) < incl:
            break
        ip = pkt[l2:]
        if len(ip) >= 20 and ip[0] >> 4 == 4 and ip[9] == 6:
            ihl = (ip[0] & 0x0F) * 4
            if len(ip) >= ihl + 2:
                ports.add(struct.unpack(">H", ip[ihl:ihl + 2])[0])
    return ports


class Live:
    """Helpers for the live suites; see the `live` fixture."""

    def __init__(self, wirelens_bin: str):
        self.bin = wirelens_bin
        self._used_ports = set()

    @staticmethod
    def need(name: str, hint: str = "scripts/test installs it", prefer=()) -> str:
        """The path of the executable `name` (the first of `prefer` that exists, else from PATH or
        /usr/sbin), or a failure (CI) / skip (locally)."""
        path = next((p for p in (*prefer, shutil.which(name), f"/usr/sbin/{name}")
                     if p and os.access(p, os.X_OK)), None)
        if not path:
            unavailable(f"{name} is not installed ({hint})")
        return path

    def port(self) -> int:
        """A high port that is free on 127.0.0.1 for TCP and UDP, below the ephemeral range (so a
        client's own source port cannot take it) and random (so parallel runs do not clash)."""
        for _ in range(200):
            port = random.randrange(20000, 32000)
            if port in self._used_ports:
                continue
            try:
                with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as t, \
                        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
                    t.bind(("127.0.0.1", port))
                    u.bind(("127.0.0.1", port))
            except OSError:
                continue
            self._used_ports.add(port)
            return port
        pytest.fail("no free port on 127.0.0.1")

    @staticmethod
    def spawn(cmd, log_path, env=None, cwd=None) -> subprocess.Popen:
        """Starts a server in its own process group, output to `log_path`."""
        log = open(log_path, "wb")
        try:
            return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    env=env, cwd=cwd, start_new_session=True)
        finally:
            log.close()

    @staticmethod
    def stop(proc: subprocess.Popen, grace: float = 5.0):
        """Ends the process group that `spawn` started: SIGTERM, then SIGKILL after `grace`."""
        if proc is None:
            return
        for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                pass
            try:
                proc.wait(timeout=wait)
                # The group may outlive its leader (a server's children): end them too.
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                return
            except subprocess.TimeoutExpired:
                continue
            return

    @staticmethod
    def wait_port(port: int, proc: subprocess.Popen, log_path, timeout: float = 20.0):
        """Waits until 127.0.0.1:`port` accepts TCP connections; fails with the server's log."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                break
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.1)
        log = open(log_path, errors="replace").read()[-3000:]
        pytest.fail(f"server on 127.0.0.1:{port} did not come up (exit {proc.poll()}):\n{log}")

    @contextlib.contextmanager
    def record(self, pcap, bpf: str, marker_port: int):
        """Records loopback packets matching `bpf` into `pcap` while the block runs.

        Markers make the recording exact: before the block, bare TCP connects to `marker_port`
        (a server port `bpf` matches; no payload, so no entry) until tcpdump has written one, since
        "listening on" comes before the filter is live; after it, one more connect from a known
        source port, and the capture stops only once that is in the file, so tcpdump has written
        every packet of the block however loaded the machine is. A kernel drop is a failure."""
        tcpdump = self.need("tcpdump")
        # A 64 MiB kernel buffer: in immediate mode each packet takes a snaplen-sized slot, and the
        # default 2 MiB drops packets of a burst (a pipeline) when the machine is busy.
        cmd = [tcpdump, "-i", "lo", "--immediate-mode", "-U", "-B", "65536", "-s", "0", "-w", str(pcap), bpf]
        dump = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        stopped = False
        try:
            deadline = time.monotonic() + 10
            started = False
            while time.monotonic() < deadline:
                line = dump.stderr.readline()
                if "listening on" in line:
                    started = True
                    break
                if not line and dump.poll() is not None:
                    break
            if not started:
                unavailable("tcpdump could not capture on lo (needs CAP_NET_RAW)")
            if not self._mark(pcap, marker_port, dump):
                unavailable("tcpdump recorded nothing on lo")
            yield
            time.sleep(0.3)  # the servers' last packets (FIN/ACK) go out
            assert self._mark(pcap, marker_port, dump), "tcpdump did not record the end marker within 30 s"
            dump.send_signal(signal.SIGINT)
            stopped = True
        finally:
            if dump.poll() is None and not stopped:
                dump.send_signal(signal.SIGINT)
            try:
                _, err = dump.communicate(timeout=10)
            except subprocess.TimeoutExpired:
                dump.kill()
                _, err = dump.communicate()
        dropped = [line for line in err.splitlines() if "dropped by" in line and not line.startswith("0 ")]
        assert not dropped, f"tcpdump lost packets: {dropped}"

    def _mark(self, pcap, server_port: int, dump) -> bool:
        """Bare TCP connects to `server_port`, each from a fresh source port, until one of those
        ports is in `pcap` (at most 30 s); False if none ever is."""
        sent = set()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and dump.poll() is None:
            src = self.port()
            sent.add(src)
            with contextlib.suppress(OSError), socket.socket() as s:
                s.bind(("127.0.0.1", src))
                s.settimeout(2)
                s.connect(("127.0.0.1", server_port))
            for _ in range(10):
                if sent & _tcp_ports(pcap):
                    return True
                time.sleep(0.05)
        return False

    def call_text(self, pcap, tool: str, args: dict) -> str:
        """`wirelens call --pcap FILE TOOL ARGS`: its raw JSON text."""
        out = subprocess.run([self.bin, "call", "--pcap", str(pcap), tool, json.dumps(args)],
                             capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, f"wirelens call {tool} failed ({out.returncode}): {out.stderr}"
        return out.stdout

    def call(self, pcap, tool: str, args: dict) -> dict:
        return json.loads(self.call_text(pcap, tool, args))

    def entries(self, pcap, filt: str, fields) -> list:
        """Every entry matching `filt` in capture order (follows next_cursor)."""
        args = {"filter": filt, "fields": ["id", *fields], "limit": 1000, "order": "asc"}
        out = []
        while True:
            res = self.call(pcap, "list_entries", args)
            assert res["coverage"]["complete"] is True, res["coverage"]
            out.extend(res["entries"])
            if not res.get("next_cursor"):
                return out
            args["cursor"] = res["next_cursor"]


@pytest.fixture(scope="session")
def live(wirelens_bin) -> Live:
    return Live(wirelens_bin)
