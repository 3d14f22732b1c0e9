"""The MCP methods, transport-free: one request in, one result (or JSON-RPC error) out.

Both transports (the HTTP blueprint and stdio) parse messages, own sessions and decide who
is calling; they hand the dispatcher a `CallScope` and it answers. It never reads HTTP
headers, the database or settings. A stateless (2026-07-28) request also comes with its
`Envelope`: it then sees that revision's methods and result envelope (stateless.py).
"""

from __future__ import annotations

import base64
import binascii
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from orderdesk_mcp import __version__, metrics
from orderdesk_mcp.mcp import completion, prompts, resources, results, stateless
from orderdesk_mcp.mcp.admission import Admission, AdmittedResolver
from orderdesk_mcp.mcp.audit import (
    PENDING,
    AuditSink,
    AuditUnavailable,
    ToolCallRecord,
    count_upstream_calls,
)
from orderdesk_mcp.mcp.echo import bound_message, clip, echo
from orderdesk_mcp.mcp.envelope import LOG_LEVELS, Envelope
from orderdesk_mcp.mcp.protocol import (
    INTERNAL_ERROR,
    INVALID_PARAMS,
    LATEST_HANDSHAKE_VERSION,
    METHOD_NOT_FOUND,
    RESOURCE_NOT_FOUND,
    SERVER_ERROR,
    SUPPORTED_PROTOCOL_VERSIONS,
    EncodedResult,
    JsonRpcError,
    Notification,
    Request,
    error_message,
    invalid_params,
    negotiate_version,
    result_message,
)
from orderdesk_mcp.mcp.registry import (
    StoreResolver,
    ToolDef,
    execute_tool,
    find_tool,
    visible_tools,
)

# Our resource URIs are short; a longer one is refused before it is logged or audited.
MAX_RESOURCE_URI_CHARS = 512

logger = logging.getLogger(__name__)

SERVER_NAME = "orderdesk-mcp"
SERVER_TITLE = "Order Desk"
# Big enough for the whole catalogue on one page: some clients never follow nextCursor.
DEFAULT_PAGE_SIZE = 100
# Distinct (read-only, toolsets, cursor) keys whose tools/list page is kept encoded: 2 x 32
# toolset subsets on one page; cursors and odd subsets beyond the cap are built each time.
TOOLS_PAGE_CACHE_SIZE = 256
SERVER_INFO: dict[str, Any] = {"name": SERVER_NAME, "title": SERVER_TITLE, "version": __version__}

INSTRUCTIONS = (
    "Tools for Order Desk stores: orders, order items, shipments, folders and inventory. "
    "Every tool takes an optional `store` (alias or store id; list_stores shows them). "
    "Order ids are Order Desk's internal ids; find an order by its cart number with "
    "list_orders(source_id=...). List tools page with limit/offset and accept `fields`. "
    "Destructive tools accept dry_run: true to preview exactly what would change."
)

# The same on every revision. Nothing is ever pushed: no list-changed notifications, no
# resource subscriptions, and on 2026-07-28 no subscriptions/listen (each stream would hold
# a waitress thread for its lifetime).
CAPABILITIES: dict[str, Any] = {
    "tools": {"listChanged": False},
    "resources": {"subscribe": False, "listChanged": False},
    "prompts": {"listChanged": False},
    "completions": {},
    "logging": {},
}


@dataclass(frozen=True)
class CallScope:
    """Who is calling and with which rights, as decided by the transport."""

    resolver: StoreResolver
    read_only: bool
    toolsets: frozenset[str] | None
    tenant_id: int | None
    key_id: int | None
    request_id: str
    audit: AuditSink
    # Bounds on calls running at once (multi-tenant HTTP); None: no bound (local, stdio).
    admission: Admission | None = None


@dataclass(frozen=True)
class Handshake:
    """The outcome of `initialize`: the transport opens a session with it."""

    protocol_version: str
    client_info: dict[str, Any]
    result: dict[str, Any]


def encode_cursor(kind: str, offset: int) -> str:
    return base64.urlsafe_b64encode(f"{kind}:{offset}".encode()).decode("ascii")


