"""Server-side SigV4 verification, built on botocore's own signer.

The canonical request is computed by ``botocore.auth.SigV4Auth`` (AWS's Python implementation), fed with
exactly what arrived on the wire:

* the headers listed in the request's ``SignedHeaders`` (and only those), with their received values;
* the path as received (still percent-encoded); botocore's non-S3 canonicalization removes dot segments and
  encodes it once more (``%20`` becomes ``%2520``), as SageMaker does;
* the query string as received, decoded the way the upstream server decodes it (``+`` is a space) and
  re-encoded per SigV4 (space is ``%20``). A client that signs a raw ``+`` therefore fails, exactly the
  failure the official plugin works around by rewriting ``+`` to ``%20`` before signing;
* the SHA-256 of the body bytes actually received (``x-amz-content-sha256`` must equal it).

Every check raises :class:`Refusal` with a SageMaker-style error type and message plus a precise
``reason`` for humans (the emulator puts it in the log, in the ``x-emulator-refusal-reason`` header and in
the JSON body under ``emulatorReason``).
"""

from __future__ import annotations

import datetime as _dt
import hmac
from dataclasses import dataclass, field
from typing import Callable, Iterable, Optional
from urllib.parse import parse_qsl, urlsplit

from botocore.auth import SIGV4_TIMESTAMP, SigV4Auth
from botocore.awsrequest import AWSRequest, HTTPHeaders
from botocore.credentials import Credentials

EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
MAX_SKEW_SECONDS = 15 * 60

# Headers that must never be signed: SageMaker strips Connection before verifying, and the other hop-by-hop
# headers are consumed or rewritten by every HTTP intermediary.
HOP_BY_HOP = {"connection", "keep-alive", "te", "trailer", "trailers", "transfer-encoding", "upgrade"}

SIGNATURE_MISMATCH_MESSAGE = (
    "The request signature we calculated does not match the signature you provided. Check your AWS Secret "
    "Access Key and signing method. Consult the service documentation for details."
)
INVALID_TOKEN_MESSAGE = "The security token included in the request is invalid."
EXPIRED_TOKEN_MESSAGE = "The security token included in the request is expired"


class Refusal(Exception):
    """A request the emulated service refuses."""

    def __init__(self, status: int, error_type: str, message: str, reason: str, extra: Optional[dict] = None):
        super().__init__(f"{error_type}: {reason}")
        self.status = status
        self.error_type = error_type
        self.message = message
        self.reason = reason
        self.extra = extra or {}


@dataclass
class Principal:
    """Credentials the emulated AWS knows about."""

    access_key_id: str
    secret_access_key: str
    session_token: Optional[str]
    kind: str  # "base" (long-term IAM user key) or "assumed" (temporary, from moto STS)
    arn: str
    issued_at: float = 0.0  # epoch seconds, temporary credentials only
    expires_at: Optional[float] = None  # epoch seconds, temporary credentials only
    session_name: Optional[str] = None
    extra: dict = field(default_factory=dict)


@dataclass
class AuthHeader:
    algorithm: str
    access_key_id: str
    date: str
    region: str
    service: str
    terminal: str
    signed_headers: list[str]
    signed_headers_raw: str
    signature: str


@dataclass
class Verified:
    principal: Principal
    auth: AuthHeader
    canonical_request: str


