"""Secrets never reach run folders or the console."""

from __future__ import annotations

from ntrader.secrets import redact


def test_redact_urls_and_key_values():
    assert (
        redact("postgresql://legacy:s3cr3t-P4ss@db:5432/md") == "postgresql://legacy:***@db:5432/md"
    )
    assert redact("dsn: 'postgresql://u:p%40ss@h/db?x=1'") == "dsn: 'postgresql://u:***@h/db?x=1'"
    assert redact("host=db password=hunter2 user=u") == "host=db password=*** user=u"
    assert redact("PASSWORD='a b'") == "PASSWORD=***"
    assert redact("postgresql://user@host/db") == "postgresql://user@host/db"  # nothing to hide
    assert redact("https://example.com/a:b") == "https://example.com/a:b"


def test_password_in_an_override_is_scrubbed_from_the_run_folder(catalog, run_script, tmp_path):
    secret = "s3cr3t-P4ss"
    r = run_script("scan", f"catalog.path={catalog.root}", f"+note=postgresql://u:{secret}@h/db")
    assert r.code == 0, r.stderr
    files = [p for p in (tmp_path / "runs").rglob("*") if p.is_file()]
    assert any(p.name == "overrides.yaml" for p in files)
    for p in files:
        assert secret not in p.read_text(), p
    assert secret not in r.stdout + r.stderr
