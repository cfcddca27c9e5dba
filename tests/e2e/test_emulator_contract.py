"""The stand-in itself: it accepts what AWS's signer produces and refuses what SageMaker would refuse.

These tests need no proxy binary. They pin down the emulator's behaviour so that a refusal seen while testing
the proxy means a proxy bug, not an emulator bug.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import time

import boto3
import pytest
import requests
from botocore.config import Config

from .signing import APP_HEADER, TS_HEADER, send_signed

pytestmark = pytest.mark.expect_refusals

SEARCH = "/api/2.0/mlflow/experiments/search"


@pytest.fixture
def creds(emulator):
    i = emulator.info
    return {"access_key": i["base_access_key_id"], "secret_key": i["base_secret_access_key"], "region": i["region"]}


def ts_call(emulator, creds, method="GET", path=SEARCH + "?max_results=5", **kw):
    i = emulator.info
    kw.setdefault("service", "sagemaker-mlflow")
    kw.setdefault("routing", (TS_HEADER, i["tracking_server_arn"]))
    return send_signed(method, i["data_plane_url"] + path, **{**creds, **kw})


def app_call(emulator, creds, method="GET", path=SEARCH + "?max_results=5", **kw):
    i = emulator.info
    kw.setdefault("service", "sagemaker")
    kw.setdefault("routing", (APP_HEADER, i["app_arn"]))
    return send_signed(method, i["data_plane_url"] + path, **{**creds, **kw})


def refusal(resp, status=403):
    assert resp.status_code == status, f"expected {status}, got {resp.status_code}: {resp.text[:400]}"
    body = resp.json()
    assert resp.headers.get("x-amzn-ErrorType", "").startswith(body["__type"])
    return body


def test_valid_requests_both_arns(emulator, creds):
    r = ts_call(emulator, creds)
    assert r.status_code == 200, r.text
    assert "experiments" in r.json()
    r = app_call(emulator, creds)
    assert r.status_code == 200, r.text
    # the newest five: whatever earlier tests created, the list is never empty (Default always exists)
    assert r.json()["experiments"], r.text


def test_post_with_body_and_chunked_body(emulator, creds, uniq):
    body = json.dumps({"name": f"contract {uniq}"}).encode()
    r = ts_call(emulator, creds, "POST", "/api/2.0/mlflow/experiments/create", body=body,
                headers={"Content-Type": "application/json"})
    assert r.status_code == 200, r.text
    eid = r.json()["experiment_id"]
    # the same kind of request, body sent with Transfer-Encoding: chunked (content-length not signed)
    body2 = json.dumps({"name": f"contract chunked {uniq}"}).encode()
    r = app_call(emulator, creds, "POST", "/api/2.0/mlflow/experiments/create", body=body2,
                 headers={"Content-Type": "application/json"}, stream_body=iter([body2[:5], body2[5:]]))
    assert r.status_code == 200, r.text
    log = [e for e in emulator.log_since(0) if e.get("body_transfer") == "chunked" and e["outcome"] == "forwarded"]
    assert log, "chunked request not seen as chunked"
    r = app_call(emulator, creds, "GET", f"/api/2.0/mlflow/experiments/get?experiment_id={eid}")
    assert r.json()["experiment"]["name"] == f"contract {uniq}"


def test_tampered_signature(emulator, creds):
    def flip(h):
        a = h["Authorization"]
        h["Authorization"] = a[:-1] + ("0" if a[-1] != "0" else "1")

    body = refusal(ts_call(emulator, creds, mutate=flip))
    assert body["__type"] == "InvalidSignatureException"
    assert "signature we calculated does not match" in body["message"]
    assert "emulatorCanonicalRequest" in body


def test_wrong_secret(emulator, creds):
    body = refusal(ts_call(emulator, {**creds, "secret_key": creds["secret_key"] + "x"}))
    assert body["__type"] == "InvalidSignatureException"


def test_unknown_access_key(emulator, creds):
    body = refusal(ts_call(emulator, {**creds, "access_key": "AKIAUNKNOWNKEY000000"}))
    assert body["__type"] == "UnrecognizedClientException"


def test_wrong_service_for_each_arn(emulator, creds):
    body = refusal(ts_call(emulator, creds, service="sagemaker"))
    assert body["__type"] == "InvalidSignatureException" and "sagemaker-mlflow" in body["message"]
    body = refusal(app_call(emulator, creds, service="sagemaker-mlflow"))
    assert "'sagemaker'" in body["message"]


def test_wrong_region(emulator, creds):
    body = refusal(ts_call(emulator, {**creds, "region": "eu-west-1"}))
    assert "region" in body["message"]


@pytest.mark.parametrize("header", ["Connection", "Keep-Alive", "TE", "Upgrade", "Proxy-Authorization"])
def test_hop_by_hop_header_signed(emulator, creds, header):
    value = {"Connection": "keep-alive", "Keep-Alive": "timeout=5", "TE": "trailers", "Upgrade": "h2c",
             "Proxy-Authorization": "Basic eA=="}[header]
    body = refusal(ts_call(emulator, creds, headers={header: value}, exact_headers=True))
    assert body["__type"] == "InvalidSignatureException"
    assert header.lower() in body["emulatorReason"]


def test_routing_header_checks(emulator, creds):
    i = emulator.info
    # missing
    body = refusal(ts_call(emulator, creds, routing=None))
    assert "routing" in body["emulatorReason"] or "neither" in body["emulatorReason"]
    # another server's ARN
    other = i["tracking_server_arn"].replace("demo-server", "other-server")
    refusal(ts_call(emulator, creds, routing=(TS_HEADER, other)))
    # app ARN in the tracking-server header
    refusal(ts_call(emulator, creds, routing=(TS_HEADER, i["app_arn"])))
    # present but not signed
    body = refusal(ts_call(emulator, creds, routing=None,
                           mutate=lambda h: h.__setitem__(TS_HEADER, i["tracking_server_arn"])))
    assert "must be signed" in body["emulatorReason"]


def test_content_sha256_checks(emulator, creds):
    payload = json.dumps({"max_results": 3}).encode()
    headers = {"Content-Type": "application/json"}
    # missing
    body = refusal(ts_call(emulator, creds, "POST", SEARCH, body=payload, headers=headers, content_sha=None))
    assert "x-amz-content-sha256" in body["emulatorReason"]
    # hash of other bytes
    body = refusal(ts_call(emulator, creds, "POST", SEARCH, body=payload, headers=headers,
                           content_sha=hashlib.sha256(b"other").hexdigest()))
    assert "does not match" in body["message"]
    # UNSIGNED-PAYLOAD is refused by default
    refusal(ts_call(emulator, creds, "POST", SEARCH, body=payload, headers=headers, content_sha="UNSIGNED-PAYLOAD"))
    # the correct hash passes
    r = ts_call(emulator, creds, "POST", SEARCH, body=payload, headers=headers)
    assert r.status_code == 200 and len(r.json()["experiments"]) <= 3


def test_stale_date(emulator, creds):
    old = (dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=20)).strftime("%Y%m%dT%H%M%SZ")
    import botocore.auth

    real = botocore.auth.get_current_datetime
    botocore.auth.get_current_datetime = lambda: dt.datetime.strptime(old, "%Y%m%dT%H%M%SZ")
    try:
        body = refusal(ts_call(emulator, creds))
    finally:
        botocore.auth.get_current_datetime = real
    assert body["message"].startswith("Signature expired")


def test_plus_in_query_must_be_signed_as_percent20(emulator, creds, uniq):
    """MLflow encodes spaces as '+'; SageMaker canonicalizes them as %20 (PROTOCOL.md section 2)."""
    name = f"plus check {uniq}"
    create = json.dumps({"name": name}).encode()
    r = ts_call(emulator, creds, "POST", "/api/2.0/mlflow/experiments/create", body=create,
                headers={"Content-Type": "application/json"})
    assert r.status_code == 200, r.text
    q = "/api/2.0/mlflow/experiments/get-by-name?experiment_name=" + name.replace(" ", "+")
    # signing the raw '+' (what botocore does with a URL as given) fails ...
    body = refusal(ts_call(emulator, creds, "GET", q))
    assert body["__type"] == "InvalidSignatureException"
    # ... signing the %20 form passes, whether the %20 or the + form is then sent
    url20 = emulator.info["data_plane_url"] + q.replace("+", "%20")
    r = ts_call(emulator, creds, "GET", q.replace("+", "%20"))
    assert r.status_code == 200 and r.json()["experiment"]["name"] == name
    r = ts_call(emulator, creds, "GET", q, sign_url=url20)
    assert r.status_code == 200 and r.json()["experiment"]["name"] == name


def test_encoded_path_double_encoding(emulator, creds, uniq):
    """A path with %20 is canonicalized as %2520 (the non-S3 rule): botocore's signer agrees with the emulator."""
    exp = ts_call(emulator, creds, "POST", "/api/2.0/mlflow/experiments/create",
                  body=json.dumps({"name": f"path enc {uniq}"}).encode(), headers={"Content-Type": "application/json"})
    eid = exp.json()["experiment_id"]
    run = ts_call(emulator, creds, "POST", "/api/2.0/mlflow/runs/create",
                  body=json.dumps({"experiment_id": eid}).encode(), headers={"Content-Type": "application/json"})
    run_id = run.json()["run"]["info"]["run_id"]
    path = f"/api/2.0/mlflow-artifacts/artifacts/{eid}/{run_id}/artifacts/my%20file%2Bplus.txt"
    seq = emulator.last_seq
    r = ts_call(emulator, creds, "PUT", path, body=b"hello artifact")
    # MLflow runs with --no-serve-artifacts (SageMaker's topology) and answers the artifact route with an error
    # of its own; what matters here is that the signature was accepted and the request forwarded as is.
    assert "x-emulator-refusal-reason" not in r.headers, r.text
    entry = [e for e in emulator.log_since(seq) if e["method"] == "PUT"][-1]
    assert entry["outcome"] == "forwarded" and entry["target"] == path, entry


