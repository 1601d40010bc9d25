"""deployments/prefect.yaml and automations.yaml as `newsflow serve` and the alert step read them, and the
run configuration an operator changes without code (sources in a Prefect Variable)."""

from __future__ import annotations

import pytest
import yaml

from flows.ops import AUTOMATIONS_FILE, DEPLOYMENTS_FILE, load_deployment_specs, runner_deployments
from tasks.sources import SourcesError


def test_serve_builds_the_same_deployments_as_the_yaml():
    specs = {(s["entrypoint"], s["name"]): s for s in load_deployment_specs()}
    built = runner_deployments()
    assert len(built) == len(specs) >= 3
    by_name = {(d.flow_name, d.name): d for d in built}
    hourly = by_name[("ingest-news", "hourly")]
    assert hourly.schedules[0].schedule.cron == "5 * * * *"
    assert hourly.schedules[0].schedule.timezone == "Europe/London"
    assert hourly.parameters == {"sources_variable": "newsflow-sources", "full_refresh": False}
    assert hourly.concurrency_limit == 1
    assert hourly.concurrency_options.collision_strategy.value == "CANCEL_NEW"
    assert by_name[("ingest-news", "daily-full-refresh")].parameters["full_refresh"] is True
    assert ("maintain-warehouse", "daily") in by_name
    assert by_name[("reprocess-news", "on-demand")].schedules == []
    for deployment in built:
        assert "newsflow" in deployment.tags and deployment.description


def test_every_deployment_has_a_limit_and_the_scheduled_ones_a_time_zone():
    document = yaml.safe_load(DEPLOYMENTS_FILE.read_text(encoding="utf-8"))
    for spec in document["deployments"]:
        assert spec["work_pool"]["name"] == "newsflow"
        assert spec["concurrency_limit"] == {"limit": 1, "collision_strategy": "CANCEL_NEW"}
        assert all(s["timezone"] and s["cron"] for s in spec.get("schedules") or [])
    scheduled = {(s["entrypoint"].split(":")[1], s["name"]) for s in document["deployments"] if s.get("schedules")}
    assert scheduled == {("ingest_news", "hourly"), ("ingest_news", "daily-full-refresh"),
                         ("maintain_warehouse", "daily")}


def test_automations_are_valid_prefect_automations():
    from prefect.events.schemas.automations import AutomationCore

    document = yaml.safe_load(AUTOMATIONS_FILE.read_text(encoding="utf-8"))
    automations = [AutomationCore.model_validate({**item, "actions": [
        {**a, "block_document_id": "00000000-0000-0000-0000-000000000000"} for a in item["actions"]]})
        for item in document["automations"]]
    postures = {a.name: a.trigger.posture.value for a in automations}
    assert postures == {"newsflow-run-failed": "Reactive", "newsflow-no-success-3h": "Proactive"}
    assert automations[1].trigger.within.total_seconds() == 3 * 3600


@pytest.mark.usefixtures("prefect_server")
def test_sources_from_a_prefect_variable():
    from prefect.variables import Variable

    from flows.config import sources_from_variable

    Variable.set("newsflow-test-sources", "sources:\n  - {name: a, kind: files, path: '*.txt'}\n", overwrite=True)
    assert sources_from_variable("newsflow-test-sources") == [{"name": "a", "kind": "files", "path": "*.txt"}]
    Variable.set("newsflow-test-sources", [{"name": "b", "kind": "urls", "urls": ["http://x/"]}], overwrite=True)
    assert sources_from_variable("newsflow-test-sources")[0]["name"] == "b"
    with pytest.raises(SourcesError, match="set the Prefect Variable 'newsflow-missing'"):
        sources_from_variable("newsflow-missing")