def decode_cursor(kind: str, cursor: Any) -> int:
    """The offset inside an opaque cursor we issued; -32602 for anything else."""
    if cursor is None:
        return 0
    problem = invalid_params(
        f"invalid cursor for {kind}/list: pass back the nextCursor of the previous page "
        "unchanged, or omit it to start from the first page"
    )
    if not isinstance(cursor, str) or len(cursor) > 64:
        raise problem
    try:
        text = base64.urlsafe_b64decode(cursor.encode("ascii")).decode("ascii")
    except (binascii.Error, UnicodeError, ValueError):
        raise problem from None
    prefix, _, number = text.partition(":")
    if prefix != kind or not number.isdigit() or len(number) > 9:
        raise problem
    return int(number)


def paginate(kind: str, items: Sequence[Any], cursor: Any, page_size: int) -> dict[str, Any]:
    """{kind: page} plus nextCursor when more follow."""
    return page_at(kind, items, decode_cursor(kind, cursor), page_size)


def page_at(kind: str, items: Sequence[Any], offset: int, page_size: int) -> dict[str, Any]:
    """The page starting at `offset` (from a decoded cursor)."""
    if offset > len(items):
        raise invalid_params(f"cursor for {kind}/list is past the end; start again without it")
    page = list(items[offset : offset + page_size])
    result: dict[str, Any] = {kind: page}
    if offset + page_size < len(items):
        result["nextCursor"] = encode_cursor(kind, offset + page_size)
    return result


def _admitted_resolver(scope: CallScope) -> StoreResolver:
    """The resolver for one call that may reach Order Desk: its clients take an admission
    slot around each request to Order Desk (Busy, nothing sent, when over a bound)."""
    if scope.admission is None:
        return scope.resolver
    return AdmittedResolver(scope.resolver, scope.admission, scope.tenant_id)


def _may_write(tool: ToolDef, arguments: dict[str, Any] | None) -> bool:
    """Whether this call can change Order Desk (a write tool, and not a dry run)."""
    return not tool.annotations.read_only and not (arguments or {}).get("dry_run")


def _text_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _text_param(params: dict[str, Any], name: str, method: str) -> str:
    value = params.get(name)
    if not isinstance(value, str) or not value:
        raise invalid_params(f"{method} needs params.{name} as a non-empty string")
    return value


def _object_param(params: dict[str, Any], name: str, method: str) -> dict[str, Any] | None:
    value = params.get(name)
    if value is None:
        return None
    if not isinstance(value, dict):
        raise invalid_params(f"{method}: params.{name} must be a JSON object when given")
    return value