def test_temporary_credentials(emulator, creds, fresh_emulator_config):
    i = emulator.info
    sts = boto3.client("sts", endpoint_url=i["sts_url"], region_name=i["region"],
                       aws_access_key_id=creds["access_key"], aws_secret_access_key=creds["secret_key"])
    c = sts.assume_role(RoleArn=i["role_arn"], RoleSessionName="contract-test")["Credentials"]
    tmp = {"access_key": c["AccessKeyId"], "secret_key": c["SecretAccessKey"], "region": creds["region"]}
    r = ts_call(emulator, tmp, token=c["SessionToken"])
    assert r.status_code == 200, r.text
    entry = [e for e in emulator.log_since(0) if e.get("access_key_id") == c["AccessKeyId"]][-1]
    assert entry["principal_kind"] == "assumed" and entry["session_name"] == "contract-test"
    # token missing / wrong
    assert refusal(ts_call(emulator, tmp))["__type"] == "UnrecognizedClientException"
    assert refusal(ts_call(emulator, tmp, token=c["SessionToken"][:-2] + "zz"))["__type"] == \
        "UnrecognizedClientException"
    # expiry knob
    emulator.set_config(temp_credentials_ttl=1)
    emulator.age(1.2)  # the credentials are now 1.2 s old for the stand-in, without waiting
    body = refusal(ts_call(emulator, tmp, token=c["SessionToken"]))
    assert body["__type"] == "ExpiredTokenException"
    assert body["message"] == "The security token included in the request is expired"
    # a freshly assumed session works again
    c2 = sts.assume_role(RoleArn=i["role_arn"], RoleSessionName="contract-test-2")["Credentials"]
    r = ts_call(emulator, {**tmp, "access_key": c2["AccessKeyId"], "secret_key": c2["SecretAccessKey"]},
                token=c2["SessionToken"])
    assert r.status_code == 200
    # the user cannot assume the external-id role without the external id
    with pytest.raises(Exception) as e:
        sts.assume_role(RoleArn=i["role_external_id_arn"], RoleSessionName="no-ext-id")
    assert "AccessDenied" in str(e.value), str(e.value)
    with pytest.raises(Exception) as e:
        sts.assume_role(RoleArn=i["role_external_id_arn"], RoleSessionName="bad-ext-id", ExternalId="wrong")
    assert "AccessDenied" in str(e.value), str(e.value)
    ok = sts.assume_role(RoleArn=i["role_external_id_arn"], RoleSessionName="with-ext-id",
                         ExternalId=i["role_external_id"])
    assert ok["Credentials"]["AccessKeyId"].startswith("ASIA")


