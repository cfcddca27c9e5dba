"""Send hand-signed requests (botocore's signer) to the stand-in, with ways to break them on purpose."""

from __future__ import annotations

import hashlib
from typing import Callable, Iterable, Optional
from urllib.parse import urlsplit

import requests
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

TS_HEADER = "x-mlflow-sm-tracking-server-arn"
APP_HEADER = "x-sm-mlflow-app-arn"


class _ExactHeadersSigner(SigV4Auth):
    """Sign exactly the headers of the request (botocore would silently skip hop-by-hop ones)."""

    def headers_to_sign(self, request):
        from botocore.awsrequest import HTTPHeaders

        hm = HTTPHeaders()
        for name, value in request.headers.items():
            hm[name.lower()] = value
        if "host" not in hm:
            hm["host"] = urlsplit(request.url).netloc
        return hm


def send_signed(
    method: str,
    url: str,
    *,
    access_key: str,
    secret_key: str,
    token: Optional[str] = None,
    service: str,
    region: str,
    routing: Optional[tuple[str, str]] = None,
    body: bytes | Iterable[bytes] = b"",
    headers: Optional[dict] = None,
    sign_url: Optional[str] = None,
    content_sha: Optional[str] = "auto",
    exact_headers: bool = False,
    mutate: Optional[Callable[[dict], None]] = None,
    stream_body: Optional[Iterable[bytes]] = None,
    timeout: float = 30,
) -> requests.Response:
    """Sign like the official client (x-amz-content-sha256 + routing header signed) and send.

    sign_url: URL to compute the signature over (default: url) -- lets a test sign one form and send another.
    mutate: called with the final header dict after signing (tamper with it).
    stream_body: send this iterable as a chunked body (the signature covers the bytes of `body`).
    """
    h = dict(headers or {})
    if routing:
        h[routing[0]] = routing[1]
    data = body if isinstance(body, bytes) else b"".join(body)
    if content_sha == "auto":
        h["X-Amz-Content-SHA256"] = hashlib.sha256(data).hexdigest()
    elif content_sha is not None:
        h["X-Amz-Content-SHA256"] = content_sha
    if data and stream_body is None and "Content-Length" not in h:
        h["Content-Length"] = str(len(data))
    h["Host"] = urlsplit(url).netloc
    req = AWSRequest(method=method, url=sign_url or url, data=data, headers=h)
    signer_cls = _ExactHeadersSigner if exact_headers else SigV4Auth
    signer_cls(Credentials(access_key, secret_key, token), service, region).add_auth(req)
    final = dict(req.headers.items())
    if mutate:
        mutate(final)
    send_data = stream_body if stream_body is not None else (data or None)
    return requests.request(method, url, data=send_data, headers=final, timeout=timeout, allow_redirects=False)
