"""bench.postroom_run with a DKIM key signing the corpus sender's domain.

    python -m bench.dkim_run --algorithm rsa-sha256|ed25519-sha256 --port SINK_PORT --messages N

Run by bench.dkim in its own process. It migrates the fresh database, makes a key for the
sender's domain signing (the benchmark skips the DNS check: no DNS is published), proves a
corpus message comes out signed, then runs bench.postroom_run's full path unchanged: the
workers load the key when they start. The last line of output is postroom_run's JSON.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import traceback
from pathlib import Path
from typing import Any

from bench import corpus, postroom_run


def _signing_key_make(algorithm: str) -> str:
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    from postroom.dkim.models import DkimKey, KeyState
    from postroom.dkim.services import dkim_key_create
    from postroom.dkim.signing import dkim_signer_load

    call_command("migrate", verbosity=0, interactive=False)
    domain = corpus.SENDER.rpartition("@")[2]
    key = dkim_key_create(actor=None, domain=domain, algorithm=algorithm)
    DkimKey.objects.filter(pk=key.pk).update(state=KeyState.SIGNING)
    signed = dkim_signer_load().sign(corpus.PreRendered().message(0))
    if not signed.startswith(b"DKIM-Signature:"):
        raise postroom_run.BenchError(f"a corpus message from {domain} came out unsigned")
    connection.close()
    return f"every message signed {algorithm} by {key.record_name}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--algorithm", choices=["rsa-sha256", "ed25519-sha256"], required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--messages", type=int, required=True)
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--enqueue", choices=["bulk", "typed", "raw"], default="bulk")
    args = parser.parse_args()
    run_args = argparse.Namespace(
        **vars(args), host="127.0.0.1", workers=1, batch=500, postgres=False, timeout=None,
        keep=False,
    )  # fmt: skip
    result: dict[str, Any] = {"messages": args.messages, "warmup": args.warmup, "notes": []}
    data_dir = Path(tempfile.mkdtemp(prefix="postroom-bench-dkim-"))
    try:
        with postroom_run._database(False, data_dir):
            result["notes"].append(_signing_key_make(args.algorithm))
            postroom_run._run(run_args, data_dir, result)
    except postroom_run.BenchError as error:
        result["error"] = str(error)
    except Exception as error:  # noqa: BLE001 - reported to the caller with its traceback
        result["error"] = f"{error!r}\n{traceback.format_exc()}"
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
