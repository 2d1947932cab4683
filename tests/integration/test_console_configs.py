"""Editing a type's executor and its settings on the console's config page (admin keys):
secrets are never written into the page, ``"***"`` keeps the stored (sealed) value, a new
value is sealed, bad JSON and an unknown executor are refused with the API's texts, and the
change is audited."""

from __future__ import annotations

from conveyor.apikeys import Scope
from conveyor.audit import Action, AuditQuery
from conveyor.models import TaskConfig
from conveyor.sealing import unseal
from tests.support.console import EVIL, Console, console, open_console

__all__ = ["console", "open_console"]  # fixtures
PAGE = "/ui/configs/send_mail"


async def test_an_admin_changes_the_executor_settings_and_secrets_stay_sealed(
    console: Console,
) -> None:
    c = console
    svc = c.parts.service
    await svc.put_config(TaskConfig("send_mail", "http", {
        "url": "http://mail.test/send", "headers": {"Authorization": "Bearer s3cr3t"}}))
    await c.login(Scope.SUBMIT)
    assert 'name="executor_config"' not in (await c.http.get(PAGE)).text
    refused = await c.post(PAGE, PAGE, executor="http", executor_config="{}")
    assert refused.status_code == 403
    await c.login(Scope.ADMIN)
    form = await c.http.get(PAGE)
    assert 'name="executor_config"' in form.text and "s3cr3t" not in form.text
    assert "&#34;***&#34;" in form.text or "&quot;***&quot;" in form.text
    kept = ('{"url": "http://mail.test/v2", "headers": {"Authorization": "***", '
            '"X-Extra": "t0ken"}}')
    saved = await c.post(PAGE, PAGE, executor="http", executor_config=kept, enabled="on")
    assert saved.status_code == 303, saved.text
    stored = await svc.get_config("send_mail")
    opened = unseal(stored.executor_config, svc.keyring.opening)
    assert opened == {"url": "http://mail.test/v2",
                      "headers": {"Authorization": "Bearer s3cr3t", "X-Extra": "t0ken"}}
    assert "t0ken" not in str(stored.executor_config)  # sealed at rest
    assert "t0ken" not in (await c.http.get(PAGE)).text
    audit = await c.parts.store.audit.list_entries(AuditQuery(action=str(Action.CONFIG_PUT)),
                                                   None)
    assert audit.records and "t0ken" not in str(audit.records[0].entry.after)


async def test_bad_settings_and_an_unknown_executor_are_refused(open_console: Console) -> None:
    c = open_console
    svc = c.parts.service
    await svc.put_config(TaskConfig("send_mail", "http", {"url": "http://mail.test/send"}))
    for bad, says in ((dict(executor_config="{nope"), "not JSON"),
                      (dict(executor_config="[1]"), "executor_config"),
                      (dict(executor=EVIL), "executor"),
                      (dict(executor_config='{"url": "http://m.test", "headers": {"A": "***"}}'),
                       "none is stored there")):
        refused = await c.post(PAGE, PAGE, enabled="on", **bad)
        assert refused.status_code == 422, (bad, refused.text)
        assert says in refused.text and EVIL not in refused.text, (bad, refused.text)
    assert (await svc.get_config("send_mail")).executor_config == {"url": "http://mail.test/send"}