def parse_authorization(value: str) -> AuthHeader:
    value = value.strip()
    algorithm, _, rest = value.partition(" ")
    if algorithm != "AWS4-HMAC-SHA256":
        raise Refusal(
            400 if algorithm.startswith("AWS") else 403,
            "IncompleteSignatureException",
            f"Unsupported AWS 'algorithm': '{algorithm}'",
            f"Authorization algorithm is {algorithm!r}, expected 'AWS4-HMAC-SHA256'",
        )
    parts: dict[str, str] = {}
    for item in rest.split(","):
        item = item.strip()
        if not item:
            continue
        key, sep, val = item.partition("=")
        if not sep:
            raise Refusal(403, "IncompleteSignatureException", f"Authorization header requires existence of "
                          f"either a 'X-Amz-Date' or a 'Date' header. Authorization={value}",
                          f"cannot parse Authorization component {item!r}")
        parts[key.strip()] = val.strip()
    missing = [k for k in ("Credential", "SignedHeaders", "Signature") if k not in parts]
    if missing:
        raise Refusal(
            403,
            "IncompleteSignatureException",
            "Authorization header requires " + ", ".join(f"'{m}' parameter" for m in missing) + ".",
            f"Authorization header lacks {missing}",
        )
    cred = parts["Credential"].split("/")
    if len(cred) != 5:
        raise Refusal(
            403,
            "IncompleteSignatureException",
            "Credential should have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term,"
            f" got '{parts['Credential']}'",
            f"malformed credential scope {parts['Credential']!r}",
        )
    return AuthHeader(
        algorithm=algorithm,
        access_key_id=cred[0],
        date=cred[1],
        region=cred[2],
        service=cred[3],
        terminal=cred[4],
        signed_headers=parts["SignedHeaders"].split(";"),
        signed_headers_raw=parts["SignedHeaders"],
        signature=parts["Signature"],
    )


class _ReceivedRequestSigner(SigV4Auth):
    """botocore's SigV4Auth, told exactly which headers were signed and what the body hashed to."""

    def __init__(self, credentials, service_name, region_name, signed_headers: HTTPHeaders, payload_hash: str):
        super().__init__(credentials, service_name, region_name)
        self._signed = signed_headers
        self._payload_hash = payload_hash

    def headers_to_sign(self, request):  # noqa: D401 - botocore API
        return self._signed

    def payload(self, request):
        return self._payload_hash


def canonical_query_params(raw_query: str) -> list[tuple[str, str]]:
    """Decode the received query the way the upstream (Werkzeug/Starlette) does: ``+`` is a space."""
    return parse_qsl(raw_query, keep_blank_values=True)


def compute_signature(
    *,
    method: str,
    raw_target: str,
    header_lookup: Callable[[str], list[str]],
    auth: AuthHeader,
    secret_access_key: str,
    access_key_id: str,
    session_token: Optional[str],
    payload_hash: str,
) -> tuple[str, str, str]:
    """Return (signature, canonical_request, string_to_sign) for the received request."""
    signed = HTTPHeaders()
    for name in auth.signed_headers:
        for value in header_lookup(name):
            signed[name] = value
    split = urlsplit(raw_target if raw_target.startswith("/") else "/" + raw_target)
    host_values = header_lookup("host")
    host = host_values[0] if host_values else "localhost"
    request = AWSRequest(method=method.upper(), url=f"http://{host}{split.path}", headers={})
    params = canonical_query_params(split.query)
    # botocore only takes request.params when it is truthy; with no query it falls back to the (empty) URL query.
    request.params = params
    request.context["timestamp"] = header_lookup("x-amz-date")[0] if header_lookup("x-amz-date") else ""
    if "x-amz-content-sha256" in auth.signed_headers:
        request.headers["X-Amz-Content-SHA256"] = ",".join(header_lookup("x-amz-content-sha256"))
    creds = Credentials(access_key_id, secret_access_key, session_token)
    signer = _ReceivedRequestSigner(creds, auth.service, auth.region, signed, payload_hash)
    canonical = signer.canonical_request(request)
    # SignedHeaders in the canonical request is the one botocore derives (sorted, lower case); a client that
    # sent an unsorted list signed something else and fails, as with AWS.
    string_to_sign = signer.string_to_sign(request, canonical)
    signature = signer.signature(string_to_sign, request)
    return signature, canonical, string_to_sign


