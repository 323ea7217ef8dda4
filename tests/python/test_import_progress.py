"""Serving starts before the capture files are read: a tool call made while they are being read
waits, with `notifications/progress` saying how far reading is, and then answers on everything.

The capture comes through a FIFO that this test writes in two halves, so reading is provably
still going on when the call is made (no timing luck). Uses the official Python MCP client."""

import asyncio
import os
import subprocess
import tempfile
import threading

import pytest
from mcp import Client, StdioServerParameters


@pytest.mark.anyio
async def test_a_call_during_import_gets_progress_then_the_full_answer(wirelens_bin):
    with tempfile.TemporaryDirectory() as tmp:
        pcap, fifo = os.path.join(tmp, "w.pcap"), os.path.join(tmp, "fifo")
        subprocess.run([wirelens_bin, "generate-workload", "--out", pcap, "--size", "2MB"], check=True)
        data = open(pcap, "rb").read()
        os.mkfifo(fifo)
        release = threading.Event()

        def writer():
            with open(fifo, "wb") as w:  # blocks until wirelens opens it to read
                w.write(data[: len(data) // 3])
                w.flush()
                release.wait(30)
                w.write(data[len(data) // 3:])

        t = threading.Thread(target=writer, daemon=True)
        t.start()
        progress = []

        async def on_progress(done, total, message):
            progress.append((done, total, message))

        params = StdioServerParameters(command=wirelens_bin, args=["mcp", "--pcap", fifo])
        async with Client(params) as client:
            call = asyncio.create_task(client.call_tool("list_entries", {"limit": 3}, progress_callback=on_progress))
            for _ in range(100):
                if any(done > 0 for done, _, _ in progress):
                    break
                await asyncio.sleep(0.1)
            assert not call.done(), "the call must wait while the file is being read"
            assert progress, "no progress notification while reading"
            done, total, message = progress[-1]
            assert done > 0 and total is None, progress  # a pipe has no known size
            assert "reading the capture files" in message and fifo in message, message
            release.set()
            r = (await call).structured_content
            assert len(r["entries"]) == 3, r
            status = (await client.call_tool("capture_status", {})).structured_content
            assert status["sources"][0]["bytes"] > len(data) * 0.9, status["sources"]
            # Once read, calls answer at once, with no progress.
            before = len(progress)
            await client.call_tool("list_entries", {"limit": 1}, progress_callback=on_progress)
            assert len(progress) == before
        t.join(5)


@pytest.mark.anyio
async def test_a_file_that_is_not_a_capture_fails_before_serving(wirelens_bin):
    with tempfile.NamedTemporaryFile(suffix=".pcap") as f:
        f.write(b"GET / HTTP/1.1\r\n")
        f.flush()
        r = subprocess.run([wirelens_bin, "mcp", "--pcap", f.name], stdin=subprocess.DEVNULL,
                           capture_output=True, text=True, timeout=30)
        assert r.returncode == 1 and "not a pcap or pcapng file" in r.stderr, r
