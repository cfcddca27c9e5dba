"""A 200 MB artifact through the proxy's artifact gateway: streamed up to S3 in parts (multipart upload) and
streamed down, with the proxy's memory bounded."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

import pytest
import requests

SIZE = int(os.environ.get("E2E_LARGE_ARTIFACT_MB", "200")) * 1024 * 1024


def _peak_rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


@pytest.mark.slow
@pytest.mark.parametrize("target", ["tracking_server"], indirect=True)
def test_large_artifact_roundtrip(client, target, emulator, tmp_path, uniq):
    src = tmp_path / "big model weights.bin"
    sha = hashlib.sha256()
    block = os.urandom(1024 * 1024)
    with open(src, "wb") as f:
        for i in range(SIZE // len(block)):
            # cheap but not constant: each MiB differs
            chunk = i.to_bytes(8, "little") + block[8:]
            f.write(chunk)
            sha.update(chunk)
    want = sha.hexdigest()

    eid = client.create_experiment(f"large artifact {uniq}")
    rid = client.create_run(eid).info.run_id
    t0 = time.monotonic()
    client.log_artifact(rid, str(src), artifact_path="weights dir")
    up = time.monotonic() - t0

    # in the bucket, under the run's s3:// artifact root, whole
    uri = requests.get(f"{emulator.info['mlflow_url']}/api/2.0/mlflow/runs/get", params={"run_id": rid},
                       timeout=30).json()["run"]["info"]["artifact_uri"]
    bucket, _, prefix = uri[len("s3://"):].partition("/")
    head = emulator.s3_admin().head_object(Bucket=bucket, Key=f"{prefix}/weights dir/big model weights.bin")
    assert head["ContentLength"] == SIZE
    assert "-" in head["ETag"], f"expected a multipart upload, ETag {head['ETag']}"

    listed = {f.path: f.file_size for f in client.list_artifacts(rid, "weights dir")}
    assert listed == {"weights dir/big model weights.bin": SIZE}

    t0 = time.monotonic()
    out = Path(client.download_artifacts(rid, "weights dir/big model weights.bin", str(tmp_path / "dl")))
    down = time.monotonic() - t0
    got = hashlib.sha256()
    with open(out, "rb") as f:
        for data in iter(lambda: f.read(1 << 20), b""):
            got.update(data)
    assert out.stat().st_size == SIZE
    assert got.hexdigest() == want
    peak = _peak_rss_mb(target.proxy.proc.pid) if target.proxy else None
    print(f"\n[e2e] {SIZE >> 20} MiB upload {up:.1f}s, download {down:.1f}s, proxy peak RSS {peak} MiB")
    if peak is not None:
        # the gateway holds one part (8 MiB) per upload and streams downloads: never the artifact
        assert peak < 64, f"proxy peak RSS {peak:.0f} MiB for a {SIZE >> 20} MiB artifact"