def verify_request(
    *,
    method: str,
    raw_target: str,
    header_lookup: Callable[[str], list[str]],
    header_names: Iterable[str],
    body_sha256: str,
    expected_service: str,
    expected_region: str,
    lookup_principal: Callable[[str], Optional[Principal]],
    temp_credentials_ttl: Optional[float],
    require_content_sha256: bool,
    required_signed: Iterable[str] = (),
    allow_unsigned_payload: bool = False,
    now: Optional[float] = None,
) -> Verified:
    """Verify one received request; raise Refusal on the first problem found."""
    now_dt = _dt.datetime.now(_dt.timezone.utc) if now is None else _dt.datetime.fromtimestamp(now, _dt.timezone.utc)
    now_ts = now_dt.timestamp()
    auth_values = header_lookup("authorization")
    if not auth_values:
        raise Refusal(403, "MissingAuthenticationTokenException", "Missing Authentication Token",
                      "no Authorization header (and no valid UI session cookie)")
    auth = parse_authorization(auth_values[0])

    # --- credential scope ---
    if auth.terminal != "aws4_request":
        raise Refusal(403, "IncompleteSignatureException",
                      f"Credential should be scoped with a valid terminator: 'aws4_request', not '{auth.terminal}'.",
                      f"scope terminator is {auth.terminal!r}")
    principal = lookup_principal(auth.access_key_id)
    if principal is None:
        raise Refusal(403, "UnrecognizedClientException", INVALID_TOKEN_MESSAGE,
                      f"unknown access key id {auth.access_key_id!r}")
    if auth.service != expected_service:
        raise Refusal(403, "InvalidSignatureException",
                      f"Credential should be scoped to correct service: '{expected_service}'. ",
                      f"credential scope service is {auth.service!r}, this endpoint expects {expected_service!r}")
    if auth.region != expected_region:
        raise Refusal(403, "InvalidSignatureException",
                      f"Credential should be scoped to a valid region, not '{auth.region}'. ",
                      f"credential scope region is {auth.region!r}, this endpoint expects {expected_region!r}")

    # --- signed header list ---
    signed = auth.signed_headers
    if any(h != h.lower() or not h for h in signed):
        raise Refusal(403, "InvalidSignatureException", SIGNATURE_MISMATCH_MESSAGE,
                      f"SignedHeaders must be lower case and non-empty: {auth.signed_headers_raw!r}")
    hop = sorted(h for h in signed if h in HOP_BY_HOP or h.startswith("proxy-"))
    if hop:
        raise Refusal(403, "InvalidSignatureException", SIGNATURE_MISMATCH_MESSAGE,
                      f"SignedHeaders includes hop-by-hop header(s) {hop}; the service strips them before "
                      f"verifying, so the signature cannot match")
    for name in ["host", "x-amz-date", *required_signed]:
        if name not in signed:
            raise Refusal(403, "InvalidSignatureException", SIGNATURE_MISMATCH_MESSAGE
                          if name != "host" else "'Host' must be a 'SignedHeader' in the AWS Authorization.",
                          f"header {name!r} must be signed but SignedHeaders is {auth.signed_headers_raw!r}")
    missing = [h for h in signed if not header_lookup(h)]
    if missing:
        raise Refusal(403, "InvalidSignatureException", SIGNATURE_MISMATCH_MESSAGE,
                      f"SignedHeaders lists {missing} but the request arrived without them "
                      f"(e.g. content-length signed but body sent chunked?)")

    # --- date ---
    amz_date = header_lookup("x-amz-date")
    if not amz_date:
        raise Refusal(403, "IncompleteSignatureException",
                      "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.",
                      "no x-amz-date header")
    try:
        req_dt = _dt.datetime.strptime(amz_date[0], SIGV4_TIMESTAMP).replace(tzinfo=_dt.timezone.utc)
    except ValueError:
        raise Refusal(403, "IncompleteSignatureException", "Date must be in ISO-8601 'basic format'.",
                      f"x-amz-date {amz_date[0]!r} is not YYYYMMDDTHHMMSSZ") from None
    if auth.date != amz_date[0][:8]:
        raise Refusal(403, "InvalidSignatureException",
                      f"Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from "
                      f"HTTP: '{auth.date}' != '{amz_date[0][:8]}', from '{amz_date[0]}'.",
                      "credential scope date differs from x-amz-date")
    skew = req_dt.timestamp() - now_ts
    if skew < -MAX_SKEW_SECONDS:
        raise Refusal(403, "InvalidSignatureException",
                      f"Signature expired: {amz_date[0]} is now earlier than "
                      f"{(now_dt - _dt.timedelta(seconds=MAX_SKEW_SECONDS)).strftime(SIGV4_TIMESTAMP)} "
                      f"({now_dt.strftime(SIGV4_TIMESTAMP)} - 15 min.)",
                      f"x-amz-date is {-skew:.0f}s in the past (limit 900s)")
    if skew > MAX_SKEW_SECONDS:
        raise Refusal(403, "InvalidSignatureException",
                      f"Signature not yet current: {amz_date[0]} is still later than "
                      f"{(now_dt + _dt.timedelta(seconds=MAX_SKEW_SECONDS)).strftime(SIGV4_TIMESTAMP)} "
                      f"({now_dt.strftime(SIGV4_TIMESTAMP)} + 15 min.)",
                      f"x-amz-date is {skew:.0f}s in the future (limit 900s)")

    # --- payload hash ---
    content_sha = header_lookup("x-amz-content-sha256")
    payload_hash = body_sha256
    if content_sha:
        claimed = content_sha[0].strip()
        if claimed == UNSIGNED_PAYLOAD and allow_unsigned_payload:
            payload_hash = UNSIGNED_PAYLOAD
        elif claimed != body_sha256:
            raise Refusal(403, "InvalidSignatureException",
                          "The provided 'x-amz-content-sha256' header does not match what was computed.",
                          f"x-amz-content-sha256 is {claimed!r} but the {('empty ' if body_sha256 == EMPTY_SHA256 else '')}"
                          f"body received hashes to {body_sha256!r}")
        if "x-amz-content-sha256" not in signed:
            raise Refusal(403, "InvalidSignatureException", SIGNATURE_MISMATCH_MESSAGE,
                          "x-amz-content-sha256 is present but not signed")
    elif require_content_sha256:
        raise Refusal(403, "InvalidSignatureException", SIGNATURE_MISMATCH_MESSAGE,
                      "x-amz-content-sha256 header missing (the official client always sends and signs it)")

    # --- security token ---
    token = header_lookup("x-amz-security-token")
    if principal.kind == "assumed":
        if not token:
            raise Refusal(403, "UnrecognizedClientException", INVALID_TOKEN_MESSAGE,
                          f"temporary access key {auth.access_key_id} used without x-amz-security-token")
        if not hmac.compare_digest(token[0].strip(), principal.session_token or ""):
            raise Refusal(403, "UnrecognizedClientException", INVALID_TOKEN_MESSAGE,
                          f"x-amz-security-token does not belong to temporary access key {auth.access_key_id}")
        if "x-amz-security-token" not in signed:
            raise Refusal(403, "InvalidSignatureException", SIGNATURE_MISMATCH_MESSAGE,
                          "x-amz-security-token present but not signed")
        age = now_ts - principal.issued_at
        if temp_credentials_ttl is not None and age > temp_credentials_ttl:
            raise Refusal(403, "ExpiredTokenException", EXPIRED_TOKEN_MESSAGE,
                          f"temporary credentials {auth.access_key_id} issued {age:.1f}s ago; the emulator's "
                          f"temp_credentials_ttl is {temp_credentials_ttl}s")
        if principal.expires_at is not None and now_ts > principal.expires_at:
            raise Refusal(403, "ExpiredTokenException", EXPIRED_TOKEN_MESSAGE,
                          f"temporary credentials {auth.access_key_id} expired at their STS expiration")
    elif token:
        raise Refusal(403, "UnrecognizedClientException", INVALID_TOKEN_MESSAGE,
                      f"x-amz-security-token sent with long-term access key {auth.access_key_id}")

    # --- signature ---
    signature, canonical, string_to_sign = compute_signature(
        method=method,
        raw_target=raw_target,
        header_lookup=header_lookup,
        auth=auth,
        secret_access_key=principal.secret_access_key,
        access_key_id=principal.access_key_id,
        session_token=principal.session_token,
        payload_hash=payload_hash,
    )
    if not hmac.compare_digest(signature, auth.signature):
        raise Refusal(403, "InvalidSignatureException", SIGNATURE_MISMATCH_MESSAGE,
                      "signature mismatch; see emulatorCanonicalRequest for what the service computed",
                      extra={"emulatorCanonicalRequest": canonical, "emulatorStringToSign": string_to_sign})
    return Verified(principal=principal, auth=auth, canonical_request=canonical)
