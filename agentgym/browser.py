"""Debian's chromium for the components that drive a real browser (WebShop's browser mode,
``agentgym view``'s browser tests and screenshots): where it is and the flags it runs with.

Browsers come from Debian's ``chromium`` package, launched through Playwright's
``executable_path`` (``playwright install`` downloads browsers and cannot work offline).
"""

from __future__ import annotations

import os
import shutil

from agentgym.errors import UserError

#: Headless in a container: no sandbox (no user namespaces), no GPU, nothing fetched from the network.
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def chromium_path() -> str:
    """Debian's chromium (``$AGENTGYM_CHROMIUM`` to use another binary)."""
    path = os.environ.get("AGENTGYM_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    if not os.path.isfile(path):
        raise UserError(
            "chromium is not installed: run `bash scripts/setup/browser.sh` (Debian's chromium package)."
        )
    return path
