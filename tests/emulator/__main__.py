"""``python -m tests.emulator``: run the SageMaker MLflow stand-in until SIGINT/SIGTERM."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time

from . import DEFAULT_ACCOUNT, DEFAULT_APP_ID, DEFAULT_REGION, DEFAULT_TRACKING_SERVER, EmulatorConfig, start


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tests.emulator", description=__doc__)
    p.add_argument("--state-file", help="write the JSON description here (atomically) once ready")
    p.add_argument("--region", default=DEFAULT_REGION)
    p.add_argument("--account-id", default=DEFAULT_ACCOUNT)
    p.add_argument("--tracking-server-name", default=DEFAULT_TRACKING_SERVER)
    p.add_argument("--app-id", default=DEFAULT_APP_ID)
    p.add_argument("--data-port", type=int, default=0, help="data plane port (0 = free port)")
    p.add_argument("--control-port", type=int, default=0, help="control plane port (0 = free port)")
    p.add_argument("--workdir", help="keep MLflow's sqlite db and artifacts here (default: temp dir, removed)")
    p.add_argument("--mlflow-workers", type=int, default=1)
    p.add_argument("--mlflow-server", choices=["uvicorn", "gunicorn"], default="uvicorn",
                   help="uvicorn is mlflow's default; gunicorn uploads ~10x faster but lacks FastAPI-only routes")
    p.add_argument("--temp-credentials-ttl", type=float, default=None,
                   help="reject STS credentials this many seconds after issue (ExpiredTokenException)")
    p.add_argument("--session-ttl", type=float, default=None, help="override UI session lifetime (seconds)")
    p.add_argument("--unauthenticated-ui-response", choices=["401", "redirect"], default="401")
    args = p.parse_args(argv)

    cfg = EmulatorConfig(temp_credentials_ttl=args.temp_credentials_ttl, session_ttl=args.session_ttl,
                         unauthenticated_ui_response=args.unauthenticated_ui_response)
    stop_event = threading.Event()

    def on_signal(signum, frame):  # noqa: ARG001
        stop_event.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    t0 = time.monotonic()
    emu = start(region=args.region, account_id=args.account_id, tracking_server_name=args.tracking_server_name,
                app_id=args.app_id, workdir=args.workdir, data_port=args.data_port, control_port=args.control_port,
                mlflow_workers=args.mlflow_workers, mlflow_server=args.mlflow_server, config=cfg, state_file=args.state_file)
    try:
        print(json.dumps(emu.info, indent=2), flush=True)
        print(f"emulator ready in {time.monotonic() - t0:.1f}s; Ctrl-C to stop", file=sys.stderr, flush=True)
        while not stop_event.wait(0.5):
            if emu.mlflow.proc is not None and emu.mlflow.proc.poll() is not None:
                print("mlflow server died; stopping", file=sys.stderr)
                return 1
    finally:
        emu.stop()
        print("emulator stopped", file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
