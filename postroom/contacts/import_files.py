"""The files of a CSV import in DATA_DIR/imports/: the upload, and the rows its check kept.

The upload is copied as it arrives, checked to be UTF-8 on the way. The checked rows go to a
JSON Lines file next to it, so the import does not validate 100,000 addresses a second time;
it is written under a temporary name and renamed, so a check that was interrupted (and runs
again in another worker) never leaves half a file behind.
"""

from __future__ import annotations

import codecs
import json
import os
from datetime import datetime
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile

from postroom.contacts import importing
from postroom.contacts.importing import ParsedRow
from postroom.contacts.models import ImportJob
from postroom.core.errors import ValidationError


def imports_dir() -> Path:
    directory = Path(settings.DATA_DIR) / "imports"
    directory.mkdir(parents=True, exist_ok=True)
    return directory


def upload_path(job: ImportJob) -> Path:
    return imports_dir() / f"{job.stored_name}.csv"


def checked_path(job: ImportJob) -> Path:
    return imports_dir() / f"{job.stored_name}.checked.jsonl"


def import_job_has_file(job: ImportJob) -> bool:
    return bool(job.stored_name) and upload_path(job).exists()


def files_delete(job: ImportJob) -> None:
    if job.stored_name:
        upload_path(job).unlink(missing_ok=True)
        checked_path(job).unlink(missing_ok=True)


def upload_store(upload: UploadedFile, path: Path) -> str:
    """Copy the upload to `path`, checking it is UTF-8; return the start of its text."""
    decoder = codecs.getincrementaldecoder("utf-8-sig")()
    sample: list[str] = []
    sample_length = 0
    try:
        with path.open("wb") as stored:
            for chunk in upload.chunks():
                stored.write(chunk)
                text = decoder.decode(chunk)
                if sample_length < importing.SNIFF_CHARS:
                    sample.append(text)
                    sample_length += len(text)
            sample.append(decoder.decode(b"", final=True))
    except UnicodeDecodeError:
        path.unlink(missing_ok=True)
        raise ValidationError(
            'The file is not UTF-8 text. In Excel choose File › Save As › "CSV UTF-8 '
            '(Comma delimited)"; in LibreOffice tick "Edit filter settings" and choose '
            "Unicode (UTF-8).",
            field="file",
        ) from None
    return "".join(sample)[: importing.SNIFF_CHARS]


def checked_rows_write(job: ImportJob, merged: dict[str, ParsedRow]) -> None:
    def encoded(value: Any) -> Any:
        return {"$datetime": value.isoformat()} if isinstance(value, datetime) else value

    path = checked_path(job)
    partial = path.with_name(f"{path.name}.{os.getpid()}.partial")
    with partial.open("w", encoding="utf-8") as stream:
        for parsed in merged.values():
            values = {name: encoded(value) for name, value in parsed.values.items()}
            line = [parsed.row, parsed.email, parsed.key, values, parsed.tags]
            stream.write(json.dumps(line, ensure_ascii=False) + "\n")
    partial.replace(path)


def checked_rows_read(job: ImportJob) -> dict[str, ParsedRow]:
    def decoded(value: Any) -> Any:
        if isinstance(value, dict) and "$datetime" in value:
            return datetime.fromisoformat(value["$datetime"])
        return value

    path = checked_path(job)
    if not path.exists():
        raise ValidationError("The checked rows are gone. Check the file again, then import.")
    merged: dict[str, ParsedRow] = {}
    with path.open(encoding="utf-8") as stream:
        for line in stream:
            row, email, key, values, tags = json.loads(line)
            values = {name: decoded(value) for name, value in values.items()}
            merged[key] = ParsedRow(row=row, email=email, key=key, values=values, tags=tags)
    return merged
