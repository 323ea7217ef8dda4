"""The official Python MCP SDK (mcp 2.3.0) against `wirelens --demo`, over stdio (`wirelens mcp`)
and Streamable HTTP (`wirelens serve`, with SSE replies and with --json-response), each in the
2026-07-28 mode (`mode="auto"`: server/discover) and the legacy initialize handshake
(`mode="legacy"`: 2025-11-25). Every tool is called and every structured result is checked against
the tool's own outputSchema; every resource, a resource template instance and every prompt is
read; bad arguments and bad filters must be in-band tool errors naming the problem; pagination
is followed by hand (the client does not follow next_cursor)."""

import contextlib
import json
import re
import uuid

import httpx2
import jsonschema
import pytest
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

import wirelens_http

TRANSPORTS = ["stdio", "http", "http-json"]
MODES = ["auto", "legacy"]
VERSION = {"auto": "2026-07-28", "legacy": "2025-11-25"}


@pytest.fixture(scope="module")
def http_servers(wirelens_bin, tmp_path_factory):
    """One `wirelens serve --demo` with SSE replies and one with --json-response, for the module."""
    d = tmp_path_factory.mktemp("http")
    servers = {}
    try:
        servers["http"] = wirelens_http.start(wirelens_bin, d / "sse.log")
        servers["http-json"] = wirelens_http.start(wirelens_bin, d / "json.log", ["--json-response"])
        yield servers
    except wirelens_http.ServerFailed as e:
        pytest.fail(str(e))
    finally:
        for s in servers.values():
            s.stop()


@pytest.fixture(params=[(t, m) for t in TRANSPORTS for m in MODES], ids=lambda p: f"{p[0]}-{p[1]}")
def connect(request, wirelens_bin):
    """`connect()` opens a fresh Client for this test's transport and mode."""
    transport, mode = request.param
    if transport == "stdio":
        params = StdioServerParameters(command=wirelens_bin, args=["mcp", "--demo"])
        return lambda: Client(params, mode=mode)
    url = request.getfixturevalue("http_servers")[transport].url
    return lambda: Client(url, mode=mode)


@pytest.fixture
def mode(connect, request):
    return request.node.callspec.params["connect"][1]


async def tool_schemas(client: Client) -> dict:
    listing = await client.list_tools()
    assert listing.next_cursor is None
    return {t.name: t for t in listing.tools}


def valid_args(name: str, entry_id: str, snapshot: str = "") -> dict:
    """Arguments that must succeed for each tool; a tool with required arguments not covered here
    fails the test (add it). Tools are called in name order: create_snapshot makes `snapshot`
    before delete_snapshot deletes it."""
    return {
        "create_snapshot": {"since": "1h", "until": "0s", "name": snapshot, "filter": "http && status >= 500"},
        "delete_snapshot": {"name": snapshot},
        "get_payload": {"id": entry_id},
        "validate_filter": {"filter": "http && status >= 500"},
        "list_entries": {"limit": 5},
        "list_flows": {"limit": 5},
        "tcp_insights": {"limit": 5},
        # The demo is a file-like source: nothing new arrives, so do not wait.
        "watch_entries": {"timeout_ms": 0},
    }.get(name, {})


def structured(result, schema) -> dict:
    """The structured result, validated against `schema` and against its text mirror."""
    assert not result.is_error, result.content[0].text if result.content else result
    assert result.structured_content is not None
    jsonschema.Draft202012Validator(schema).validate(result.structured_content)
    texts = [c.text for c in result.content if c.type == "text"]
    assert texts and json.loads(texts[0]) == result.structured_content
    return result.structured_content


