"""schemathesis fuzzes the API from its own OpenAPI document with every check, signed in with a personal API
token so the configurations endpoints are reached too, and follows the document's links (save -> read,
rename, delete) statefully. ``SCHEMATHESIS_EXAMPLES`` scales it; CI runs at least 1,000 cases."""

import os

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from knox.crypto import hash_token
from knox.settings import CONSTANTS
from schemathesis.config import SchemathesisConfig

from accounts.models import ApiToken
from lorasite.wsgi import application

CI = os.environ.get("CI") == "true"
# Hypothesis examples per operation (the coverage phase adds its own deterministic cases on top): CI's 60
# make about 2,500 stateless and 1,100 stateful calls in under a minute (SQLite); 10 locally.
EXAMPLES = int(os.environ.get("SCHEMATHESIS_EXAMPLES", "60" if CI else "10"))
# A body the schema allows can still contradict the model it names (a target module the model lacks,
# dimensions transformers refuses, an unknown preset or GPU): JSON Schema cannot say that, and the API answers
# it with the documented 400 naming the field. Everything else a valid body gets is a 2xx.
SEMANTIC_400 = ["2xx", "400", "401", "403", "404", "429"]
CONFIG = SchemathesisConfig.from_dict(
    {
        "checks": {"enabled": True},
        "operations": [
            {"include-path": path, "checks": {"positive_data_acceptance": {"expected-statuses": SEMANTIC_400}}}
            for path in ("/api/v1/estimate/", "/api/v1/plan/", "/api/v1/configurations/")
        ],
    }
)
schema = schemathesis.openapi.from_wsgi("/api/schema/", application, config=CONFIG)
# The WSGI transport hands back the gzip bytes GZipMiddleware makes; ask for plain bodies to read them.
PLAIN = {"Accept-Encoding": "identity"}
cases = {"stateless": 0, "stateful": 0}
# A fixed token, stored for each test's user: schemathesis builds part of its cases (the coverage phase) while
# pytest collects, before any test user exists, and puts the credentials in them then.
FUZZ_TOKEN = "lorasite_" + "5c" * 32


@schema.auth(refresh_interval=None, retry_on=[])  # a 401 is never retried away
class PersonalToken:
    def get(self, case, ctx):
        return FUZZ_TOKEN

    def set(self, case, token, ctx):
        case.headers = {**(case.headers or {}), "Authorization": f"Token {token}"}


@pytest.fixture(autouse=True)
def test_connection_stays_open():
    """schemathesis calls the WSGI app itself, whose request signals close "old" connections, the test's
    transaction included (PostgreSQL); Django's test client disconnects them the same way."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture(autouse=True)
def fuzzer(db, django_user_model):
    user = django_user_model.objects.create_user("fuzzer", password="pw-fuzz-123")
    token_key = FUZZ_TOKEN[: CONSTANTS.TOKEN_KEY_LENGTH]
    ApiToken(user=user, digest=hash_token(FUZZ_TOKEN), token_key=token_key, expiry=None, name="fuzz").save()


@schema.parametrize()
@settings(max_examples=EXAMPLES, suppress_health_check=list(HealthCheck), deadline=None)
def test_every_operation_answers_as_documented(case):
    cases["stateless"] += 1
    case.call_and_validate(headers=PLAIN)


def test_saved_configurations_are_read_renamed_and_deleted_through_the_links():
    class Workflow(schema.as_state_machine()):
        def get_call_kwargs(self, case):
            cases["stateful"] += 1
            return {"headers": PLAIN}

    Workflow.run(
        settings=settings(
            max_examples=EXAMPLES * 2,
            stateful_step_count=10,
            suppress_health_check=list(HealthCheck),
            deadline=None,
        )
    )
    assert cases["stateful"] > 0


def test_ci_fuzzes_at_least_a_thousand_cases():
    """Runs after the two above (file order); counts what they sent when both ran in this session."""
    if not (CI and cases["stateless"] and cases["stateful"]):
        pytest.skip("counted in CI, after both fuzz tests")
    assert cases["stateless"] + cases["stateful"] >= 1000, cases
