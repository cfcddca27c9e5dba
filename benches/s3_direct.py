#!/usr/bin/env python3
"""The direct side of the artifact gateway's bench: one transfer with boto3 straight to the S3 endpoint, the way
MLflow's own S3 artifact repository does it for a client with S3 credentials (`upload_file` /
`download_file`-style transfers with boto3's default TransferConfig: 8 MiB parts, 10 threads).

Usage: s3_direct.py ENDPOINT BUCKET KEY upload SOURCE_FILE
       s3_direct.py ENDPOINT BUCKET KEY download SIZE
Prints one JSON line: {"seconds": ..., "bytes": ...}. The download's bytes are counted and dropped (as the
gateway side's curl drops them into /dev/null), so neither side pays for writing them to disk. Needs boto3
(the project's venv: `make venv`).
"""

from __future__ import annotations

import json
import sys
import time


class Sink:
    """A seekable file that keeps nothing: s3transfer writes each ranged part at its offset."""

    def __init__(self) -> None:
        self.pos = 0
        self.written = 0

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = 0) -> int:
        self.pos = offset if whence == 0 else self.pos + offset
        return self.pos

    def tell(self) -> int:
        return self.pos

    def write(self, data) -> int:
        n = len(data)
        self.pos += n
        self.written += n
        return n


def main() -> int:
    import boto3
    from botocore.config import Config

    endpoint, bucket, key, op, arg = sys.argv[1:6]
    s3 = boto3.client(
        "s3", endpoint_url=endpoint, region_name="us-west-2", aws_access_key_id="AKIDBENCH",
        aws_secret_access_key="benchsecret", config=Config(s3={"addressing_style": "path"}),
    )  # fmt: skip
    t0 = time.perf_counter()
    if op == "upload":
        s3.upload_file(arg, bucket, key)
        seconds = time.perf_counter() - t0
        size = s3.head_object(Bucket=bucket, Key=key)["ContentLength"]
    else:
        sink = Sink()
        s3.download_fileobj(bucket, key, sink)
        seconds = time.perf_counter() - t0
        size = sink.written
        if size != int(arg):
            raise SystemExit(f"downloaded {size} bytes, not {arg}")
    print(json.dumps({"seconds": seconds, "bytes": size}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
