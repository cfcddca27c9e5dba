"""Every HTTP route of each MLflow server version in the matrix, as MLflow itself registers them.

Each version is installed with uv into its own cached virtualenv (`.cache/mlflow-routes/<version>/`,
gitignored) and asked, in a child process of that venv, for its routes: the Flask app's `url_map` (the REST operations
of the protobuf services, each under `/api` and `/ajax-api`, plus the routes registered in code:
`/graphql`, `/get-artifact`, static files, …) and, from 3.4 on, the FastAPI routers mounted in front of
it (`/v1/traces`, jobs, the AI gateway, the assistant, …). Each route is named by the operation
MLflow gives it: the protobuf request message for a service operation (`CreateExperiment`), else the
view function (`serve_get_metric_history_bulk`, `export_traces`).

    python tests/routes/extract.py            # write tests/routes/mlflow-<version>.json
    python tests/routes/extract.py --check    # re-extract and fail if a committed file differs

The JSON files are committed: tests/route_coverage.rs reads them without Python, and a review sees
exactly which routes a new MLflow version adds.
"""

import argparse
import functools
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

# The matrix: what SageMaker serves (2.13, 2.16 and 3.0 on tracking servers, 3.10 on MLflow Apps), what
# users run (3.4), and the newest 3.x that installs from PyPI (3.18.0 needs an mlflow-tracing 3.18.0
# that is not published; 3.17.2 is the newest that installs).
VERSIONS = ["2.13.2", "2.16.2", "3.0.1", "3.4.0", "3.10.1", "3.17.2"]

# Pins a version's server needs to import: MLflow 2.x and 3.0 import a SQLAlchemy pool class that
# SQLAlchemy 2.0.36 removed, and `pkg_resources` (setuptools, which uv's venvs do not bring along).
OLD_SERVER_PINS = ["sqlalchemy<=2.0.35", "setuptools<81"]
EXTRA_PINS = {"2.13.2": OLD_SERVER_PINS, "2.16.2": OLD_SERVER_PINS, "3.0.1": OLD_SERVER_PINS}

REPO = Path(__file__).resolve().parents[2]
CACHE = REPO / ".cache" / "mlflow-routes"
OUT = Path(__file__).resolve().parent


def uv() -> str:
    """uv, from the project's venv (tests/requirements.txt) or the PATH: it installs a version's venv
    in seconds from its cache (hard links), where pip takes a minute or two."""
    beside = Path(sys.executable).parent / "uv"
    found = str(beside) if beside.exists() else shutil.which("uv")
    if not found:
        raise SystemExit("uv is needed: pip install -r tests/requirements.txt")
    return found


def venv_python(version: str) -> Path:
    """The Python of the version's cached venv, created and installed on first use."""
    venv = CACHE / version
    python = venv / "bin" / "python"
    stamp = venv / ".installed"
    if stamp.exists():
        return python
    env = {**os.environ, "UV_CACHE_DIR": os.environ.get("UV_CACHE_DIR", str(CACHE / "uv"))}
    run = functools.partial(subprocess.run, check=True, env=env)
    run([uv(), "venv", "--quiet", "--clear", "--python", sys.executable, str(venv)])
    packages = [f"mlflow=={version}", *EXTRA_PINS.get(version, [])]
    run([uv(), "pip", "install", "--quiet", "--python", str(python), *packages])
    stamp.touch()
    return python


def extract(version: str) -> dict:
    """The routes of one version, asked of MLflow in its own venv."""
    python = venv_python(version)
    with_env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    # The server reads its backend from these at import; a throwaway store under the cache.
    with_env["MLFLOW_TRACKING_URI"] = f"sqlite:///{CACHE / version / 'routes.db'}"
    done = subprocess.run(
        [str(python), __file__, "--dump"],
        check=True,
        capture_output=True,
        text=True,
        env=with_env,
        cwd=CACHE,
    )
    routes = json.loads(done.stdout)
    return {"mlflow": version, "routes": routes}


