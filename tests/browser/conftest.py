"""Browser tests: a real headless Chromium (Debian's package) driven by Playwright against live_server.

Never Playwright's own browser download: the system ``chromium`` is launched by path. Without one
the tests skip (``make test`` prints a loud warning), unless REQUIRE_BROWSER_TESTS is set (CI).
"""

import os
import shutil

import pytest

# Playwright's sync API runs an event loop in the test thread; Django's ORM refuses to run inside one.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
LAUNCH_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def pytest_collection_modifyitems(config, items):
    here = os.path.dirname(__file__)
    for item in items:
        if str(item.fspath).startswith(here):
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="session")
def browser():
    if CHROMIUM is None:
        if os.environ.get("REQUIRE_BROWSER_TESTS"):
            pytest.fail("REQUIRE_BROWSER_TESTS is set but no 'chromium' is on PATH")
        pytest.skip("no 'chromium' on PATH: browser tests skipped (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        yield instance
        instance.close()


@pytest.fixture
def seeded(transactional_db):
    """live_server needs a transactional database, which is emptied after every test: seed it again
    with the data migration's own function (serialized_rollback is not reliable across the suite)."""
    import importlib

    from django.apps import apps

    from calculator.models import ModelPreset

    if not ModelPreset.objects.exists():
        importlib.import_module("calculator.migrations.0002_seed_catalogs").seed(apps, None)
        importlib.import_module("calculator.migrations.0004_seed_presets_2026").seed(apps, None)
        importlib.import_module("calculator.migrations.0006_seed_gpu_specs").seed(apps, None)


@pytest.fixture(autouse=True)
def _fresh_caches():
    from calculator.services import invalidate_catalog
    from tests.caches import fresh_state

    fresh_state()
    yield
    invalidate_catalog()


# Every Content-Security-Policy violation, also those the console does not show (e.g. in a frame),
# is reported to the console as an error by this script, which runs before the page's own.
REPORT_CSP_VIOLATIONS = """
document.addEventListener("securitypolicyviolation", (e) => {
  const where = e.sourceFile || e.documentURI;
  console.error(`CSP violation: ${e.violatedDirective} blocked ${e.blockedURI || "inline"} in ${where}`);
});
"""


def _new_page(browser, **options):
    context = browser.new_context(viewport={"width": 1280, "height": 900}, **options)
    context.set_default_timeout(10_000)
    context.add_init_script(REPORT_CSP_VIOLATIONS)
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("console", lambda message: _console_error(message, errors))
    page.js_errors = errors
    return context, page


def _console_error(message, errors):
    """Console errors fail the test, except the browser's note that a response was a 400 (bad input
    is answered with 400 on purpose, with the field's error on the page). A Content-Security-Policy
    violation fails it whatever the message's level."""
    if (
        "Content Security Policy" in message.text
        or message.text.startswith("CSP violation")
        or (message.type == "error" and "status of 400" not in message.text)
    ):
        errors.append(message.text)


@pytest.fixture
def page(browser, live_server, seeded):
    context, page = _new_page(browser)
    page.base = live_server.url
    yield page
    context.close()
    assert not page.js_errors, page.js_errors


@pytest.fixture
def nojs_page(browser, live_server, seeded):
    context, page = _new_page(browser, java_script_enabled=False)
    page.base = live_server.url
    yield page
    context.close()
    csp = [e for e in page.js_errors if "Content Security Policy" in e]
    assert not csp, csp