def test_sts_checks_signatures(emulator):
    i = emulator.info
    bad = boto3.client("sts", endpoint_url=i["sts_url"], region_name=i["region"],
                       aws_access_key_id=i["base_access_key_id"], aws_secret_access_key="wrong")
    with pytest.raises(Exception) as e:
        bad.get_caller_identity()
    assert "Signature" in str(e.value) or "signature" in str(e.value)
    good = boto3.client("sts", endpoint_url=i["sts_url"], region_name=i["region"],
                        aws_access_key_id=i["base_access_key_id"], aws_secret_access_key=i["base_secret_access_key"])
    assert good.get_caller_identity()["Arn"] == i["user_arn"]


# ------------------------------------------------------------------ control plane and UI sessions


def sagemaker_client(emulator, validate=True):
    i = emulator.info
    return boto3.client("sagemaker", endpoint_url=i["control_plane_url"], region_name=i["region"],
                        aws_access_key_id=i["base_access_key_id"], aws_secret_access_key=i["base_secret_access_key"],
                        config=Config(parameter_validation=validate, retries={"max_attempts": 1}))


def test_control_plane_describe(emulator):
    sm = sagemaker_client(emulator)
    i = emulator.info
    d = sm.describe_mlflow_tracking_server(TrackingServerName=i["tracking_server_name"])
    assert d["TrackingServerArn"] == i["tracking_server_arn"] and d["TrackingServerStatus"] == "Created"
    assert d["MlflowVersion"] == i["mlflow_version"]
    a = sm.describe_mlflow_app(Arn=i["app_arn"])
    assert a["Arn"] == i["app_arn"] and a["Status"] == "Created"
    # both ARNs share the one MLflow server, hence one artifact store
    assert d["ArtifactStoreUri"] == a["ArtifactStoreUri"] == i["artifact_root"]
    assert i["artifact_root"].startswith(f"s3://{i['artifact_bucket']}/")
    with pytest.raises(sm.exceptions.ResourceNotFound):
        sm.describe_mlflow_tracking_server(TrackingServerName="nope")


