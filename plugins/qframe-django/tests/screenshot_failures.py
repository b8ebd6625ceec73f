"""Take the screenshot of the failures page in docs/ (run by hand; needs chromium).

python tests/screenshot_failures.py docs/failures-admin.png
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).parent


def main(target: str) -> None:
    """Make a database with failures, serve the admin, and let headless chromium photograph it."""
    from qframe.testing import free_port

    directory = Path(tempfile.mkdtemp(prefix="qframe-shot-"))
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "screenshot_settings", "PYTHONPATH": str(HERE),
           "QFRAME_TEST_SQLITE": str(directory / "db.sqlite3"), "QFRAME_TEST_NO_PG": "1"}  # fmt: skip
    run = [sys.executable, str(HERE / "manage.py")]
    subprocess.run([*run, "migrate", "-v0"], env=env, check=True, cwd=HERE)
    subprocess.run([*run, "shell", "-c", FIXTURE], env=env, check=True, cwd=HERE)
    port = free_port()
    server = subprocess.Popen([*run, "runserver", "--noreload", f"127.0.0.1:{port}"], env=env, cwd=HERE)
    try:
        url = f"http://127.0.0.1:{port}/admin/qframe_django/failure/"
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(url, timeout=2)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        browser = shutil.which("chromium") or shutil.which("chromium-browser") or "chromium"
        subprocess.run(
            [browser, "--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
             f"--screenshot={Path(target).absolute()}", "--window-size=1900,480", url],
            check=True, timeout=60, capture_output=True,
        )  # fmt: skip
    finally:
        server.terminate()
        server.wait(10)
        shutil.rmtree(directory, ignore_errors=True)


FIXTURE = """
from django.contrib.auth.models import User
from qframe_django import compat
User.objects.create_superuser("admin", "admin@example.com", "admin")
for name, message in [("nightly-invoices", "card declined"), ("resize-avatar", "image too large"),
                      ("sync-crm", "timed out after 30 s")]:
    try:
        compat.async_task("djtest_app.tasks.fail", message, task_name=name, group="examples", sync=True)
    except ValueError:
        pass
compat.async_task("djtest_app.tasks.add", 1, 2, task_name="add-numbers", sync=True)
"""

if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "failures-admin.png")
