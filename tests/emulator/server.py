"""The SageMaker managed MLflow stand-in: data plane, control plane and admin endpoints.

One handler class serves two listeners: the *data plane* (MLflow REST/UI behind SigV4 or a UI session cookie,
plus ``/auth`` for presigned URLs) and the *control plane* (JSON 1.1 ``POST /`` with ``X-Amz-Target``).
Both listeners also answer the unsigned admin endpoints under ``/__emulator/`` (see README.md).
"""

from __future__ import annotations

import hashlib
import http.client
import json
import re
import secrets
import socket
import tempfile
import threading
import time
import uuid
from collections import deque
from dataclasses import asdict, dataclass, field
from http.cookies import SimpleCookie
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Optional
from urllib.parse import parse_qs, urlsplit

from . import sigv4
from .sigv4 import EMPTY_SHA256, HOP_BY_HOP, Principal, Refusal

TS_HEADER = "x-mlflow-sm-tracking-server-arn"
APP_HEADER = "x-sm-mlflow-app-arn"
CHUNK = 1 << 20

# Headers never passed on to MLflow: hop-by-hop, AWS auth, and what the emulator re-creates.
_DROP_UPSTREAM = HOP_BY_HOP | {
    "host", "content-length", "authorization", "cookie", "expect", "proxy-authorization", "proxy-connection",
}
_DROP_DOWNSTREAM = HOP_BY_HOP | {"content-length", "proxy-authenticate"}


@dataclass
class Fault:
    """Injected misbehaviour for the next ``count`` matching data-plane requests (after auth passed)."""

    delay_seconds: float = 0.0  # sleep before forwarding to MLflow
    status: Optional[int] = None  # answer with this status instead of forwarding
    drop: bool = False  # close the connection without any response
    count: int = 1  # how many requests it applies to (-1 = until cleared)
    path_contains: str = ""  # only requests whose raw target contains this
    method: str = ""  # only this method (empty = any)
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:8])

    def matches(self, method: str, target: str) -> bool:
        return (not self.method or self.method.upper() == method) and self.path_contains in target


@dataclass
class EmulatorConfig:
    """Runtime knobs (``GET``/``POST /__emulator/config``)."""

    # Temporary (STS) credentials are rejected with ExpiredTokenException this many seconds after issue.
    temp_credentials_ttl: Optional[float] = None
    # Overrides SessionExpirationDurationInSeconds of UI sessions created from now on (and checks existing).
    session_ttl: Optional[float] = None
    # What an unsigned request with an expired/unknown session cookie gets: "401" or "redirect" (302 /login).
    unauthenticated_ui_response: str = "401"
    session_cookie_name: str = "sm-mlflow-session"
    # The official client signs the routing header; insist on it.
    require_signed_routing_header: bool = True
    # Accept x-amz-content-sha256: UNSIGNED-PAYLOAD (unknown whether SageMaker does; off by default).
    allow_unsigned_payload: bool = False
    # Seconds an idle keep-alive connection is kept open (ALB default is 60).
    idle_timeout: float = 60.0