def test_control_plane_validation(emulator):
    sm = sagemaker_client(emulator, validate=False)
    i = emulator.info
    for kwargs, field in (({"ExpiresInSeconds": 301}, "expiresInSeconds"), ({"ExpiresInSeconds": 4}, "expiresInSeconds"),
                          ({"SessionExpirationDurationInSeconds": 1799}, "sessionExpirationDurationInSeconds"),
                          ({"SessionExpirationDurationInSeconds": 43201}, "sessionExpirationDurationInSeconds")):
        with pytest.raises(Exception) as e:
            sm.create_presigned_mlflow_tracking_server_url(TrackingServerName=i["tracking_server_name"], **kwargs)
        assert "ValidationException" in str(e.value) and field in str(e.value), str(e.value)
    with pytest.raises(Exception) as e:
        sm.create_presigned_mlflow_app_url(Arn=i["tracking_server_arn"])
    assert "ValidationException" in str(e.value)
    with pytest.raises(Exception) as e:
        sm.create_presigned_mlflow_app_url(Arn=i["app_arn"].replace("DEMO", "NOPE"))
    assert "ResourceNotFound" in str(e.value)
    # signature checked too
    bad = boto3.client("sagemaker", endpoint_url=i["control_plane_url"], region_name=i["region"],
                       aws_access_key_id=i["base_access_key_id"], aws_secret_access_key="wrong",
                       config=Config(retries={"max_attempts": 1}))
    with pytest.raises(Exception) as e:
        bad.describe_mlflow_app(Arn=i["app_arn"])
    assert "InvalidSignatureException" in str(e.value)


