"""Size limits and reading of uploaded files.

Lab export files: at most settings.LAB_FILE_MAX_BYTES (default 20 MiB; a lab with a long
history exports well beyond the 64 KiB of settings.LAB_UPLOAD_MAX_BYTES). Pasted or uploaded
license_smart output: at most settings.LAB_UPLOAD_MAX_BYTES (64 KiB).
"""

from django.conf import settings

DEFAULT_LAB_FILE_MAX_BYTES = 20 * 1024 * 1024
LAB_FILE_MAX_BYTES = DEFAULT_LAB_FILE_MAX_BYTES


def lab_file_max_bytes() -> int:
    return int(getattr(settings, "LAB_FILE_MAX_BYTES", DEFAULT_LAB_FILE_MAX_BYTES))


def paste_max_bytes() -> int:
    return int(getattr(settings, "LAB_UPLOAD_MAX_BYTES", 64 * 1024))


class UploadError(ValueError):
    """A file that is refused before reading, with a sentence for the user."""


def size_text(n: int) -> str:
    """``20 MiB``, ``64 KiB``, ``100 bytes``."""
    if n >= 1024 * 1024:
        return f"{n // (1024 * 1024)} MiB"
    return f"{n // 1024} KiB" if n >= 1024 else f"{n} bytes"


def upload_read(upload, *, limit: int, what: str) -> str:
    """The text of an uploaded file (UTF-8), refused when bigger than `limit` bytes."""
    if upload.size > limit:
        raise UploadError(f"This {what} is {size_text(upload.size)}; the limit is {size_text(limit)}.")
    data = upload.read(limit + 1)
    if len(data) > limit:
        raise UploadError(f"This {what} is bigger than the limit of {size_text(limit)}.")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise UploadError(f"This {what} is not UTF-8 text.") from None