class AuthTokens:
    """Single-use presigned-URL tokens and the UI sessions they create."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.tokens: dict[str, dict] = {}
        self.sessions: dict[str, dict] = {}

    def issue_token(self, arn: str, expires_in: int, session_ttl: int) -> str:
        token = "emu." + secrets.token_urlsafe(32)
        with self.lock:
            self.tokens[token] = {"arn": arn, "expires_at": time.time() + expires_in, "session_ttl": session_ttl,
                                  "used": False}
        return token

    def consume(self, token: str) -> tuple[Optional[dict], str]:
        with self.lock:
            rec = self.tokens.get(token)
            if rec is None:
                return None, "unknown authToken"
            if rec["used"]:
                return None, "authToken already used (presigned URLs are single-use)"
            if time.time() > rec["expires_at"]:
                return None, "authToken expired (ExpiresInSeconds passed)"
            rec["used"] = True
            return rec, ""

    def new_session(self, arn: str, ttl: float) -> str:
        sid = secrets.token_urlsafe(32)
        now = time.time()
        with self.lock:
            self.sessions[sid] = {"arn": arn, "created": now, "expires_at": now + ttl}
        return sid

    def age(self, seconds: float) -> None:
        """Makes every token and session issued so far `seconds` older (instead of waiting for them to expire)."""
        with self.lock:
            for rec in self.tokens.values():
                rec["expires_at"] -= seconds
            for rec in self.sessions.values():
                rec["created"] -= seconds
                rec["expires_at"] -= seconds

    def check_session(self, sid: str, ttl_override: Optional[float]) -> tuple[Optional[dict], str]:
        with self.lock:
            rec = self.sessions.get(sid)
        if rec is None:
            return None, "unknown session cookie"
        expires = rec["expires_at"] if ttl_override is None else min(rec["expires_at"], rec["created"] + ttl_override)
        if time.time() > expires:
            return None, "session expired"
        return rec, ""


class RequestLog:
    def __init__(self, maxlen: int = 5000) -> None:
        self.lock = threading.Lock()
        self.entries: deque = deque(maxlen=maxlen)
        self.seq = 0

    def add(self, entry: dict) -> int:
        with self.lock:
            self.seq += 1
            entry["seq"] = self.seq
            self.entries.append(entry)
            return self.seq

    def since(self, seq: int) -> list[dict]:
        """Copies of the entries after seq (in-flight ones included, with outcome "in-flight")."""
        for _ in range(10):
            try:
                with self.lock:
                    return [dict(e) for e in self.entries if e["seq"] > seq]
            except RuntimeError:  # an in-flight entry changed size while being copied
                time.sleep(0.001)
        with self.lock:
            return [dict(e) for e in self.entries if e["seq"] > seq]

    def clear(self) -> None:
        with self.lock:
            self.entries.clear()


class _Body:
    """A request body spooled to memory/disk while hashing."""

    def __init__(self, tmpdir: str) -> None:
        self.file = tempfile.SpooledTemporaryFile(max_size=4 << 20, dir=tmpdir)
        self.size = 0
        self.sha = hashlib.sha256()
        self.transfer = "none"

    def write(self, data: bytes) -> None:
        self.file.write(data)
        self.sha.update(data)
        self.size += len(data)

    @property
    def hexdigest(self) -> str:
        return self.sha.hexdigest()

    def chunks(self):
        self.file.seek(0)
        while True:
            data = self.file.read(CHUNK)
            if not data:
                return
            yield data

    def read_all(self) -> bytes:
        self.file.seek(0)
        return self.file.read()

    def close(self) -> None:
        self.file.close()


class BadRequest(Exception):
    pass


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    rbufsize = 1 << 16
    server_version = "SageMakerMlflowEmulator/1.0"
    # set per listener via a subclass: role = "data" | "control"; emu = the Emulator
    role = "data"
    emu: Any = None

    # ---------------------------------------------------------------- plumbing
    def setup(self) -> None:
        self.timeout = self.emu.config.idle_timeout
        super().setup()
        self.emu._track(self.connection, True)

    def handle_one_request(self) -> None:
        # The idle timeout in force now, for connections opened before a test changed it too: each wait
        # for the next request on a kept-alive connection is bounded by the current setting.
        self.connection.settimeout(self.emu.config.idle_timeout)
        super().handle_one_request()

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.emu._track(self.connection, False)

    def log_message(self, format: str, *args: Any) -> None:  # quiet; we keep our own log
        pass

    def _lookup(self, name: str) -> list[str]:
        return [v for v in (self.headers.get_all(name) or [])]

    def do_GET(self): self._handle()  # noqa: E704
    def do_HEAD(self): self._handle()  # noqa: E704
    def do_POST(self): self._handle()  # noqa: E704
    def do_PUT(self): self._handle()  # noqa: E704
    def do_PATCH(self): self._handle()  # noqa: E704
    def do_DELETE(self): self._handle()  # noqa: E704
    def do_OPTIONS(self): self._handle()  # noqa: E704

    def _read_body(self) -> _Body:
        body = _Body(self.emu.tmpdir)
        te = ",".join(self._lookup("transfer-encoding")).lower()
        cl = self._lookup("content-length")
        if "chunked" in te:
            body.transfer = "chunked"
            while True:
                line = self.rfile.readline(65537)
                if not line:
                    raise BadRequest("connection closed inside chunked body")
                try:
                    size = int(line.split(b";", 1)[0].strip(), 16)
                except ValueError:
                    raise BadRequest(f"bad chunk size line {line[:40]!r}") from None
                if size == 0:
                    while True:  # trailers
                        t = self.rfile.readline(65537)
                        if t in (b"\r\n", b"\n", b""):
                            break
                    break
                remaining = size
                while remaining:
                    data = self.rfile.read(min(remaining, CHUNK))
                    if not data:
                        raise BadRequest("connection closed inside chunk")
                    body.write(data)
                    remaining -= len(data)
                self.rfile.readline(3)
        elif cl:
            if len(set(v.strip() for v in cl)) != 1:
                raise BadRequest("conflicting Content-Length headers")
            try:
                remaining = int(cl[0])
            except ValueError:
                raise BadRequest("bad Content-Length") from None
            body.transfer = "content-length"
            while remaining:
                data = self.rfile.read(min(remaining, CHUNK))
                if not data:
                    raise BadRequest(f"connection closed with {remaining} body bytes missing")
                body.write(data)
                remaining -= len(data)
        return body

    def _send_json(self, status: int, payload: Any, headers: Optional[dict] = None) -> None:
        data = json.dumps(payload).encode()
        self.send_response_only(status)
        self.send_header("Date", self.date_time_string())
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("x-amzn-RequestId", str(uuid.uuid4()))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _send_refusal(self, r: Refusal, *, json_protocol: bool = False) -> None:
        body = {"__type": r.error_type, ("Message" if json_protocol else "message"): r.message,
                "emulatorReason": r.reason}
        body.update(r.extra)
        reason = r.reason.replace("\r", " ").replace("\n", " ")[:900]
        self._send_json(r.status, body, {"x-amzn-ErrorType": f"{r.error_type}:", "x-emulator-refusal-reason": reason})

    # ---------------------------------------------------------------- dispatch
    def _handle(self) -> None:
        started = time.time()
        target = self.path
        path = urlsplit(target).path
        entry: dict = {"time": started, "listener": self.role, "method": self.command, "target": target,
                       "client": f"{self.client_address[0]}:{self.client_address[1]}", "outcome": "in-flight"}
        if path.startswith("/__emulator/"):
            body = None
            try:
                body = self._read_body()
                self.emu.admin(self, path, body)
            finally:
                if body is not None:
                    body.close()
            return
        # Logged up front (seq assigned now) so that a client which got its response can find the entry.
        self.emu.log.add(entry)
        body = None
        try:
            try:
                body = self._read_body()
            except BadRequest as e:
                entry.update(status=400, outcome="bad-request", reason=str(e))
                self.close_connection = True
                self._send_json(400, {"__type": "SerializationException", "message": str(e)})
                return
            entry.update(body_bytes=body.size, body_transfer=body.transfer, body_sha256=body.hexdigest,
                         signed_headers=None, user_agent=self.headers.get("user-agent"))
            if self.role == "control":
                self.emu.control_plane(self, body, entry)
            else:
                self.emu.data_plane(self, body, entry)
        except (BrokenPipeError, ConnectionResetError, socket.timeout) as e:
            entry.setdefault("status", 0)
            entry["outcome"] = entry.get("outcome", "") + f" (client went away: {e.__class__.__name__})"
            self.close_connection = True
        finally:
            if body is not None:
                body.close()
            entry["duration_ms"] = round((time.time() - started) * 1000, 1)


class Emulator:
    """Ties the listeners, MLflow and moto together. Built and started by ``tests.emulator.start()``."""

    def __init__(self, *, region: str, account_id: str, tracking_server_name: str, app_id: str, tmpdir: str,
                 mlflow_url: str, mlflow_version: str, sts: Any, config: EmulatorConfig) -> None:
        self.region = region
        self.account_id = account_id
        self.tracking_server_name = tracking_server_name
        self.app_id = app_id
        self.ts_arn = f"arn:aws:sagemaker:{region}:{account_id}:mlflow-tracking-server/{tracking_server_name}"
        self.app_arn = f"arn:aws:sagemaker:{region}:{account_id}:mlflow-app/{app_id}"
        self.tmpdir = tmpdir
        self.mlflow_url = mlflow_url
        mlflow_split = urlsplit(mlflow_url)
        self.mlflow_host = mlflow_split.hostname or "127.0.0.1"
        self.mlflow_port = mlflow_split.port or 80
        self.mlflow_version = mlflow_version
        self.sts = sts
        self.config = config
        self.initial_config = EmulatorConfig(**asdict(config))
        self.tokens = AuthTokens()
        self.log = RequestLog()
        self.faults: list[Fault] = []
        self.faults_lock = threading.Lock()
        self.servers: list[ThreadingHTTPServer] = []
        self.threads: list[threading.Thread] = []
        self._conns: set = set()
        self._conns_lock = threading.Lock()
        self.data_url = ""
        self.control_url = ""
        self.extra_principals: dict[str, Principal] = {}
        # Seconds by which `age()` made temporary credentials older, by access key.
        self.aged: dict[str, float] = {}
        self.aged_lock = threading.Lock()
        self.created = time.time()
        self._validator = None

    # ---------------------------------------------------------------- listeners
    def _track(self, conn: socket.socket, add: bool) -> None:
        with self._conns_lock:
            (self._conns.add if add else self._conns.discard)(conn)

    def listen(self, role: str, port: int = 0) -> str:
        handler = type(f"{role.title()}Handler", (Handler,), {"role": role, "emu": self})
        srv = ThreadingHTTPServer(("127.0.0.1", port), handler)
        srv.daemon_threads = True
        srv.request_queue_size = 128
        t = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True,
                             name=f"emulator-{role}")
        t.start()
        self.servers.append(srv)
        self.threads.append(t)
        return f"http://127.0.0.1:{srv.server_address[1]}"

    def close(self) -> None:
        for srv in self.servers:
            srv.shutdown()
            srv.server_close()
        with self._conns_lock:
            conns = list(self._conns)
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for t in self.threads:
            t.join(timeout=5)

    # ---------------------------------------------------------------- time
    def age(self, seconds: float) -> None:
        """Makes everything issued so far (temporary credentials, presigned tokens, UI sessions) `seconds`
        older, as if that much time had passed for them; what is issued afterwards starts fresh. Tests use
        this instead of sleeping until an expiry the stand-in enforces."""
        with self.aged_lock:
            for role in self.sts.assumed_roles():
                self.aged[role.access_key_id] = self.aged.get(role.access_key_id, 0.0) + seconds
        self.tokens.age(seconds)

    def open_clients(self) -> set[str]:
        """The peers ("ip:port") of the connections the listeners hold open now."""
        with self._conns_lock:
            conns = list(self._conns)
        out = set()
        for c in conns:
            try:
                host, port = c.getpeername()[:2]
            except OSError:
                continue
            out.add(f"{host}:{port}")
        return out

    # ---------------------------------------------------------------- credentials
    def lookup_principal(self, access_key_id: str) -> Optional[Principal]:
        if access_key_id == self.sts.base_access_key_id:
            return Principal(access_key_id, self.sts.base_secret_access_key, None, "base", self.sts.user_arn)
        if access_key_id in self.extra_principals:
            return self.extra_principals[access_key_id]
        for role in self.sts.assumed_roles():
            if role.access_key_id == access_key_id:
                created = role.access_key.create_date
                with self.aged_lock:
                    aged = self.aged.get(access_key_id, 0.0)
                issued = created.replace(tzinfo=__import__("datetime").timezone.utc).timestamp() - aged
                expires = role.expiration.replace(tzinfo=__import__("datetime").timezone.utc).timestamp() - aged
                return Principal(access_key_id, role.secret_access_key, role.session_token, "assumed", role.arn,
                                 issued_at=issued, expires_at=expires, session_name=role.session_name)
        return None

    # ---------------------------------------------------------------- data plane
    def data_plane(self, h: Handler, body: _Body, entry: dict) -> None:
        split = urlsplit(h.path)
        if split.path == "/auth" and h.command == "GET" and not h.headers.get("authorization"):
            return self._auth_redirect(h, split.query, entry)
        if split.path == "/login" and not h.headers.get("authorization"):
            entry.update(status=401, outcome="refused", reason="login page (session required)")
            data = b"<html><body><h1>Session expired</h1><p>Open a new presigned URL.</p></body></html>"
            h.send_response_only(401)
            h.send_header("Content-Type", "text/html; charset=utf-8")
            h.send_header("Content-Length", str(len(data)))
            h.end_headers()
            h.wfile.write(data)
            return
        if h.headers.get("authorization"):
            try:
                arn, service = self._routing(h)
                required = ["x-amz-content-sha256"]
                if self.config.require_signed_routing_header:
                    required.append(TS_HEADER if arn == self.ts_arn else APP_HEADER)
                v = sigv4.verify_request(
                    method=h.command, raw_target=h.path, header_lookup=h._lookup, header_names=h.headers.keys(),
                    body_sha256=body.hexdigest, expected_service=service, expected_region=self.region,
                    lookup_principal=self.lookup_principal, temp_credentials_ttl=self.config.temp_credentials_ttl,
                    require_content_sha256=True, required_signed=required,
                    allow_unsigned_payload=self.config.allow_unsigned_payload,
                )
            except Refusal as r:
                self._annotate_auth(h, entry)
                entry.update(status=r.status, outcome="refused", error_type=r.error_type, reason=r.reason)
                return h._send_refusal(r)
            self._annotate_auth(h, entry)
            entry.update(auth="sigv4", access_key_id=v.principal.access_key_id, principal_kind=v.principal.kind,
                         principal_arn=v.principal.arn, session_name=v.principal.session_name, arn=arn)
        else:
            cookie_name = self.config.session_cookie_name
            jar = SimpleCookie()
            try:
                jar.load(h.headers.get("cookie") or "")
            except Exception:  # malformed cookie header
                pass
            sid = jar[cookie_name].value if cookie_name in jar else None
            if sid is None:
                r = Refusal(403, "MissingAuthenticationTokenException", "Missing Authentication Token",
                            "no Authorization header and no UI session cookie")
                entry.update(status=r.status, outcome="refused", error_type=r.error_type, reason=r.reason)
                return h._send_refusal(r)
            rec, why = self.tokens.check_session(sid, self.config.session_ttl)
            if rec is None:
                entry.update(outcome="refused", reason=f"UI session: {why}")
                if self.config.unauthenticated_ui_response == "redirect":
                    entry["status"] = 302
                    h.send_response_only(302)
                    h.send_header("Location", f"{self.data_url}/login")
                    h.send_header("Content-Length", "0")
                    h.end_headers()
                    return
                entry["status"] = 401
                return h._send_json(401, {"__type": "AccessDeniedException", "message": "Unauthorized",
                                          "emulatorReason": why}, {"x-amzn-ErrorType": "AccessDeniedException:",
                                                                   "x-emulator-refusal-reason": why})
            entry.update(auth="ui-session", arn=rec["arn"])
        self._forward(h, body, entry)

    def _annotate_auth(self, h: Handler, entry: dict) -> None:
        try:
            a = sigv4.parse_authorization(h.headers.get("authorization", ""))
            entry.update(signed_headers=a.signed_headers_raw, scope_service=a.service, scope_region=a.region,
                         access_key_id=a.access_key_id)
        except Refusal:
            pass

    def _routing(self, h: Handler) -> tuple[str, str]:
        ts = h._lookup(TS_HEADER)
        app = h._lookup(APP_HEADER)
        if ts and app:
            raise Refusal(403, "AccessDeniedException", "Request has more than one MLflow routing header",
                          f"both {TS_HEADER} and {APP_HEADER} present")
        if not ts and not app:
            raise Refusal(403, "AccessDeniedException", "Missing MLflow resource ARN header",
                          f"neither {TS_HEADER} nor {APP_HEADER} present")
        if ts:
            value = ts[0].strip()
            if len(ts) > 1 or value != self.ts_arn:
                kind = "app ARN" if ":mlflow-app/" in value else "unknown tracking server ARN"
                raise Refusal(403, "AccessDeniedException",
                              f"User is not authorized to access MLflow resource {value}",
                              f"{TS_HEADER} is {value!r} ({kind}); this emulator serves {self.ts_arn!r}")
            return self.ts_arn, "sagemaker-mlflow"
        value = app[0].strip()
        if len(app) > 1 or value != self.app_arn:
            kind = "tracking server ARN" if ":mlflow-tracking-server/" in value else "unknown app ARN"
            raise Refusal(403, "AccessDeniedException", f"User is not authorized to access MLflow resource {value}",
                          f"{APP_HEADER} is {value!r} ({kind}); this emulator serves {self.app_arn!r}")
        return self.app_arn, "sagemaker"

    def _auth_redirect(self, h: Handler, query: str, entry: dict) -> None:
        token = (parse_qs(query).get("authToken") or [""])[0]
        rec, why = self.tokens.consume(token) if token else (None, "no authToken")
        if rec is None:
            entry.update(status=403, outcome="refused", reason=f"/auth: {why}")
            return h._send_refusal(Refusal(403, "AccessDeniedException", "Invalid or expired authorization token", why))
        ttl = rec["session_ttl"] if self.config.session_ttl is None else self.config.session_ttl
        sid = self.tokens.new_session(rec["arn"], ttl)
        entry.update(status=302, outcome="session-created", arn=rec["arn"], reason=f"session ttl {ttl}s")
        h.send_response_only(302)
        h.send_header("Location", "/")
        h.send_header("Set-Cookie", f"{self.config.session_cookie_name}={sid}; Path=/; HttpOnly; SameSite=Lax; "
                                    f"Max-Age={int(ttl)}")
        h.send_header("Content-Length", "0")
        h.end_headers()

    def _take_fault(self, method: str, target: str) -> Optional[Fault]:
        with self.faults_lock:
            for f in self.faults:
                if f.matches(method, target):
                    if f.count > 0:
                        f.count -= 1
                        if f.count == 0:
                            self.faults.remove(f)
                    return f
        return None

    def _forward(self, h: Handler, body: _Body, entry: dict) -> None:
        fault = self._take_fault(h.command, h.path)
        delay = 0.0
        try:
            delay = float(h.headers.get("x-emulator-delay-seconds") or 0)
        except ValueError:
            pass
        if fault is not None:
            entry["fault"] = asdict(fault)
            delay = max(delay, fault.delay_seconds)
        if delay:
            time.sleep(delay)
        if fault is not None and fault.drop:
            entry.update(status=0, outcome="fault-drop")
            h.close_connection = True
            try:
                h.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        if fault is not None and fault.status:
            entry.update(status=fault.status, outcome="fault-status")
            return h._send_json(fault.status, {"error_code": "TEMPORARILY_UNAVAILABLE",
                                               "message": f"emulator fault injection ({fault.status})"})
        conn = http.client.HTTPConnection(self.mlflow_host, self.mlflow_port, timeout=600)
        try:
            conn.putrequest(h.command, h.path, skip_host=True, skip_accept_encoding=True)
            connection_tokens = {t.strip().lower() for v in h._lookup("connection") for t in v.split(",")}
            for name, value in h.headers.items():
                ln = name.lower()
                if ln in _DROP_UPSTREAM or ln in connection_tokens or ln.startswith("x-amz-") \
                        or ln.startswith("x-emulator-"):
                    continue
                conn.putheader(name, value)
            conn.putheader("Host", f"{self.mlflow_host}:{self.mlflow_port}")
            if body.size or h.command in ("POST", "PUT", "PATCH"):
                conn.putheader("Content-Length", str(body.size))
            conn.endheaders()
            for data in body.chunks():
                conn.send(data)
            resp = conn.getresponse()
        except OSError as e:
            conn.close()
            entry.update(status=502, outcome="mlflow-unreachable", reason=repr(e))
            return h._send_json(502, {"error_code": "INTERNAL_ERROR", "message": f"emulator: MLflow unreachable: {e}"})
        try:
            self._relay_response(h, resp, entry)
        finally:
            conn.close()

    def _relay_response(self, h: Handler, resp: http.client.HTTPResponse, entry: dict) -> None:
        entry.update(status=resp.status, outcome="forwarded")
        h.send_response_only(resp.status, resp.reason)
        headers = resp.getheaders()
        ctype = ""
        has_xfo = False
        conn_tokens = {t.strip().lower() for k, v in headers if k.lower() == "connection" for t in v.split(",")}
        for k, v in headers:
            lk = k.lower()
            if lk in _DROP_DOWNSTREAM or lk in conn_tokens:
                continue
            if lk == "content-type":
                ctype = v
            if lk == "x-frame-options":
                has_xfo = True
            h.send_header(k, v)
        if "text/html" in ctype.lower() and not has_xfo:
            h.send_header("X-Frame-Options", "SAMEORIGIN")
        h.send_header("x-amzn-RequestId", str(uuid.uuid4()))
        length = resp.getheader("content-length")
        no_body = h.command == "HEAD" or resp.status in (204, 304) or 100 <= resp.status < 200
        sent = 0
        if no_body:
            if length is not None:
                h.send_header("Content-Length", length)
            h.end_headers()
            resp.read()
        elif length is not None:
            h.send_header("Content-Length", length)
            h.end_headers()
            while True:
                data = resp.read1(CHUNK)
                if not data:
                    break
                h.wfile.write(data)
                sent += len(data)
        else:
            h.send_header("Transfer-Encoding", "chunked")
            h.end_headers()
            while True:
                data = resp.read1(CHUNK)
                if not data:
                    break
                h.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
                sent += len(data)
            h.wfile.write(b"0\r\n\r\n")
        entry["response_bytes"] = sent
        if resp.will_close and length is None and no_body is False:
            pass  # we re-framed with chunked encoding; our connection stays usable

    # ---------------------------------------------------------------- control plane
    def _validation(self):
        if self._validator is None:
            import botocore.session

            self._validator = botocore.session.get_session().get_service_model("sagemaker")
        return self._validator

    def control_plane(self, h: Handler, body: _Body, entry: dict) -> None:
        target = h.headers.get("x-amz-target", "")
        entry["operation"] = target
        split = urlsplit(h.path)
        if h.command != "POST" or split.path != "/" or not target:
            entry.update(status=404, outcome="refused", reason="control plane answers POST / with X-Amz-Target")
            return h._send_json(404, {"__type": "UnknownOperationException", "Message": "Unknown operation"},
                                {"x-amzn-ErrorType": "UnknownOperationException:"})
        try:
            v = sigv4.verify_request(
                method=h.command, raw_target=h.path, header_lookup=h._lookup, header_names=h.headers.keys(),
                body_sha256=body.hexdigest, expected_service="sagemaker", expected_region=self.region,
                lookup_principal=self.lookup_principal, temp_credentials_ttl=self.config.temp_credentials_ttl,
                require_content_sha256=False, allow_unsigned_payload=False,
            )
        except Refusal as r:
            self._annotate_auth(h, entry)
            entry.update(status=r.status, outcome="refused", error_type=r.error_type, reason=r.reason)
            return h._send_refusal(r, json_protocol=True)
        self._annotate_auth(h, entry)
        entry.update(auth="sigv4", access_key_id=v.principal.access_key_id, principal_kind=v.principal.kind,
                     principal_arn=v.principal.arn, session_name=v.principal.session_name)
        ctype = (h.headers.get("content-type") or "").split(";")[0].strip().lower()
        if ctype != "application/x-amz-json-1.1":
            return self._cp_error(h, entry, "SerializationException",
                                  f"Content-Type must be application/x-amz-json-1.1, got {ctype!r}")
        prefix, _, op = target.partition(".")
        handlers = {
            "CreatePresignedMlflowTrackingServerUrl": self._op_presign_ts,
            "CreatePresignedMlflowAppUrl": self._op_presign_app,
            "DescribeMlflowTrackingServer": self._op_describe_ts,
            "DescribeMlflowApp": self._op_describe_app,
        }
        if prefix != "SageMaker" or op not in handlers:
            return self._cp_error(h, entry, "UnknownOperationException", f"Unknown operation {target}")
        try:
            params = json.loads(body.read_all() or b"{}")
            if not isinstance(params, dict):
                raise ValueError("not an object")
        except ValueError as e:
            return self._cp_error(h, entry, "SerializationException", f"Request body is not a JSON object: {e}")
        errors = self._validate(op, params)
        if errors:
            msg = (f"{len(errors)} validation error{'s' if len(errors) > 1 else ''} detected: " + "; ".join(errors))
            return self._cp_error(h, entry, "ValidationException", msg)
        result = handlers[op](params)
        if isinstance(result, Refusal):
            return self._cp_error(h, entry, result.error_type, result.message)
        entry.update(status=200, outcome="ok")
        data = json.dumps(result).encode()
        h.send_response_only(200)
        h.send_header("Date", h.date_time_string())
        h.send_header("Content-Type", "application/x-amz-json-1.1")
        h.send_header("Content-Length", str(len(data)))
        h.send_header("x-amzn-RequestId", str(uuid.uuid4()))
        h.end_headers()
        h.wfile.write(data)

    def _cp_error(self, h: Handler, entry: dict, error_type: str, message: str, status: int = 400) -> None:
        entry.update(status=status, outcome="refused", error_type=error_type, reason=message)
        h._send_json(status, {"__type": error_type, "Message": message}, {"x-amzn-ErrorType": f"{error_type}:"})

    def _validate(self, op: str, params: dict) -> list[str]:
        model = self._validation().operation_model(op)
        shape = model.input_shape
        errors = []
        for name in shape.required_members:
            if params.get(name) is None:
                errors.append(f"Value null at '{name[0].lower() + name[1:]}' failed to satisfy constraint: "
                              f"Member must not be null")
        for name, value in params.items():
            member = shape.members.get(name)
            if member is None or value is None:
                continue
            label = name[0].lower() + name[1:]
            meta = member.metadata
            if member.type_name in ("integer", "long"):
                if not isinstance(value, int) or isinstance(value, bool):
                    errors.append(f"Value '{value}' at '{label}' failed to satisfy constraint: Member must be an integer")
                    continue
                if "min" in meta and value < meta["min"]:
                    errors.append(f"Value '{value}' at '{label}' failed to satisfy constraint: Member must have "
                                  f"value greater than or equal to {meta['min']}")
                if "max" in meta and value > meta["max"]:
                    errors.append(f"Value '{value}' at '{label}' failed to satisfy constraint: Member must have "
                                  f"value less than or equal to {meta['max']}")
            elif member.type_name == "string":
                if not isinstance(value, str):
                    errors.append(f"Value '{value}' at '{label}' failed to satisfy constraint: Member must be a string")
                    continue
                if "min" in meta and len(value) < meta["min"]:
                    errors.append(f"Value '{value}' at '{label}' failed to satisfy constraint: Member must have "
                                  f"length greater than or equal to {meta['min']}")
                if "max" in meta and len(value) > meta["max"]:
                    errors.append(f"Value '{value}' at '{label}' failed to satisfy constraint: Member must have "
                                  f"length less than or equal to {meta['max']}")
                if "pattern" in meta and not re.fullmatch(meta["pattern"], value):
                    errors.append(f"Value '{value}' at '{label}' failed to satisfy constraint: Member must satisfy "
                                  f"regular expression pattern: {meta['pattern']}")
        return errors

    def _presign(self, arn: str, params: dict) -> dict:
        expires = params.get("ExpiresInSeconds") or 300
        session = params.get("SessionExpirationDurationInSeconds") or 43200
        token = self.tokens.issue_token(arn, expires, session)
        return {"AuthorizedUrl": f"{self.data_url}/auth?authToken={token}"}

    def _op_presign_ts(self, params: dict):
        if params["TrackingServerName"] != self.tracking_server_name:
            return Refusal(400, "ResourceNotFound", f"Cannot find tracking server {params['TrackingServerName']}", "")
        return self._presign(self.ts_arn, params)

    def _op_presign_app(self, params: dict):
        if params["Arn"] != self.app_arn:
            return Refusal(400, "ResourceNotFound", f"Cannot find MLflow app {params['Arn']}", "")
        return self._presign(self.app_arn, params)

    def _op_describe_ts(self, params: dict):
        if params["TrackingServerName"] != self.tracking_server_name:
            return Refusal(400, "ResourceNotFound", f"Cannot find tracking server {params['TrackingServerName']}", "")
        return {
            "TrackingServerArn": self.ts_arn,
            "TrackingServerName": self.tracking_server_name,
            "ArtifactStoreUri": self.sts.artifact_root,
            "TrackingServerSize": "Small",
            "MlflowVersion": self.mlflow_version,
            "RoleArn": self.sts.role_arn,
            "TrackingServerStatus": "Created",
            "IsActive": "Active",
            "TrackingServerUrl": self.data_url,
            "WeeklyMaintenanceWindowStart": "Sun:02:00",
            "AutomaticModelRegistration": False,
            "CreationTime": self.created,
            "LastModifiedTime": self.created,
        }

    def _op_describe_app(self, params: dict):
        if params["Arn"] != self.app_arn:
            return Refusal(400, "ResourceNotFound", f"Cannot find MLflow app {params['Arn']}", "")
        return {
            "Arn": self.app_arn,
            "Name": self.app_id,
            "ArtifactStoreUri": self.sts.artifact_root,
            "MlflowVersion": self.mlflow_version,
            "RoleArn": self.sts.role_arn,
            "Status": "Created",
            "ModelRegistrationMode": "AutoModelRegistrationDisabled",
            "CreationTime": self.created,
            "LastModifiedTime": self.created,
            "WeeklyMaintenanceWindowStart": "Sun:02:00",
        }

    # ---------------------------------------------------------------- admin
    def admin(self, h: Handler, path: str, body: _Body) -> None:
        name = path[len("/__emulator/"):].strip("/")
        q = parse_qs(urlsplit(h.path).query)
        payload: Any = None
        if body.size:
            try:
                payload = json.loads(body.read_all())
            except ValueError:
                return h._send_json(400, {"error": "body must be JSON"})
        m = h.command
        if name == "health":
            return h._send_json(200, {"ok": True})
        if name == "state":
            return h._send_json(200, self.describe_cb())
        if name == "log" and m == "GET":
            since = int((q.get("since") or ["0"])[0])
            entries = self.log.since(since)
            outcome = (q.get("outcome") or [None])[0]
            if outcome:
                entries = [e for e in entries if e.get("outcome") == outcome]
            return h._send_json(200, {"last_seq": self.log.seq, "entries": entries})
        if name == "log" and m == "DELETE":
            self.log.clear()
            return h._send_json(200, {"ok": True})
        if name == "config":
            if m == "POST" and isinstance(payload, dict):
                known = set(EmulatorConfig.__dataclass_fields__)
                unknown = set(payload) - known
                if unknown:
                    return h._send_json(400, {"error": f"unknown config keys {sorted(unknown)}"})
                for k, v in payload.items():
                    setattr(self.config, k, v)
            return h._send_json(200, asdict(self.config))
        if name == "faults":
            if m == "POST" and isinstance(payload, dict):
                try:
                    f = Fault(**payload)
                except TypeError as e:
                    return h._send_json(400, {"error": str(e)})
                with self.faults_lock:
                    self.faults.append(f)
            elif m == "DELETE":
                with self.faults_lock:
                    self.faults.clear()
            with self.faults_lock:
                return h._send_json(200, {"faults": [asdict(f) for f in self.faults]})
        if name == "sts-sessions":
            out = []
            for r in self.sts.assumed_roles():
                out.append({"role_arn": r.role_arn, "session_name": r.session_name, "arn": r.arn,
                            "access_key_id": r.access_key_id, "external_id": r.external_id,
                            "issued_at": r.access_key.create_date.isoformat() + "Z",
                            "expiration": r.expiration.isoformat() + "Z"})
            return h._send_json(200, {"sessions": out})
        if name == "ui-sessions":
            with self.tokens.lock:
                return h._send_json(200, {"sessions": [dict(v, id=k[:6] + "...") for k, v in self.tokens.sessions.items()],
                                          "tokens_issued": len(self.tokens.tokens)})
        if name == "reset" and m == "POST":
            for k, v in asdict(self.initial_config).items():
                setattr(self.config, k, v)
            with self.faults_lock:
                self.faults.clear()
            self.log.clear()
            return h._send_json(200, {"ok": True})
        return h._send_json(404, {"error": f"unknown admin endpoint {name!r}"})

    describe_cb: Callable[[], dict] = staticmethod(lambda: {})  # type: ignore[assignment]