@pytest.mark.anyio
async def test_tools_are_listed_with_schemas(connect, mode):
    async with connect() as client:
        assert client.protocol_version == VERSION[mode]
        assert client.server_info.name == "wirelens"
        assert "untrusted" in (client.instructions or "")
        assert client.server_capabilities.tools is not None
        tools = await tool_schemas(client)
        assert {"list_entries", "get_payload", "capture_status", "tcp_insights", "list_flows", "flow_summary",
                "validate_filter"} <= set(tools)
        for t in tools.values():
            assert t.description, t.name
            # The forensics tools write files; delete_snapshot destroys one.
            writes = t.name in {"export_pcap", "export_har", "create_snapshot", "delete_snapshot"}
            assert t.annotations is not None and t.annotations.read_only_hint is (not writes), t.name
            assert bool(t.annotations.destructive_hint) is (t.name == "delete_snapshot"), t.name
            assert t.output_schema is not None, t.name
            jsonschema.Draft202012Validator.check_schema(t.output_schema)
            jsonschema.Draft202012Validator.check_schema(t.input_schema)
            assert t.input_schema["type"] == "object"


@pytest.mark.anyio
async def test_every_tool_call_validates_against_its_output_schema(connect):
    async with connect() as client:
        tools = await tool_schemas(client)

        listing = structured(await client.call_tool("list_entries", {"limit": 10}), tools["list_entries"].output_schema)
        entries = listing["entries"]
        assert len(entries) == 10
        assert listing["coverage"]["complete"] is True
        entry_id = entries[0]["id"]

        snapshot = f"client-{uuid.uuid4().hex[:12]}"
        for name, tool in sorted(tools.items()):
            args = valid_args(name, entry_id, snapshot)
            missing = set(tool.input_schema.get("required", [])) - set(args)
            assert not missing, f"{name}: no test arguments for required {missing}"
            jsonschema.validate(args, tool.input_schema)
            structured(await client.call_tool(name, args), tool.output_schema)

        payload = structured(await client.call_tool("get_payload", {"id": entry_id}), tools["get_payload"].output_schema)
        assert payload["request"]["start_line"].startswith(entries[0]["method"])
        status = structured(await client.call_tool("capture_status", {}), tools["capture_status"].output_schema)
        assert status["packets"] > 0
        valid = structured(await client.call_tool("validate_filter", {"filter": "http && status >= 500"}),
                           tools["validate_filter"].output_schema)
        assert valid["valid"] is True
        errors = structured(await client.call_tool("list_entries", {"filter": "http && status >= 500",
                                                                    "fields": ["status"]}),
                            tools["list_entries"].output_schema)
        statuses = [e["status"] for e in errors["entries"]]
        assert statuses and all(s >= 500 for s in statuses)


@pytest.mark.anyio
async def test_pagination_follows_next_cursor(connect):
    async with connect() as client:
        tools = await tool_schemas(client)
        for tool, args, key in [
            ("list_entries", {"limit": 50, "order": "asc", "fields": ["id", "method", "path", "status"]}, "entries"),
            ("list_flows", {"limit": 3}, "flows"),
        ]:
            seen, pages, total = [], 0, None
            while True:
                page = structured(await client.call_tool(tool, args), tools[tool].output_schema)
                pages += 1
                for item in page[key]:
                    if tool == "list_entries":
                        assert set(item) == {"id", "method", "path", "status"}
                    seen.append(json.dumps(item.get("id", item), sort_keys=True))
                assert total in (None, page["total_matched"]), "total_matched changed between pages"
                total = page["total_matched"]
                if not page.get("next_cursor"):
                    break
                args = {**args, "cursor": page["next_cursor"]}
                assert pages < 1000
            assert pages > 1, f"{tool}: a single page; the demo should need several"
            assert len(seen) == len(set(seen)), f"{tool}: an item came twice across pages"
            assert len(seen) == total, f"{tool}: {len(seen)} items over all pages, total_matched {total}"


