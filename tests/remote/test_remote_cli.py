"""``datumio inspect URL`` and ``datumio verify URL`` as subprocesses: storage options
cannot be given on the command line, so the HTTP server's URL, or for s3 the AWS_*
environment variables botocore reads, and DATUMIO_CACHE for the cache."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from remote_support import SECRET, cache_root, no_secret_in, shard_bytes

pytestmark = pytest.mark.timeout(120)


def _datumio(args: list[str], cache: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {**os.environ, "DATUMIO_CACHE": str(cache), **env}
    return subprocess.run(
        [sys.executable, "-m", "datumio", *args, "--quiet", "--json"],
        capture_output=True,
        text=True,
        env=environ,
        timeout=60,
    )


def _s3_env(s3, tmp_path: Path) -> dict[str, str]:
    return {
        "AWS_ENDPOINT_URL": s3.endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": SECRET,
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": str(tmp_path / "no-aws-config"),  # no user profile gets in
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-aws-credentials"),
    }


@pytest.mark.parametrize("name", ["out.lmdb", "out.h5"])
def test_inspect_and_verify_over_http(http, local, name, tmp_path) -> None:
    want = local[name]
    url = http.url(name)
    inspect = _datumio(["inspect", url], tmp_path)
    assert inspect.returncode == 0, inspect.stderr
    summary = json.loads(inspect.stdout)
    assert summary["records"] == len(want) and summary["num_classes"] == want.num_classes
    assert summary["backend"] == want.backend

    verify = _datumio(["verify", url], tmp_path)
    assert verify.returncode == 0, verify.stderr
    report = json.loads(verify.stdout)
    assert report["ok"] is True
    assert report["records_checked"] == len(want)
    assert report["shards_checked"] == want.num_shards
    # every shard came down once, for both commands together (one shared cache)
    assert set(http.shard_gets(name).values()) == {1}
    assert len(shard_bytes(cache_root(tmp_path, url))) == want.num_shards


def test_verify_over_s3_with_aws_environment(s3, local, tmp_path) -> None:
    url = s3.url("out.lmdb")
    verify = _datumio(["verify", url], tmp_path / "cache", **_s3_env(s3, tmp_path))
    assert verify.returncode == 0, verify.stderr
    report = json.loads(verify.stdout)
    assert report["ok"] is True and report["records_checked"] == len(local["out.lmdb"])


def test_cli_on_a_url_that_is_no_dataset(s3, tmp_path) -> None:
    url = s3.url("absent.lmdb")
    for command in ("verify", "inspect"):
        run = _datumio([command, url], tmp_path / "cache", **_s3_env(s3, tmp_path))
        assert run.returncode == 1, (run.stdout, run.stderr)
        assert f"{url}/manifest.json does not exist" in run.stderr
        assert no_secret_in(run.stderr + run.stdout, SECRET)
