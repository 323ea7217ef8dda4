"""The official Python MCP SDK against `wirelens mcp --demo` over stdio, in both the 2026-07-28
mode (server/discover) and the legacy initialize handshake. Every structured result is checked
against the tool's own outputSchema."""

import jsonschema
import pytest
from mcp import Client, StdioServerParameters

MODES = ["auto", "legacy"]


def server(bin_path: str) -> StdioServerParameters:
    return StdioServerParameters(command=bin_path, args=["mcp", "--demo"])


async def tool_schemas(client: Client) -> dict:
    tools = (await client.list_tools()).tools
    return {t.name: t for t in tools}


@pytest.mark.anyio
@pytest.mark.parametrize("mode", MODES)
async def test_tools_are_listed_with_schemas(wirelens_bin, mode):
    async with Client(server(wirelens_bin), mode=mode) as client:
        assert "untrusted" in (client.instructions or "")
        tools = await tool_schemas(client)
        assert {"list_entries", "get_payload", "capture_status", "tcp_insights", "list_flows", "flow_summary",
                "validate_filter"} <= set(tools)
        for t in tools.values():
            assert t.annotations is not None and t.annotations.read_only_hint is True
            assert t.output_schema is not None
            jsonschema.Draft202012Validator.check_schema(t.output_schema)
            jsonschema.Draft202012Validator.check_schema(t.input_schema)


@pytest.mark.anyio
@pytest.mark.parametrize("mode", MODES)
async def test_calls_validate_against_output_schemas(wirelens_bin, mode):
    async with Client(server(wirelens_bin), mode=mode) as client:
        tools = await tool_schemas(client)

        listing = await client.call_tool("list_entries", {"limit": 10})
        assert not listing.is_error
        jsonschema.validate(listing.structured_content, tools["list_entries"].output_schema)
        entries = listing.structured_content["entries"]
        assert len(entries) == 10
        assert listing.structured_content["coverage"]["complete"] is True

        payload = await client.call_tool("get_payload", {"id": entries[0]["id"]})
        assert not payload.is_error
        jsonschema.validate(payload.structured_content, tools["get_payload"].output_schema)
        assert payload.structured_content["request"]["start_line"].startswith(entries[0]["method"])

        status = await client.call_tool("capture_status", {})
        assert not status.is_error
        jsonschema.validate(status.structured_content, tools["capture_status"].output_schema)
        assert status.structured_content["packets"] > 0


@pytest.mark.anyio
async def test_pagination_follows_next_cursor(wirelens_bin):
    async with Client(server(wirelens_bin)) as client:
        seen, cursor, total = [], None, None
        while True:
            args = {"limit": 50, "order": "asc", "fields": ["id", "method", "path", "status"]}
            if cursor:
                args["cursor"] = cursor
            page = (await client.call_tool("list_entries", args)).structured_content
            total = page["total_matched"]
            for e in page["entries"]:
                assert set(e) == {"id", "method", "path", "status"}
                seen.append(e["id"])
            cursor = page.get("next_cursor")
            if not cursor:
                break
        assert len(seen) == len(set(seen)) == total


@pytest.mark.anyio
async def test_bad_arguments_are_tool_errors(wirelens_bin):
    async with Client(server(wirelens_bin)) as client:
        for args, expect in [
            ({"limit": 0}, "between 1 and 1000"),
            ({"fields": ["stauts"]}, "did you mean `status`"),
            ({"order": "sideways"}, "order"),
            ({"since": "yesterday"}, "since"),
            ({"cursor": "garbage"}, "cursor"),
        ]:
            r = await client.call_tool("list_entries", args)
            assert r.is_error, args
            assert expect in r.content[0].text, (args, r.content[0].text)
        r = await client.call_tool("get_payload", {"id": "nope"})
        assert r.is_error and "entry id" in r.content[0].text


@pytest.mark.anyio
async def test_resources_and_filters(wirelens_bin):
    async with Client(server(wirelens_bin)) as client:
        resources = {r.uri: r for r in (await client.list_resources()).resources}
        assert {"wirelens://kfl/reference", "wirelens://fields", "wirelens://capture/status"} <= set(map(str, resources))
        reference = await client.read_resource("wirelens://kfl/reference")
        text = reference.contents[0].text
        assert "status_code" in text and "startsWith" in text
        templates = (await client.list_resource_templates()).resource_templates
        assert any(t.uri_template == "wirelens://entry/{id}" for t in templates)
        errors = await client.call_tool("list_entries", {"filter": "http && status >= 500", "fields": ["status"]})
        assert not errors.is_error
        statuses = [e["status"] for e in errors.structured_content["entries"]]
        assert statuses and all(s >= 500 for s in statuses)
        first = await client.call_tool("list_entries", {"limit": 1, "fields": ["id"]})
        entry = await client.read_resource(f"wirelens://entry/{first.structured_content['entries'][0]['id']}")
        assert "request" in entry.contents[0].text
        v = await client.call_tool("validate_filter", {"filter": "http and stauts >= 500"})
        assert v.structured_content["valid"] is False
        err = v.structured_content["errors"][0]
        assert (err["line"], err["column"], err["suggestion"]) == (1, 10, "status")
        bad = await client.call_tool("list_entries", {"filter": "http and stauts >= 500"})
        assert bad.is_error and "did you mean `status`" in bad.content[0].text