# ---------------------------------------------------------------------------------------------------
# Inside the version's venv (`--dump`): MLflow imported, its apps asked.


def flask_rule_to_path(rule: str) -> str:
    """`<path:artifact_path>` becomes `{artifact_path:path}`, `<run_id>` becomes `{run_id}`."""

    def placeholder(match: re.Match) -> str:
        converter, name = match.group(1), match.group(2)
        return f"{{{name}:path}}" if converter == "path" else f"{{{name}}}"

    return re.sub(r"<(?:(\w+):)?(\w+)>", placeholder, rule)


def proto_operation_names() -> dict:
    """(method, Flask rule) of every protobuf service route, to the request message's name."""
    from mlflow.server import handlers

    def named(request_class):
        def operation():
            pass

        operation.__name__ = request_class.__name__
        return operation

    names = {}
    for rule, handler, methods in handlers.get_endpoints(get_handler=named):
        for method in methods:
            names.setdefault((method, rule), handler.__name__)
    return names


def flask_routes() -> list:
    from mlflow.server import app

    proto_names = proto_operation_names()
    routes = []
    for rule in app.url_map.iter_rules():
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            name = proto_names.get((method, rule.rule), rule.endpoint)
            routes.append(route(method, flask_rule_to_path(rule.rule), name, "flask"))
    return routes


def fastapi_routes() -> list:
    """The routes FastAPI serves before the mounted Flask app (MLflow 3.4 and later)."""
    if importlib.util.find_spec("mlflow.server.fastapi_app") is None:
        return []
    from mlflow.server.fastapi_app import app

    return list(walk_fastapi(app.routes, ""))


def walk_fastapi(routes, prefix: str):
    for entry in routes:
        if hasattr(entry, "original_router"):  # FastAPI >= 0.160 keeps included routers whole
            yield from walk_fastapi(
                entry.original_router.routes, prefix + entry.include_context.prefix
            )
        elif getattr(entry, "methods", None) and hasattr(entry, "path"):
            for method in sorted(entry.methods - {"HEAD", "OPTIONS"}):
                yield route(method, prefix + entry.path, entry.name, "fastapi")
        elif type(entry).__name__ != "Mount":  # the Flask app, mounted at "/", is read above
            raise SystemExit(f"unexpected FastAPI route {entry!r}: teach walk_fastapi about it")


def route(method: str, path: str, operation: str, served_by: str) -> dict:
    return {"method": method, "path": path, "operation": operation, "served_by": served_by}


def dump() -> None:
    # FastAPI routes answer before the Flask mount, so a path both register is FastAPI's.
    by_key = {(r["method"], r["path"]): r for r in flask_routes()}
    by_key.update({(r["method"], r["path"]): r for r in fastapi_routes()})
    routes = sorted(by_key.values(), key=lambda r: (r["path"], r["method"]))
    json.dump(routes, sys.stdout, indent=1)


# ---------------------------------------------------------------------------------------------------


def output_path(version: str) -> Path:
    return OUT / f"mlflow-{version}.json"


def render(document: dict) -> str:
    return json.dumps(document, indent=1, sort_keys=True) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if a committed file differs")
    parser.add_argument("--dump", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("versions", nargs="*", default=VERSIONS)
    args = parser.parse_args()
    if args.dump:
        dump()
        return 0
    CACHE.mkdir(parents=True, exist_ok=True)
    drifted = []
    for version in args.versions:
        started = time.monotonic()
        text = render(extract(version))
        path = output_path(version)
        count = text.count('"method"')
        print(f"mlflow {version}: {count} routes ({time.monotonic() - started:.1f} s)")
        if args.check:
            if not path.exists() or path.read_text() != text:
                drifted.append(path.name)
        else:
            path.write_text(text)
    if drifted:
        print(f"differs from what MLflow registers: {', '.join(drifted)}; run {__file__}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
