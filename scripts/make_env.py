"""Create .env from .env.example with a fresh random SECRET_KEY (run once by `make`)."""

import secrets
from pathlib import Path

root = Path(__file__).resolve().parent.parent
target = root / ".env"
if not target.exists():
    text = (root / ".env.example").read_text()
    text = text.replace("SECRET_KEY=change-me", f"SECRET_KEY={secrets.token_urlsafe(50)}")
    target.write_text(text)
    print("Wrote .env (edit it to change settings).")