@pytest.mark.anyio
async def test_bad_arguments_and_filters_are_tool_errors(connect):
    async with connect() as client:
        for tool, args, expect in [
            ("list_entries", {"limit": 0}, "between 1 and 1000"),
            ("list_entries", {"limit": "x"}, "limit"),
            ("list_entries", {"bogus": 1}, "unknown field `bogus`"),
            ("list_entries", {"fields": ["stauts"]}, "did you mean `status`"),
            ("list_entries", {"order": "sideways"}, "order"),
            ("list_entries", {"since": "yesterday"}, "since"),
            ("list_entries", {"cursor": "garbage"}, "cursor"),
            ("list_entries", {"filter": "http and stauts >= 500"}, "did you mean `status`"),
            ("list_entries", {"filter": "status >="}, "invalid filter"),
            ("list_flows", {"filter": "stauts == 1"}, "did you mean `status`"),
            ("tcp_insights", {"filter": "http and ("}, "invalid filter"),
            ("flow_summary", {"filter": "))"}, "invalid filter"),
            ("get_payload", {}, "missing field `id`"),
            ("get_payload", {"id": "nope"}, "entry id"),
            ("validate_filter", {}, "missing field `filter`"),
        ]:
            r = await client.call_tool(tool, args)
            text = r.content[0].text if r.content else ""
            assert r.is_error, (tool, args, text)
            assert expect in text, (tool, args, text)
        v = await client.call_tool("validate_filter", {"filter": "http and stauts >= 500"})
        assert v.structured_content["valid"] is False
        err = v.structured_content["errors"][0]
        assert (err["line"], err["column"], err["suggestion"]) == (1, 10, "status")
        with pytest.raises(MCPError, match="tool not found"):
            await client.call_tool("no_such_tool", {})


@pytest.mark.anyio
async def test_every_resource_and_template_reads(connect):
    async with connect() as client:
        listing = await client.list_resources()
        assert listing.next_cursor is None
        resources = {str(r.uri): r for r in listing.resources}
        assert {"wirelens://kfl/reference", "wirelens://fields", "wirelens://capture/status"} <= set(resources)
        for uri, res in resources.items():
            contents = (await client.read_resource(uri)).contents
            assert len(contents) == 1 and str(contents[0].uri) == uri
            assert contents[0].text, uri
            if res.mime_type == "application/json" or contents[0].mime_type == "application/json":
                json.loads(contents[0].text)
        text = (await client.read_resource("wirelens://kfl/reference")).contents[0].text
        assert "status_code" in text and "startsWith" in text

        templates = (await client.list_resource_templates()).resource_templates
        assert any(t.uri_template == "wirelens://entry/{id}" for t in templates)
        first = await client.call_tool("list_entries", {"limit": 1, "fields": ["id"]})
        uri = f"wirelens://entry/{first.structured_content['entries'][0]['id']}"
        entry = (await client.read_resource(uri)).contents[0]
        assert str(entry.uri) == uri
        assert "request" in json.loads(entry.text)
        with pytest.raises(MCPError, match="no resource"):
            await client.read_resource("wirelens://entry/nope")


def prompt_argument(arg) -> str:
    """A value for a prompt argument: the example its description gives (`Example: `X`.`), else
    a plausible value by its name."""
    m = re.search(r"Example: `([^`]+)`", arg.description or "")
    if m:
        return m.group(1)
    n = arg.name.lower()
    if "filter" in n:
        return "http"
    if n.endswith("_ms") or "limit" in n or "top" in n or "count" in n:
        return "5"
    if "since" in n or "until" in n or n.endswith("_at"):
        return "30s"
    return "10.42.3.12"


@pytest.mark.anyio
async def test_every_prompt_gets(connect):
    async with connect() as client:
        advertised = client.server_capabilities.prompts is not None
        if not advertised:
            # No capability: prompts/list must not pretend to work.
            with pytest.raises(MCPError):
                await client.list_prompts()
            return
        listing = await client.list_prompts()
        assert listing.next_cursor is None
        assert listing.prompts, "the server advertises prompts but lists none"
        for p in listing.prompts:
            assert p.description, p.name
            arguments = p.arguments or []
            required = {a.name: prompt_argument(a) for a in arguments if a.required}
            everything = {a.name: prompt_argument(a) for a in arguments}
            for args in ([required, everything] if everything != required else [required]):
                got = await client.get_prompt(p.name, args)
                assert got.messages, (p.name, args)
                for m in got.messages:
                    assert m.role in ("user", "assistant")
                    if m.content.type == "text":
                        assert m.content.text.strip(), (p.name, args)
            if required:
                # A missing required argument is an error, not a prompt with a hole in it.
                with pytest.raises(MCPError):
                    await client.get_prompt(p.name, {})
        with contextlib.suppress(MCPError):
            bad = await client.get_prompt("no_such_prompt", {})
            pytest.fail(f"an unknown prompt answered {bad}")