class Dispatcher:
    """Answers MCP requests; one instance serves every session of a process."""

    def __init__(self, *, page_size: int = DEFAULT_PAGE_SIZE) -> None:
        self.page_size = page_size
        # Encoded tools/list pages by (read-only, toolsets, offset); few in practice, capped.
        self._tools_pages: dict[tuple[bool, frozenset[str] | None, int], EncodedResult] = {}
        self._methods: dict[str, Callable[[dict[str, Any], CallScope], dict[str, Any]]] = {
            "ping": self._ping,
            "tools/list": self._tools_list,
            "tools/call": self._tools_call,
            "resources/list": self._resources_list,
            "resources/templates/list": self._resource_templates_list,
            "resources/read": self._resources_read,
            "prompts/list": self._prompts_list,
            "prompts/get": self._prompts_get,
            "completion/complete": self._complete,
            "logging/setLevel": self._set_log_level,
        }
        # 2026-07-28: the same methods less the removed ones, plus server/discover.
        self._modern_methods = {
            name: handler
            for name, handler in self._methods.items()
            if name not in stateless.REMOVED_METHODS
        }
        self._modern_methods["server/discover"] = self._discover

    # --- lifecycle ------------------------------------------------------------------------

    def negotiate(self, params: dict[str, Any]) -> Handshake:
        """Answer `initialize`: our version choice, capabilities and identity."""
        requested = params.get("protocolVersion")
        if not isinstance(requested, str) or not requested:
            raise invalid_params(
                "initialize needs params.protocolVersion (a string such as "
                f"{LATEST_HANDSHAKE_VERSION!r})"
            )
        client_info = params.get("clientInfo")
        version = negotiate_version(requested)
        result = {
            "protocolVersion": version,
            "capabilities": CAPABILITIES,
            "serverInfo": SERVER_INFO,
            "instructions": INSTRUCTIONS,
        }
        return Handshake(
            protocol_version=version,
            client_info=client_info if isinstance(client_info, dict) else {},
            result=result,
        )

    def handle_request(
        self, request: Request, scope: CallScope, envelope: Envelope | None = None
    ) -> dict[str, Any]:
        """The full JSON-RPC reply to one request; never raises.

        `envelope` is given for a stateless (2026-07-28) request, whose envelope the
        transport has already checked; None means a handshake-era request.
        """
        metrics.record_mcp_request(request.method)
        try:
            if envelope is not None:
                return result_message(request.id, self._stateless(request, scope))
            method = self._methods.get(request.method)
            if method is None:
                raise self._unknown_method(request.method)
            return result_message(request.id, method(request.params, scope))
        except JsonRpcError as error:
            # However a message was built, it never repeats a whole oversized input.
            error.message = bound_message(error.message)
            return error_message(request.id, error)
        except Exception:
            # A bug of ours: the client gets a reference, the log gets the traceback.
            logger.exception(
                "internal error in %s", request.method, extra={"request_id": scope.request_id}
            )
            return error_message(
                request.id,
                JsonRpcError(
                    INTERNAL_ERROR,
                    f"internal error while handling {request.method}; quote request id "
                    f"{scope.request_id} when reporting it",
                    {"request_id": scope.request_id},
                ),
            )

    def handle_notification(self, notification: Notification) -> None:
        """Notifications need no reply; the ones we understand change nothing we keep."""
        metrics.record_mcp_request(notification.method)
        if notification.method == "notifications/cancelled":
            # Calls run to completion within one HTTP request, so there is nothing to stop.
            logger.debug("client cancelled request %s", clip(notification.params.get("requestId")))

    def _stateless(self, request: Request, scope: CallScope) -> dict[str, Any]:
        """A 2026-07-28 request's result, in that revision's envelope."""
        handler = self._modern_methods.get(request.method)
        if handler is None:
            removed = stateless.REMOVED_METHODS.get(request.method)
            if removed is None:
                raise JsonRpcError(METHOD_NOT_FOUND, f"method not found: {echo(request.method)}")
            raise JsonRpcError(METHOD_NOT_FOUND, removed, request.method)
        try:
            result = handler(request.params, scope)
        except JsonRpcError as error:
            if error.code == RESOURCE_NOT_FOUND:
                # 2026-07-28 answers a missing resource with Invalid params.
                error.code = INVALID_PARAMS
            raise
        cache = stateless.CACHE_HINTS.get(request.method)
        if request.method == "resources/read":
            uri = request.params.get("uri")
            ttl_ms = resources.read_ttl_ms(uri) if isinstance(uri, str) else 0
            cache = stateless.CacheHint(ttl_ms, stateless.RESOURCE_READ_SCOPE)
        return stateless.complete(result, SERVER_INFO, cache)

    @staticmethod
    def _unknown_method(method: str) -> JsonRpcError:
        if method == "initialize":
            return JsonRpcError(
                METHOD_NOT_FOUND, "initialize is only valid as the first message of a session"
            )
        if method == "server/discover":
            return JsonRpcError(
                METHOD_NOT_FOUND,
                "server/discover belongs to protocol 2026-07-28: send it without a session, "
                "with params._meta naming the protocol version and client capabilities; this "
                "session speaks the initialize handshake",
                {"supported": list(SUPPORTED_PROTOCOL_VERSIONS)},
            )
        return JsonRpcError(METHOD_NOT_FOUND, f"method not found: {echo(method)}")

    # --- methods --------------------------------------------------------------------------

    def _ping(self, params: dict[str, Any], scope: CallScope) -> dict[str, Any]:
        return {}

    def _discover(self, params: dict[str, Any], scope: CallScope) -> dict[str, Any]:
        # Our identity travels in _meta (serverInfo), as on every 2026-07-28 result.
        return {
            "supportedVersions": list(SUPPORTED_PROTOCOL_VERSIONS),
            "capabilities": CAPABILITIES,
            "instructions": INSTRUCTIONS,
        }

    def _tools_list(self, params: dict[str, Any], scope: CallScope) -> dict[str, Any]:
        offset = decode_cursor("tools", params.get("cursor"))
        # The catalogue is fixed at import, so a page depends only on this key.
        key = (scope.read_only, scope.toolsets, offset)
        page = self._tools_pages.get(key)
        if page is None:
            page = self._build_tools_page(scope.read_only, scope.toolsets, offset)
            if len(self._tools_pages) < TOOLS_PAGE_CACHE_SIZE:
                self._tools_pages[key] = page
        # A fresh dict per reply; the shared text stays right because nobody edits a reply.
        return EncodedResult(page, page.json_text)

    def _build_tools_page(
        self, read_only: bool, toolsets: frozenset[str] | None, offset: int
    ) -> EncodedResult:
        tools = visible_tools(read_only=read_only, toolsets=toolsets)
        page = page_at("tools", tools, offset, self.page_size)
        page["tools"] = [tool.to_mcp() for tool in page["tools"]]
        return EncodedResult(page)

    def _visible_tool(self, name: str, scope: CallScope) -> ToolDef:
        tool = find_tool(name)
        if tool is None:
            raise invalid_params(
                f"unknown tool: {echo(name)}; tools/list shows the available tools"
            )
        if scope.read_only and not tool.annotations.read_only:
            raise invalid_params(
                f"tool {name} changes data and these credentials are read-only; use a key "
                "with write access (`orderdesk-mcp key create` without --read-only), or, "
                "signed in with OAuth, connect again and allow read-write access"
            )
        if scope.toolsets is not None and tool.toolset not in scope.toolsets:
            raise invalid_params(
                f"tool {name} belongs to the {tool.toolset!r} toolset, which is not enabled "
                "for this key or request (X-MCP-Toolsets); tools/list shows the available tools"
            )
        return tool

    def _tools_call(self, params: dict[str, Any], scope: CallScope) -> dict[str, Any]:
        tool = self._visible_tool(_text_param(params, "name", "tools/call"), scope)
        arguments = params.get("arguments")
        if arguments is not None and not isinstance(arguments, dict):
            raise invalid_params("tools/call: params.arguments must be a JSON object of arguments")
        started = time.perf_counter()

        def call_record(outcome: str, store: str | None, upstream_calls: int) -> ToolCallRecord:
            return ToolCallRecord(
                tenant_id=scope.tenant_id,
                key_id=scope.key_id,
                tool=tool.name,
                store=store,
                arguments=arguments,
                outcome=outcome,
                duration_ms=(time.perf_counter() - started) * 1000,
                upstream_calls=upstream_calls,
                request_id=scope.request_id,
            )

        resolver = _admitted_resolver(scope) if tool.annotations.open_world else scope.resolver
        return self._run_tool(tool, arguments, scope, resolver, call_record, started)

    def _run_tool(
        self,
        tool: ToolDef,
        arguments: dict[str, Any] | None,
        scope: CallScope,
        resolver: StoreResolver,
        call_record: Callable[[str, str | None, int], ToolCallRecord],
        started: float,
    ) -> dict[str, Any]:
        pending: int | None = None
        if _may_write(tool, arguments):
            # The row exists before Order Desk sees the write: a landed write is never
            # missing from the trail, and a retrying agent can find it there.
            requested = arguments.get("store") if arguments else None
            try:
                pending = scope.audit.begin(call_record(PENDING, _text_or_none(requested), 0))
            except AuditUnavailable:
                metrics.record_tool_call(tool.name, "audit_unavailable", 0.0)
                return results.failure(
                    f"{tool.name} was not sent to Order Desk: this server could not record it "
                    "in its audit trail (its database is busy or full). Nothing was changed; "
                    "retry in a few seconds, and tell the operator if it keeps failing."
                )
        outcome_label = "internal_error"
        store_alias: str | None = None
        with count_upstream_calls() as counter:
            try:
                outcome = execute_tool(tool, arguments, resolver)
                outcome_label = outcome.outcome
                store_alias = outcome.store.alias if outcome.store is not None else None
                if outcome_label == "busy":
                    metrics.record_rate_limited("busy")
            finally:
                metrics.record_tool_call(tool.name, outcome_label, time.perf_counter() - started)
                # Never raises: a finished call keeps its real result even when its row
                # cannot be completed (the row then stays pending, and that is counted).
                finished = call_record(outcome_label, store_alias, counter.calls)
                scope.audit.complete(pending, finished)
        return outcome.result

    def _resources_list(self, params: dict[str, Any], scope: CallScope) -> dict[str, Any]:
        listed = resources.list_resources(scope.resolver, scope.toolsets)
        return paginate("resources", listed, params.get("cursor"), self.page_size)

    def _resource_templates_list(self, params: dict[str, Any], scope: CallScope) -> dict[str, Any]:
        templates = resources.list_resource_templates(scope.toolsets)
        return paginate("resourceTemplates", templates, params.get("cursor"), self.page_size)

    def _resources_read(self, params: dict[str, Any], scope: CallScope) -> dict[str, Any]:
        uri = _text_param(params, "uri", "resources/read")
        if len(uri) > MAX_RESOURCE_URI_CHARS:
            # Refused before it reaches the audit table or an error message.
            raise invalid_params(
                f"resources/read: the uri is {len(uri)} characters long; ours are under "
                f"{MAX_RESOURCE_URI_CHARS} (orderdesk://STORE/orders/ORDER_ID)"
            )
        started = time.perf_counter()
        outcome = "internal_error"
        with count_upstream_calls() as counter:
            try:
                result = resources.read_resource(uri, _admitted_resolver(scope), scope.toolsets)
                outcome = "ok"
                return result
            except resources.ResourceNotFound as error:
                outcome = "not_found"
                raise JsonRpcError(RESOURCE_NOT_FOUND, str(error), {"uri": uri}) from None
            except resources.ResourceUnavailable as error:
                outcome = "upstream_error"
                raise JsonRpcError(SERVER_ERROR, str(error), {"uri": uri}) from None
            finally:
                # Reads of orders and inventory are audited like the tools that do the same.
                scope.audit.record(
                    ToolCallRecord(
                        tenant_id=scope.tenant_id,
                        key_id=scope.key_id,
                        tool=uri,
                        method="resources/read",
                        store=None,
                        arguments={"uri": uri},
                        outcome=outcome,
                        duration_ms=(time.perf_counter() - started) * 1000,
                        upstream_calls=counter.calls,
                        request_id=scope.request_id,
                    )
                )

    def _prompts_list(self, params: dict[str, Any], scope: CallScope) -> dict[str, Any]:
        return paginate("prompts", prompts.list_prompts(), params.get("cursor"), self.page_size)

    def _prompts_get(self, params: dict[str, Any], scope: CallScope) -> dict[str, Any]:
        name = _text_param(params, "name", "prompts/get")
        arguments = _object_param(params, "arguments", "prompts/get")
        try:
            return prompts.get_prompt(name, arguments)
        except (prompts.PromptNotFound, prompts.InvalidPromptArguments) as error:
            raise invalid_params(str(error)) from None

    def _complete(self, params: dict[str, Any], scope: CallScope) -> dict[str, Any]:
        ref = _object_param(params, "ref", "completion/complete")
        argument = _object_param(params, "argument", "completion/complete")
        if ref is None or argument is None:
            raise invalid_params("completion/complete needs params.ref and params.argument")
        if not isinstance(argument.get("name"), str) or not isinstance(argument.get("value"), str):
            raise invalid_params("completion/complete: argument needs a string name and value")
        context = _object_param(params, "context", "completion/complete") or {}
        context_arguments = context.get("arguments")
        if context_arguments is not None and not isinstance(context_arguments, dict):
            raise invalid_params("completion/complete: context.arguments must be an object")
        return completion.complete(ref, argument, context_arguments, scope.resolver, scope.toolsets)

    def _set_log_level(self, params: dict[str, Any], scope: CallScope) -> dict[str, Any]:
        level = params.get("level")
        if level not in LOG_LEVELS:
            raise invalid_params(
                "logging/setLevel needs params.level, one of " + ", ".join(LOG_LEVELS)
            )
        # Replies are plain JSON (no stream), so no log notifications are sent at any level.
        return {}