@pytest.mark.parametrize("kind", ["tracking_server", "app"])
def test_presigned_url_session_flow(emulator, fresh_emulator_config, kind):
    sm = sagemaker_client(emulator)
    i = emulator.info
    if kind == "tracking_server":
        url = sm.create_presigned_mlflow_tracking_server_url(TrackingServerName=i["tracking_server_name"],
                                                             ExpiresInSeconds=60,
                                                             SessionExpirationDurationInSeconds=1800)["AuthorizedUrl"]
    else:
        url = sm.create_presigned_mlflow_app_url(Arn=i["app_arn"], ExpiresInSeconds=60)["AuthorizedUrl"]
    assert url.startswith(i["data_plane_url"] + "/auth?authToken=")
    s = requests.Session()
    r = s.get(url, allow_redirects=False)
    assert r.status_code == 302 and r.headers["Location"] == "/"
    assert "HttpOnly" in r.headers["Set-Cookie"]
    # UI page with the session cookie, no signature; carries X-Frame-Options like MLflow
    r = s.get(i["data_plane_url"] + "/")
    assert r.status_code == 200 and "<html" in r.text.lower()
    assert r.headers["X-Frame-Options"] == "SAMEORIGIN"
    r = s.get(i["data_plane_url"] + "/ajax-api/2.0/mlflow/experiments/search?max_results=1")
    assert r.status_code == 200 and "experiments" in r.json()
    # single use
    assert requests.get(url, allow_redirects=False).status_code == 403
    # no cookie, no signature
    r = requests.get(i["data_plane_url"] + "/ajax-api/2.0/mlflow/experiments/search?max_results=1")
    assert r.status_code == 403 and r.json()["__type"] == "MissingAuthenticationTokenException"
    # session expiry (knob), both response styles
    emulator.set_config(session_ttl=0.5)
    emulator.age(0.7)
    r = s.get(i["data_plane_url"] + "/ajax-api/2.0/mlflow/experiments/search?max_results=1")
    assert r.status_code == 401
    emulator.set_config(unauthenticated_ui_response="redirect")
    r = s.get(i["data_plane_url"] + "/", allow_redirects=False)
    assert r.status_code == 302 and r.headers["Location"].endswith("/login")


def test_presigned_url_expires(emulator, fresh_emulator_config):
    sm = sagemaker_client(emulator, validate=False)
    i = emulator.info
    url = sm.create_presigned_mlflow_app_url(Arn=i["app_arn"], ExpiresInSeconds=5)["AuthorizedUrl"]
    token = url.split("authToken=")[1]
    # age the token instead of sleeping 5s
    emulator.emu.tokens.tokens[token]["expires_at"] = time.time() - 1
    r = requests.get(url, allow_redirects=False)
    assert r.status_code == 403 and "expired" in r.json()["emulatorReason"]


def test_fault_injection(emulator, creds, fresh_emulator_config):
    emulator.add_fault(status=503, count=1, path_contains="/experiments/search")
    assert ts_call(emulator, creds).status_code == 503
    assert ts_call(emulator, creds).status_code == 200
    emulator.add_fault(delay_seconds=1.0, count=1)
    t0 = time.monotonic()
    assert ts_call(emulator, creds).status_code == 200
    assert time.monotonic() - t0 >= 1.0


# ------------------------------------------------------------------ S3 (moto server mode, IAM authentication on)


def s3_client(emulator, access_key=None, secret_key=None, token=None):
    i = emulator.info
    return boto3.client("s3", endpoint_url=i["s3_url"], region_name=i["region"],
                        aws_access_key_id=access_key or i["base_access_key_id"],
                        aws_secret_access_key=secret_key or i["base_secret_access_key"], aws_session_token=token,
                        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}))


def s3_error(call) -> tuple[int, str]:
    from botocore.exceptions import ClientError

    with pytest.raises(ClientError) as e:
        call()
    return e.value.response["ResponseMetadata"]["HTTPStatusCode"], e.value.response["Error"]["Code"]


