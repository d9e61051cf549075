"""schemathesis fuzzes the API from its own OpenAPI document with every check, signed in with a personal API
token so the configurations endpoints are reached too, and follows the document's links (save -> read,
rename, delete) statefully. ``SCHEMATHESIS_EXAMPLES`` scales it; CI runs at least 1,000 cases."""

import os

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.config import SchemathesisConfig

from accounts.models import ApiToken
from lorasite.wsgi import application

CI = os.environ.get("CI") == "true"
EXAMPLES = int(os.environ.get("SCHEMATHESIS_EXAMPLES", "120" if CI else "25"))
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
signed_in: dict[str, str] = {}


@schema.auth(refresh_interval=None, retry_on=[])  # the token of this test's user; a 401 is never retried away
class PersonalToken:
    def get(self, case, ctx):
        return signed_in.get("token")  # None while pytest collects: no test user yet

    def set(self, case, token, ctx):
        case.headers = {**(case.headers or {}), "Authorization": f"Token {token}"}


@pytest.fixture(autouse=True)
def token(db, django_user_model):
    user = django_user_model.objects.create_user("fuzzer", password="pw-fuzz-123")
    _, signed_in["token"] = ApiToken.objects.create(user, expiry=None, name="fuzz")
    yield
    signed_in.clear()


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
            max_examples=max(EXAMPLES // 2, 10),
            stateful_step_count=8,
            suppress_health_check=list(HealthCheck),
            deadline=None,
        )
    )
    assert cases["stateful"] > 0


def test_zz_report_count():
    print("CASES", cases)
