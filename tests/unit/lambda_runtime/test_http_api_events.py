"""HTTP requests become the payload 2.0 events API Gateway's HTTP API would send, and back."""

from __future__ import annotations

import base64
from typing import Any

from embedrec_local.lambda_runtime.gateway import http_api_event, http_response, route
from functions.common.settings import LAMBDA_SYNC_PAYLOAD_BYTES, MAX_UPLOAD_BODY_BYTES


def _scope(
    method: str, raw_path: bytes, query: bytes = b"", headers: list[tuple[bytes, bytes]] | None = None
) -> dict[str, Any]:
    return {
        "type": "http",
        "method": method,
        "path": raw_path.decode(),
        "raw_path": raw_path,
        "query_string": query,
        "headers": headers or [(b"host", b"api.local")],
        "client": ("10.0.0.9", 5555),
    }


def test_routes_are_the_cdk_apps() -> None:
    assert route("POST", "/api/v1/recommendations") == ("serving", "ANY /api/v1/recommendations", {})
    assert route("GET", "/api/v1/items/sku%2F1/similar") == (
        "serving",
        "ANY /api/v1/items/{item_id}/similar",
        {"item_id": "sku/1"},
    )
    assert route("POST", "/api/v1/interactions") == ("api", "ANY /api/{proxy+}", {"proxy": "v1/interactions"})
    assert route("GET", "/docs") == ("api", "GET /docs", {})
    assert route("GET", "/wp-admin") is None  # no route: API Gateway answers 404 itself


def test_duplicate_headers_and_parameters_are_comma_joined_and_cookies_set_apart() -> None:
    scope = _scope(
        "GET",
        b"/api/v1/items",
        b"tag=a&tag=b&q=x%20y",
        [(b"host", b"api.local"), (b"X-Trace", b"1"), (b"x-trace", b"2"), (b"cookie", b"a=1; b=2")],
    )

    routed = http_api_event(scope, b"")

    assert routed is not None
    _function, event = routed
    assert event["version"] == "2.0" and event["rawQueryString"] == "tag=a&tag=b&q=x%20y"
    assert event["queryStringParameters"] == {"tag": "a,b", "q": "x y"}
    assert event["headers"]["x-trace"] == "1,2" and "cookie" not in event["headers"]
    assert event["cookies"] == ["a=1", "b=2"]
    assert event["requestContext"]["http"]["sourceIp"] == "10.0.0.9"
    assert event["isBase64Encoded"] is False and "body" not in event


def test_json_bodies_arrive_as_text_and_multipart_uploads_base64_encoded() -> None:
    json_scope = _scope("POST", b"/api/v1/recommendations", headers=[(b"content-type", b"application/json")])
    upload_scope = _scope(
        "POST", b"/api/v1/interactions", headers=[(b"content-type", b"multipart/form-data; boundary=x")]
    )
    upload = b"--x\r\ncontent\r\n--x--\r\n"

    json_event = http_api_event(json_scope, b'{"user_id":"u1"}')
    upload_event = http_api_event(upload_scope, upload)

    assert json_event is not None and upload_event is not None
    assert json_event[1]["body"] == '{"user_id":"u1"}' and json_event[1]["isBase64Encoded"] is False
    assert upload_event[1]["isBase64Encoded"] is True
    assert base64.b64decode(upload_event[1]["body"]) == upload


def test_the_upload_cap_leaves_a_base64_body_inside_lambdas_payload_quota() -> None:
    assert MAX_UPLOAD_BODY_BYTES == 4_669_440
    assert len(base64.b64encode(b"x" * MAX_UPLOAD_BODY_BYTES)) + 64 * 1024 <= LAMBDA_SYNC_PAYLOAD_BYTES


def test_answers_become_http_responses() -> None:
    status, headers, body = http_response(
        {
            "statusCode": 201,
            "headers": {"Content-Type": "application/json"},
            "cookies": ["s=1"],
            "body": base64.b64encode(b"\x00\x01").decode(),
            "isBase64Encoded": True,
        }
    )

    assert status == 201 and body == b"\x00\x01"
    assert (b"content-type", b"application/json") in headers and (b"set-cookie", b"s=1") in headers
    assert (b"content-length", b"2") in headers