def test_s3_store_is_scoped_and_signed(emulator, uniq):
    """The proxy's identity may use keys under the store root, nothing else; every request is authenticated."""
    i = emulator.info
    bucket, prefix = i["artifact_bucket"], i["artifact_root"].split("/", 3)[3]
    ok = s3_client(emulator)
    key = f"{prefix}/contract/{uniq}/a b+c.txt"
    ok.put_object(Bucket=bucket, Key=key, Body=b"in the store")
    assert ok.get_object(Bucket=bucket, Key=key)["Body"].read() == b"in the store"
    assert [o["Key"] for o in ok.list_objects_v2(Bucket=bucket, Prefix=f"{prefix}/contract/{uniq}/")["Contents"]] \
        == [key]
    # outside the prefix, another bucket: AccessDenied as on AWS
    assert s3_error(lambda: ok.put_object(Bucket=bucket, Key=f"elsewhere/{uniq}.txt", Body=b"x")) == \
        (403, "AccessDenied")
    assert s3_error(lambda: ok.get_object(Bucket=i["other_bucket"], Key="secret.txt")) == (403, "AccessDenied")
    assert s3_error(lambda: ok.list_objects_v2(Bucket=i["other_bucket"])) == (403, "AccessDenied")
    # a wrong secret, an unknown key: the signature is checked
    assert s3_error(lambda: s3_client(emulator, secret_key="wrong").get_object(Bucket=bucket, Key=key)) == \
        (403, "SignatureDoesNotMatch")
    assert s3_error(lambda: s3_client(emulator, access_key="AKIAEXAMPLEUNKNOWN01", secret_key="x")
                    .get_object(Bucket=bucket, Key=key)) == (403, "InvalidAccessKeyId")
    # no signature at all
    r = requests.get(f"{i['s3_url']}/{bucket}/{key}", timeout=10)
    assert r.status_code == 403 and b"in the store" not in r.content
    # the MLflow server's own identity is scoped the same way
    mlflow_identity = s3_client(emulator, i["mlflow_access_key_id"], emulator.sts.mlflow_secret_access_key)
    assert mlflow_identity.get_object(Bucket=bucket, Key=key)["Body"].read() == b"in the store"
    assert s3_error(lambda: mlflow_identity.get_object(Bucket=i["other_bucket"], Key="secret.txt")) == \
        (403, "AccessDenied")
    # an assumed role's temporary credentials carry the role's S3 policy
    sts = boto3.client("sts", endpoint_url=i["sts_url"], region_name=i["region"],
                       aws_access_key_id=i["base_access_key_id"], aws_secret_access_key=i["base_secret_access_key"])
    c = sts.assume_role(RoleArn=i["role_arn"], RoleSessionName="s3-contract")["Credentials"]
    tmp = s3_client(emulator, c["AccessKeyId"], c["SecretAccessKey"], c["SessionToken"])
    assert tmp.get_object(Bucket=bucket, Key=key)["Body"].read() == b"in the store"
    assert s3_error(lambda: tmp.get_object(Bucket=i["other_bucket"], Key="secret.txt")) == (403, "AccessDenied")
    emulator.s3_admin().delete_object(Bucket=bucket, Key=key)


def test_mlflow_server_uses_the_s3_store(emulator, uniq):
    """MLflow hands out s3:// artifact URIs under the store root and reads the store with its own credentials."""
    i = emulator.info
    mlflow = i["mlflow_url"]
    eid = requests.post(f"{mlflow}/api/2.0/mlflow/experiments/create", json={"name": f"s3 store {uniq}"},
                        timeout=30).json()["experiment_id"]
    exp = requests.get(f"{mlflow}/api/2.0/mlflow/experiments/get", params={"experiment_id": eid}, timeout=30).json()
    assert exp["experiment"]["artifact_location"] == f"{i['artifact_root']}/{eid}"
    run = requests.post(f"{mlflow}/api/2.0/mlflow/runs/create", json={"experiment_id": eid}, timeout=30).json()
    info = run["run"]["info"]
    assert info["artifact_uri"] == f"{i['artifact_root']}/{eid}/{info['run_id']}/artifacts"
    key = info["artifact_uri"].split("/", 3)[3] + "/notes.txt"
    emulator.s3_admin().put_object(Bucket=i["artifact_bucket"], Key=key, Body=b"read by mlflow")
    # the UI's download route: the server reads S3 itself
    r = requests.get(f"{mlflow}/get-artifact", params={"path": "notes.txt", "run_uuid": info["run_id"]}, timeout=30)
    assert r.status_code == 200 and r.content == b"read by mlflow", r.text[:300]
    # and it does not serve the artifact API (clients must reach S3 themselves, or through the gateway)
    r = requests.get(f"{mlflow}/api/2.0/mlflow-artifacts/artifacts/{eid}/{info['run_id']}/artifacts/notes.txt",
                     timeout=30)
    assert r.status_code != 200
